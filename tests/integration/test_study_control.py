"""A hand on the study against the sandbox: pause, resume, stop, add places — each once, a repeat does nothing."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from flows.study_control import StudyControlRefused, add_study_places, pause_study, resume_study, stop_study
from tests.integration.test_annotation_batch import example_job, run

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")

CRAWL = {"participant_arrival_per_second": 0.2, "submission_seconds": 30.0}
"""Participants so slow that the study stays ACTIVE through the test."""


def transitions(sandbox, action: str) -> int:
    return sum(1 for r in sandbox.requests()
               if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition") and (r["body"] or {}).get("action") == action)


def patches(sandbox) -> list[dict]:
    return [r["body"] for r in sandbox.requests() if r["method"] == "PATCH" and "/studies/" in r["path"]]


@pytest.fixture
def running_job(tmp_path, sandbox):
    """A published example job nobody waits for, its study ACTIVE: ``(job, summary)``."""
    sandbox.settings(**CRAWL)
    job = example_job(tmp_path, wait_for_completion=False)
    summary = run(job, sandbox)
    return job, summary


def test_pause_and_resume_each_once_and_a_repeat_does_nothing(running_job, sandbox):
    job, summary = running_job
    paused = pause_study(summary["job_key"], sandbox.base_url)
    assert paused["changed"] and (paused["status_before"], paused["status_after"]) == ("ACTIVE", "PAUSED")
    again = pause_study(summary["job_key"], sandbox.base_url)
    assert not again["changed"] and "already paused" in again["message"]
    assert transitions(sandbox, "PAUSE") == 1

    resumed = resume_study(summary["job_key"], sandbox.base_url)
    assert resumed["changed"] and resumed["status_after"] == "ACTIVE"
    assert "already active" in resume_study(summary["job_key"], sandbox.base_url)["message"]
    assert transitions(sandbox, "START") == 1


def test_stop_once_then_nothing_and_no_pause_after(running_job, sandbox):
    job, summary = running_job
    stopped = stop_study(summary["job_key"], sandbox.base_url)
    assert stopped["changed"] and stopped["status_after"] in ("AWAITING REVIEW", "COMPLETED")
    assert "already stopped" in stop_study(summary["job_key"], sandbox.base_url)["message"]
    with pytest.raises(StudyControlRefused, match="cannot pause"):
        pause_study(summary["job_key"], sandbox.base_url)
    assert transitions(sandbox, "STOP") == 1 and transitions(sandbox, "PAUSE") == 0


def test_add_places_once_past_the_task_groups_a_repeat_needs_again_and_the_budget_holds(running_job, sandbox):
    job, summary = running_job
    key = summary["job_key"]
    added = add_study_places(key, sandbox.base_url, 3)
    assert added["changed"] and added["places"] == 21  # 6 task groups × 3 annotators = 18, + 3
    assert patches(sandbox) == [{"total_available_places": 21, "data_collection_metadata": {"annotators_per_task": 4}}]
    said = re.search(r"the 3 places added cost ([\d,]+\.\d\d) ([A-Z]{3}) \(fees and VAT included\), the study's places now "
                     r"([\d,]+\.\d\d) \2, the job ([\d,]+\.\d\d) \2 of max_budget", added["message"])
    assert said, added["message"]  # what the addition costs, in the account's currency
    added_cost, places_cost, job_cost = (float(said.group(n).replace(",", "")) for n in (1, 3, 4))
    assert 0 < added_cost < places_cost <= job_cost
    assert abs(added_cost - places_cost * 3 / 21) < 0.02  # 3 of the 21 places, at one price per place

    repeat = add_study_places(key, sandbox.base_url, 3)
    assert not repeat["changed"] and "added already" in repeat["message"] and len(patches(sandbox)) == 1
    assert add_study_places(key, sandbox.base_url, 3, again=True)["places"] == 24
    assert len(patches(sandbox)) == 2

    with pytest.raises(StudyControlRefused, match="over max_budget"):
        add_study_places(key, sandbox.base_url, 100, max_budget_cents=job.max_budget)
    assert len(patches(sandbox)) == 2
    with sandbox_client(sandbox) as client:
        assert client.get(f"/api/v1/studies/{summary['study_id']}/").json()["total_available_places"] == 24


def test_the_cli_pauses_once_and_says_so_when_repeated(running_job, sandbox, tmp_path):
    from flows.cli import app

    job, summary = running_job
    spec = tmp_path / "job" / "named.yaml"
    spec.write_text((tmp_path / "job" / "job.yaml").read_text().replace("name: review-sentiment-example", f"name: {summary['job_key']}"))
    runner = CliRunner()
    first = runner.invoke(app, ["study", "pause", str(spec), "--api-url", sandbox.base_url])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["study", "pause", str(spec), "--api-url", sandbox.base_url])
    assert second.exit_code == 0 and "already paused" in second.output
    refused = runner.invoke(app, ["study", "add-places", "0", str(spec), "--api-url", sandbox.base_url])
    assert refused.exit_code == 2
    assert transitions(sandbox, "PAUSE") == 1


def sandbox_client(sandbox):
    import httpx

    return httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Token {sandbox.token}"}, timeout=30)


def test_an_addition_recorded_but_not_sent_is_finished_not_added_again(running_job, sandbox):
    """A crash between writing the request to the record and the PATCH (or a lost answer): the next command
    sets the recorded target, it does not add its places on top."""
    from tasks.records import update_job_record

    job, summary = running_job
    key = summary["job_key"]
    update_job_record(key, sandbox.base_url, places_request={
        "study_id": summary["study_id"], "added": 2, "from_places": 18, "to_places": 20, "at": "then", "done": False})
    finished = add_study_places(key, sandbox.base_url, 2)
    assert finished["changed"] and finished["places"] == 20
    assert patches(sandbox) == [{"total_available_places": 20, "data_collection_metadata": {"annotators_per_task": 4}}]
    assert not add_study_places(key, sandbox.base_url, 2)["changed"]
    assert len(patches(sandbox)) == 1
