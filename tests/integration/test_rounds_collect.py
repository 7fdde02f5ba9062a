"""Rounds with ``wait_for_completion: false`` (issue 19): the launch publishes round 1 and ends; the study monitor
(and collect-report, which it runs) collects each round when its study finishes and launches the next, each once,
and writes the job's outputs after the last. A pilot that asks a reviewer never holds the monitor."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pandas as pd
import pytest

from flows.collect_report import collect_report
from flows.monitor_studies import monitor_studies
from tasks.records import active_job_records, load_job_record

from tests.integration.jobs import write_small_job
from tests.integration.test_study_control import CRAWL
from tests.integration.test_rounds import (COIN_FLIPS, PILOT, ROWS, _annotators, _balance, _check_three_rounds, _effects, _run, _spec,
                                          _study)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "isolated_results")]

EFFECTS = ("/api/v1/data-collection/datasets", "/api/v1/data-collection/batches", "/api/v1/studies", "/transition",
           "/approve", "/bulk-approve", "/upload-url", "/imports")


def _study_status(sandbox, study_id: str) -> str:
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Token {sandbox.token}"}) as api:
        return api.get(f"/api/v1/studies/{study_id}/").json()["status"]


def _current_study(record: dict) -> str:
    return (record.get("current_round") or {}).get("study_id") or record["study_id"]


def _wait_finished(sandbox, study_id: str, timeout_seconds: float = 120) -> None:
    deadline = time.monotonic() + timeout_seconds
    while _study_status(sandbox, study_id) not in ("AWAITING REVIEW", "COMPLETED"):
        assert time.monotonic() < deadline, f"study {study_id} did not finish"
        time.sleep(0.3)


def _effect_posts(sandbox) -> int:
    """POSTs and PUTs that change something (creates, uploads, PUBLISH, approvals), answered 2xx."""
    return sum(1 for r in sandbox.requests() if r["method"] in ("POST", "PUT") and 200 <= r["status"] < 300
               and any(part in r["path"] for part in EFFECTS))


def _monitor_until_collected(sandbox, job_key: str, rounds: int = 8) -> list[int]:
    """Run the monitor whenever the job's current round has finished, until the job is collected; return the
    round numbers the job record named as current, in order."""
    seen = []
    for _ in range(rounds * 3):
        record = load_job_record(job_key, sandbox.base_url)
        if record.get("collected_at"):
            return seen
        seen.append((record.get("current_round") or {}).get("number", 1))
        _wait_finished(sandbox, _current_study(record))
        monitor_studies(base_url=sandbox.base_url)
    raise AssertionError(f"job {job_key} not collected after {rounds * 3} monitor runs: {seen}")


def test_three_rounds_without_waiting_are_launched_by_the_monitor_once_each(tmp_path, sandbox):
    sandbox.settings(**COIN_FLIPS)
    before = _balance(sandbox)
    spec = _spec(tmp_path, wait_for_completion=False)
    out = tmp_path / "job" / "out"
    launched = _run(sandbox, spec)
    job_key = launched["job_key"]
    assert launched["published"] and not (out / "labels.csv").exists()
    assert _effects(sandbox)["studies"] == 1, "the launch made more than round 1"

    record = load_job_record(job_key, sandbox.base_url)
    _wait_finished(sandbox, record["study_id"])
    pace = {name: value for name, value in sandbox.control.get("/_sandbox/settings").json().items() if name in CRAWL}
    sandbox.settings(**CRAWL)  # round 2 stays ACTIVE while it is looked at (else a slow collect may see it end and go on)
    monitor_studies(base_url=sandbox.base_url)  # announces round 1's finish (no trigger here: nothing collects)
    monitor_studies(base_url=sandbox.base_url)  # collects round 1 itself and launches round 2
    record = load_job_record(job_key, sandbox.base_url)
    assert record["current_round"]["number"] == 2 and not record.get("collected_at")
    indexed = [r["job_key"] for r in active_job_records()]  # other tests' jobs may be active on this Prefect server too
    assert indexed.count(job_key) == 1 and not any(key.startswith(f"{job_key}-round-") for key in indexed), \
        "the job left the index while round 2 runs (or its round's record entered it)"
    assert not (out / "labels.csv").exists()

    made = _effect_posts(sandbox)
    again = collect_report(job_key, sandbox.base_url)  # a second collect of round 1 (or of round 2, once it is done)
    if again["waiting_for_round"] == 2:
        assert _effect_posts(sandbox) == made, "a second collect of the same round sent something"

    sandbox.settings(**pace)
    numbers = _monitor_until_collected(sandbox, job_key)
    assert numbers == sorted(numbers) and max(numbers) == 3, numbers
    summary = json.loads((out / "run.json").read_text())
    _check_three_rounds(sandbox, summary, out)
    assert before - _balance(sandbox) == summary["total_cost_cents"]
    assert not [r for r in active_job_records() if r["job_key"].startswith(job_key)]

    made = _effect_posts(sandbox)
    assert collect_report(job_key, sandbox.base_url)["written"] is False
    monitor_studies(base_url=sandbox.base_url)
    assert _effect_posts(sandbox) == made, "a collect after the last round sent something"
    _check_three_rounds(sandbox, json.loads((out / "run.json").read_text()), out)


def test_a_pilot_waiting_for_its_reviewer_never_holds_the_monitor(tmp_path, sandbox):
    from prefect.settings import PREFECT_API_URL

    sandbox.settings(**{**COIN_FLIPS, "accuracy_mean": 0.97})
    spec = _annotators(write_small_job(tmp_path / "job", rows=ROWS, wait_for_completion=False,
                                       pilot={**PILOT, "then": "approval"}), 2)
    job_key = _run(sandbox, spec)["job_key"]
    _wait_finished(sandbox, load_job_record(job_key, sandbox.base_url)["study_id"])
    monitor_studies(base_url=sandbox.base_url)  # announces
    done = monitor_studies(base_url=sandbox.base_url)  # no reviewer's run yet: says so, does not pause
    assert [d.get("collected") for d in done if d.get("job_key") == job_key] == [False]
    assert _effects(sandbox)["studies"] == 1

    outcome: dict = {}
    reviewer_run = threading.Thread(target=lambda: outcome.update(collect_report(job_key, sandbox.base_url)), daemon=True)
    reviewer_run.start()  # the collect-report run that asks the reviewer (in a deployment: suspended, no worker held)
    deadline = time.monotonic() + 90
    while not (load_job_record(job_key, sandbox.base_url).get("awaiting_review") or {}).get("flow_run_id"):
        assert time.monotonic() < deadline and reviewer_run.is_alive(), "the collect did not ask the reviewer"
        time.sleep(0.3)
    flow_run_id = load_job_record(job_key, sandbox.base_url)["awaiting_review"]["flow_run_id"]
    api = httpx.Client(base_url=PREFECT_API_URL.value(), timeout=30)
    while api.get(f"/flow_runs/{flow_run_id}").json()["state"]["type"] != "PAUSED":
        assert time.monotonic() < deadline, "the reviewer's run did not pause"
        time.sleep(0.3)

    started = time.monotonic()
    done = monitor_studies(base_url=sandbox.base_url)  # while the reviewer has not answered
    assert time.monotonic() - started < 60
    assert [d.get("waiting_for_reviewer") for d in done if d.get("job_key") == job_key] == [flow_run_id]
    assert _effects(sandbox)["studies"] == 1, "something was launched before the reviewer answered"

    answer = {"approve": True, "reviewer": "ann", "comment": "go on"}
    for _ in range(5):  # the harness's SQLite answers 500 "database is locked" under load: a reviewer tries again
        resumed = api.post(f"/flow_runs/{flow_run_id}/resume", json={"run_input": answer})
        if resumed.status_code < 500:
            break
        time.sleep(1)
    assert resumed.json()["status"] == "ACCEPT", resumed.text
    reviewer_run.join(timeout=180)
    assert outcome.get("waiting_for_round") == 2, outcome
    record = load_job_record(job_key, sandbox.base_url)
    assert record["pilot_decision"]["go_on"] is True and "ann approved" in record["pilot_decision"]["decision"]
    assert record.get("awaiting_review") is None

    _monitor_until_collected(sandbox, job_key)
    summary = json.loads((tmp_path / "job" / "out" / "run.json").read_text())
    assert [(r["kind"], r["datapoints"], r["annotators_per_task"]) for r in summary["rounds"]] == [("pilot", 4, 1), ("main", 8, 2), ("main", 4, 1)]
    assert _effects(sandbox)["publishes per study"] == [1, 1, 1]
    responses = pd.read_csv(tmp_path / "job" / "out" / "responses.csv", dtype=str, keep_default_na=False)
    assert (responses.groupby("id").size() == 2).all() and responses["id"].nunique() == 12
    assert "ann approved" in summary["pilot"]["decision"]
    assert any("the pilot makes the job cost more" in note for note in summary["notes"]), summary["notes"]


def test_a_follow_up_refused_by_its_cost_check_ends_the_job_with_the_earlier_outputs(tmp_path, sandbox):
    sandbox.settings(**COIN_FLIPS)
    out = tmp_path / "job" / "out"
    job_key = _run(sandbox, _spec(tmp_path, wait_for_completion=False))["job_key"]
    record = load_job_record(job_key, sandbox.base_url)
    _wait_finished(sandbox, record["study_id"])
    sandbox.settings(account_balance_cents=1)  # round 2's PUBLISH check: the balance does not cover it
    _monitor_until_collected(sandbox, job_key)
    summary = json.loads((out / "run.json").read_text())
    assert [r["kind"] for r in summary["rounds"]] == ["main"]
    assert "round 2 (followup" in summary["stopped"] and "balance" in summary["stopped"], summary["stopped"]
    written = json.loads((out / "summary.json").read_text())
    assert written["stopped"] == summary["stopped"] and written["below_target"] == summary["below_target"]
    labels = pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)
    assert len(labels) == 12  # round 1's answers, merged and written
    unsure = set(labels.loc[labels["confidence"].astype(float) < 0.99, "id"])
    assert unsure and set(summary["below_target"]) == unsure
    effects = _effects(sandbox)
    assert effects["studies"] == 2 and effects["publishes per study"] == [1]  # round 2 made, never published
    assert not load_job_record(job_key, sandbox.base_url).get("collect_error")


def test_partial_results_of_a_later_round_hold_every_round_so_far(tmp_path, sandbox):
    from flows.monitor_studies import watched_view
    from tasks.live_results import monitor_partial_results

    sandbox.settings(**COIN_FLIPS)
    out = tmp_path / "job" / "out"
    job_key = _run(sandbox, _spec(tmp_path, wait_for_completion=False, partial_results_every_seconds=1))["job_key"]
    _wait_finished(sandbox, load_job_record(job_key, sandbox.base_url)["study_id"])
    sandbox.settings(participant_arrival_per_second=0.5, submission_seconds=3.0)  # round 2 runs for a while
    assert collect_report(job_key, sandbox.base_url)["waiting_for_round"] == 2
    view = lambda: watched_view(load_job_record(job_key, sandbox.base_url))  # noqa: E731
    assert view()["watching_round"] == 2
    counts, deadline = None, time.monotonic() + 60
    while not (counts and counts["answers"]) and time.monotonic() < deadline:
        counts = monitor_partial_results(view(), "ACTIVE")
        time.sleep(0.5)
    assert counts and counts["answers"], "no partial result of round 2 was written"
    summary = json.loads((out / "summary.json").read_text())
    responses = pd.read_csv(out / "responses.csv", dtype=str, keep_default_na=False)
    labels = pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)
    assert summary["partial"] is True and summary["counts"] == counts
    assert set(responses["round"]) == {"1", "2"} and len(labels) == 12  # round 1's answers are kept in the partial
    assert counts["answers"] == (responses["round"] == "2").sum() and counts["places_total"] == _study(sandbox, view()["study_id"])["total_available_places"]
