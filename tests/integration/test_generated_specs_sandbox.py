"""Generated specs run against the sandbox: a study is never published when the spec's text says
`publish: false`, or a `max_budget` below the study's cost (tests/spec_generator.py)."""

from __future__ import annotations

import random

import httpx
import pytest

from flows.annotation_batch import CostRefused, annotation_batch
from flows.cli import _load_spec
from taskbuilder.polling import PollSettings
from tasks.connection import ProlificConnection

from tests.spec_generator import CSV, generate

PLACES = 4
"""The generated jobs' places (the generator's default: task groups × annotators_per_task)."""

RUNS = 10
FAST = PollSettings(interval_seconds=0.2, max_interval_seconds=0.5)


def _loadable(folder, count: int):
    """(seed, generated spec, job) for the first `count` seeds whose spec loads, half of them saying publish."""
    from taskbuilder.jobspec import SpecError

    found, wanted = [], {True: count // 2, False: count - count // 2}
    for seed in range(10_000):
        spec = generate(random.Random(seed))
        says_publish = not spec.publish_says_false
        if not wanted[says_publish]:
            continue
        path = folder / f"job-{seed}.yaml"
        path.write_text(spec.text)
        try:
            job = _load_spec(path)
        except SpecError:
            continue
        wanted[says_publish] -= 1
        found.append((seed, spec, job))
        if len(found) == count:
            return found
    raise AssertionError("the generator gave too few loadable specs")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_generated_specs_never_publish_against_their_text(sandbox, tmp_path):
    (tmp_path / "data.csv").write_text(CSV)
    api = httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Token {sandbox.token}"}, timeout=30)
    published_runs = over_budget_runs = 0
    for seed, spec, job in _loadable(tmp_path, RUNS):
        before = sandbox.count("POST", "/api/v1/studies/*/transition")
        study = None
        try:
            summary = annotation_batch(job=job, connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST,
                                       output_dir=str(tmp_path / f"out-{seed}"))
            study = api.get(f"/api/v1/studies/{summary['study_id']}/").json()
        except CostRefused:  # the account's figures refused it: before anything was created, or before PUBLISH
            pass
        published = sandbox.count("POST", "/api/v1/studies/*/transition") > before
        rewards_cents = min(spec.reward_read) * (int(study["total_available_places"]) if study else PLACES)
        context = f"seed {seed}:\n{spec.text}"
        over_budget_runs += not spec.publish_says_false and min(spec.max_budget_read) < rewards_cents
        if published:
            published_runs += 1
            assert not spec.publish_says_false, context
            assert min(spec.max_budget_read) >= rewards_cents, context
            assert study is not None and study["status"] != "UNPUBLISHED", context
        else:
            assert study is None or study["status"] == "UNPUBLISHED", context
    api.close()
    assert published_runs >= 1 and over_budget_runs >= 1, (published_runs, over_budget_runs)  # both sides exercised
