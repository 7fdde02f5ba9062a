"""add-places priced against the whole job (issue 21's leftover): the new places, the job's other rounds' studies
and the bonuses paid and planned, all within max_budget; over it, nothing is changed."""

from __future__ import annotations

import pytest

from flows.study_control import StudyControlRefused, add_study_places
from taskbuilder.rounds import round_key
from tasks.records import update_job_record

from tests.integration.test_annotation_batch import example_job, run
from tests.integration.test_study_control import CRAWL, patches, sandbox_client

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "isolated_results")]


def _study(sandbox, study_id: str) -> dict:
    with sandbox_client(sandbox) as client:
        return client.get(f"/api/v1/studies/{study_id}/").json()


def _price(sandbox, reward_cents: int, places: int) -> int:
    with sandbox_client(sandbox) as client:
        answer = client.post("/api/v1/study-cost-calculator/", json={"reward": reward_cents, "total_available_places": places})
    return int(answer.json()["total_cost"])


def test_planned_bonuses_count_when_places_are_added(tmp_path, sandbox):
    sandbox.settings(**CRAWL)
    summary = run(example_job(tmp_path, wait_for_completion=False, bonus={"per_submission_cents": 25}), sandbox)
    study = _study(sandbox, summary["study_id"])
    target = study["total_available_places"] + 1
    places_cents = _price(sandbox, study["reward"], target)
    bonus_cents = _price(sandbox, 25 * target, 1)                       # every place qualifying, with fees and VAT

    with pytest.raises(StudyControlRefused, match="bonuses planned") as refused:   # the places alone would fit
        add_study_places(summary["job_key"], sandbox.base_url, 1, max_budget_cents=places_cents + bonus_cents - 1)
    assert "over max_budget" in str(refused.value) and patches(sandbox) == []
    added = add_study_places(summary["job_key"], sandbox.base_url, 1, max_budget_cents=places_cents + bonus_cents)
    assert added["changed"] and added["places"] == target


def test_the_job_s_other_rounds_count_when_places_are_added(tmp_path, sandbox):
    sandbox.settings(**CRAWL)
    first = run(example_job(tmp_path / "a", wait_for_completion=False), sandbox)
    later = run(example_job(tmp_path / "b", wait_for_completion=False), sandbox)    # stands for round 2's study
    update_job_record(round_key(first["job_key"], 2), sandbox.base_url, study_id=later["study_id"])
    study = _study(sandbox, first["study_id"])
    target = study["total_available_places"] + 1
    places_cents = _price(sandbox, study["reward"], target)
    round_two_cents = int(_study(sandbox, later["study_id"])["total_cost"])

    with pytest.raises(StudyControlRefused, match=later["study_id"]):
        add_study_places(first["job_key"], sandbox.base_url, 1, max_budget_cents=places_cents + round_two_cents - 1)
    assert patches(sandbox) == []
    assert add_study_places(first["job_key"], sandbox.base_url, 1, max_budget_cents=places_cents + round_two_cents)["changed"]


def test_two_add_places_at_once_add_the_places_once(tmp_path, sandbox):
    """Both read the study before either recorded its request (the calculator answers slowly): without the job's
    money lock both PATCHed the same new total and both said they had added the places."""
    from concurrent.futures import ThreadPoolExecutor

    sandbox.settings(**CRAWL)
    summary = run(example_job(tmp_path, wait_for_completion=False), sandbox)
    before = _study(sandbox, summary["study_id"])["total_available_places"]
    slow = {"target": "api", "method": "POST", "path": "/api/v1/study-cost-calculator*", "effect": "delay", "delay_seconds": 2}
    sandbox.faults({**slow, "nth": 1}, {**slow, "nth": 2})
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: add_study_places(summary["job_key"], sandbox.base_url, 1, max_budget_cents=10**7),
                                 range(2)))
    assert sorted(outcome["changed"] for outcome in outcomes) == [False, True], outcomes
    assert len(patches(sandbox)) == 1
    assert _study(sandbox, summary["study_id"])["total_available_places"] == before + 1
