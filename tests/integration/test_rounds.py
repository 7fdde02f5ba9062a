"""Adaptive overlap over three rounds against the sandbox (issue 19): one dataset, batch and study per round,
one PUBLISH per study, follow-up studies keep earlier participants out, the answers merged, the money counted;
faults and a crash between rounds resume without a second anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from flows.annotation_batch import annotation_batch
from taskbuilder.client import ClientTimeouts
from taskbuilder.jobkey import JobTag
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.polling import PollSettings
from taskbuilder.rounds import round_key
from tasks.connection import ProlificConnection
from tasks.records import load_job_record

from tests.integration.jobs import write_small_job
from tests.integration.test_exactly_once import tags_on_server

FAST = PollSettings(interval_seconds=0.2, max_interval_seconds=0.5, dataset_timeout_seconds=60, batch_timeout_seconds=60,
                    study_timeout_seconds=120)
REPO = Path(__file__).resolve().parents[2]
ROWS = "id,text,META_gold\n" + "".join(f"{n:03d},Sentence number {n},{'positive' if n % 2 else 'negative'}\n" for n in range(12))
ADAPTIVE = {"start_annotators": 2, "max_annotators": 4, "target_confidence": 0.99}
COIN_FLIPS = dict(dataset_processing_seconds=0.2, batch_setup_seconds=0.2, accuracy_mean=0.5, accuracy_spread=0.0,
                  careless_share=0.0, seed=5, return_rate=0.0, timeout_rate=0.0)
"""Participants who answer at random (seed fixed): two answers disagree on about half the datapoints."""


def _spec(tmp_path: Path, **overrides) -> Path:
    return write_small_job(tmp_path / "job", rows=ROWS, adaptive=ADAPTIVE, **overrides)


def _run(sandbox, spec: Path):
    return annotation_batch(job=AnnotationJob.from_yaml(spec), connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST)


def _balance(sandbox) -> int:
    me = httpx.get(f"{sandbox.base_url}/api/v1/users/me/", headers={"Authorization": f"Token {sandbox.token}"}).json()
    return int(me["available_balance"])


def _effects(sandbox, lost_responses: bool = False) -> dict:
    """Effects carried out: answered 2xx, or done and then cut off (status 0 under a ``lost_response`` rule)."""
    log = [r for r in sandbox.requests()
           if r["target"] == "api" and (200 <= r["status"] < 300 or (lost_responses and r["status"] == 0))]
    publishes = [r["path"].split("/")[4] for r in log if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition")]
    return {
        "datasets": sum(1 for r in log if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/data-collection/datasets"),
        "batches": sum(1 for r in log if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/data-collection/batches"),
        "studies": sum(1 for r in log if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/studies"),
        "publishes per study": sorted({s: publishes.count(s) for s in publishes}.values()),
        "uploads": sum(1 for r in sandbox.requests() if r["target"] == "s3" and r["method"] == "PUT" and 200 <= r["status"] < 300),
    }


def _study(sandbox, study_id: str) -> dict:
    return httpx.get(f"{sandbox.base_url}/api/v1/studies/{study_id}/", headers={"Authorization": f"Token {sandbox.token}"}).json()


def _check_three_rounds(sandbox, summary: dict, out: Path) -> None:
    rounds = summary["rounds"]
    assert [r["kind"] for r in rounds] == ["main", "followup", "followup"], rounds
    assert [r["annotators_per_task"] for r in rounds] == [2, 1, 1]
    assert rounds[0]["datapoints"] == 12 and rounds[1]["datapoints"] >= rounds[2]["datapoints"] >= 1
    assert _effects(sandbox) == {"datasets": 3, "batches": 3, "studies": 3, "publishes per study": [1, 1, 1], "uploads": 3}
    responses = pd.read_csv(out / "responses.csv", dtype=str, keep_default_na=False)
    assert set(responses["round"]) == {"1", "2", "3"}
    per_row = responses.groupby("id").size()
    assert per_row.min() >= 2 and per_row.max() <= 4
    # rows whose two first answers agree (confidence 1.0) got nothing more; every row asked again was unsure
    first = responses[responses["round"] == "1"].groupby("id")["answer"].nunique()
    assert (per_row[first[first == 1].index] == 2).all()
    assert (per_row[first[first == 2].index] >= 3).all()
    asked_again = set(responses.loc[responses["round"] == "2", "id"])
    assert asked_again == set(first[first == 2].index)
    # a follow-up's participants are new to the job: its study keeps the earlier rounds' participants out
    for later, earlier in ((1, [0]), (2, [0, 1])):
        filters = _study(sandbox, rounds[later]["study_id"]).get("filters") or []
        blocked = [f for f in filters if f["filter_id"] == "previous_studies_blocklist"]
        assert blocked and set(blocked[0]["selected_values"]) == {rounds[e]["study_id"] for e in earlier}
    seen = set(responses.loc[responses["round"] == "1", "participant_id"])
    assert not seen & set(responses.loc[responses["round"] != "1", "participant_id"])
    labels = pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)
    assert len(labels) == 12 and set(labels["id"]) == set(responses["id"])
    assert labels["votes"].map(lambda v: sum(json.loads(v).values())).tolist() == per_row[labels["id"]].tolist()
    written = json.loads((out / "summary.json").read_text())
    assert written["rounds"] == rounds and written["total_cost_cents"] == sum(r["cost_cents"] for r in rounds)
    assert set(written["below_target"]) == set(per_row[per_row == 4].index)  # 4 answers, never unanimous: still unsure


@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_three_rounds_one_of_everything_per_round_and_the_money_counted(tmp_path, sandbox):
    sandbox.settings(**COIN_FLIPS)
    before = _balance(sandbox)
    spec = _spec(tmp_path)
    summary = _run(sandbox, spec)
    _check_three_rounds(sandbox, summary, tmp_path / "job" / "out")
    work = load_job_record(summary["job_key"], sandbox.base_url)["fingerprint"][:12]  # every round carries the job's work
    assert tags_on_server(sandbox) == {JobTag(round_key(summary["job_key"], n), work) for n in (1, 2, 3)}
    assert before - _balance(sandbox) == summary["total_cost_cents"], "the summary's cost is not the balance's fall"
    assert _spent(summary) == summary["total_cost_cents"], "payments.spent is not every round's spending"
    assert json.loads((tmp_path / "job" / "out" / "summary.json").read_text())["stopped"] is None

    again = _run(sandbox, spec)  # a re-run: everything found, nothing created or published again
    assert again["rounds"] == summary["rounds"]
    _check_three_rounds(sandbox, again, tmp_path / "job" / "out")


@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_a_round_over_the_budget_is_not_launched(tmp_path, sandbox):
    sandbox.settings(**COIN_FLIPS)
    first = _run(sandbox, _spec(tmp_path))
    spent_first_round = first["rounds"][0]["cost_cents"]
    spec = _spec(tmp_path / "tight", name=first["job_key"] + "-b", max_budget=spent_first_round + 1)
    summary = _run(sandbox, spec)
    assert len(summary["rounds"]) == 1 and summary["total_cost_cents"] <= spent_first_round + 1
    assert summary["below_target"], "the datapoints left below the target are not named"
    assert any("was not launched" in note for note in summary["notes"])
    left = spent_first_round + 1 - summary["rounds"][0]["cost_cents"]
    assert (f"{left / 100:.2f} GBP of max_budget {(spent_first_round + 1) / 100:.2f} GBP is left "
            f"({summary['rounds'][0]['cost_cents'] / 100:.2f} GBP spent by earlier rounds)") in summary["stopped"]
    assert summary["stopped"].startswith("round 2 (followup, ") and summary["stopped"] in summary["notes"]
    assert json.loads((tmp_path / "tight" / "job" / "out" / "summary.json").read_text())["stopped"] == summary["stopped"]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
@pytest.mark.parametrize("effect", [{"effect": "lost_response"}, {"effect": "status", "status": 503}, {"effect": "drop"}],
                         ids=["lost response", "503", "drop"])
@pytest.mark.parametrize("step", [("POST", "/api/v1/data-collection/datasets"), ("POST", "/api/v1/studies/"),
                                  ("POST", "/api/v1/studies/*/transition/")], ids=["dataset", "study", "publish"])
def test_faults_in_a_follow_up_round(step, effect, tmp_path, sandbox):
    """The second round's create or PUBLISH fails once (its second such request): still one of each."""
    sandbox.settings(**COIN_FLIPS)
    sandbox.faults({"target": "api", "method": step[0], "path": step[1], "nth": 2, **effect})
    connection = ProlificConnection(base_url=sandbox.base_url, timeouts=ClientTimeouts(
        read_seconds=1.5, poll_read_seconds=1.5, upload_read_seconds=3, connect_seconds=2))
    summary = annotation_batch(job=AnnotationJob.from_yaml(_spec(tmp_path)), connection=connection, polling=FAST)
    counts = _effects(sandbox, lost_responses=effect["effect"] == "lost_response")
    assert len(summary["rounds"]) == 3
    assert counts["batches"] == 3 and counts["studies"] <= 3 and counts["publishes per study"] == [1, 1, 1]
    assert counts["datasets"] <= 4  # a lost dataset answer may leave one empty dataset (NOTES.md, the dataset window)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_crash_between_rounds_resumes_at_the_next_round(tmp_path, sandbox):
    """SIGKILL the run right after round 2's PUBLISH; the re-run collects round 2 and runs round 3."""
    from prefect.settings import PREFECT_API_URL

    sandbox.settings(**COIN_FLIPS)
    spec = _spec(tmp_path)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp_path / "storage"),
           "PROLIFIC_API_TOKEN": sandbox.token, "PYTHONPATH": str(REPO)}
    log = tmp_path / "run.log"
    command = [sys.executable, "-m", "flows.cli", "run", str(spec), "--api-url", sandbox.base_url, "--poll-seconds", "0.2",
               "--poll-max-seconds", "0.5"]

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)

    process, deadline = start(), time.monotonic() + 180
    while sandbox.count("POST", "/api/v1/studies/*/transition/") < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before round 2 was published: " + log.read_text()[-2000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert start().wait(timeout=300) == 0, log.read_text()[-3000:]
    summary = json.loads((tmp_path / "job" / "out" / "run.json").read_text())
    _check_three_rounds(sandbox, summary, tmp_path / "job" / "out")


PILOT = {"datapoints": 4, "annotators_per_task": 1, "min_agreement": 0.9, "max_time_ratio": 100, "then": "auto"}


@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_a_pilot_below_its_thresholds_launches_nothing_more(tmp_path, sandbox):
    sandbox.settings(**COIN_FLIPS)
    before = _balance(sandbox)
    spec = _annotators(write_small_job(tmp_path / "job", rows=ROWS, pilot={**PILOT, "annotators_per_task": 3}), 3)
    summary = _run(sandbox, spec)
    assert [r["kind"] for r in summary["rounds"]] == ["pilot"] and summary["rounds"][0]["datapoints"] == 4
    assert summary["pilot"]["passed"] is False and "ends after the pilot" in summary["pilot"]["decision"]
    assert _effects(sandbox)["studies"] == 1 and _effects(sandbox)["publishes per study"] == [1]
    assert before - _balance(sandbox) == summary["total_cost_cents"] == _spent(summary)
    assert summary["stopped"].startswith("ended after the pilot: thresholds not met (α of ")
    assert summary["stopped"].endswith("; 8 datapoints not asked") and summary["stopped"] in summary["notes"]
    assert json.loads((tmp_path / "job" / "out" / "summary.json").read_text())["stopped"] == summary["stopped"]
    sampled = pd.read_csv(tmp_path / "job" / "out" / "labels.csv", dtype=str)
    assert len(sampled) == 4 and sampled["META_gold"].value_counts().to_dict() == {"positive": 2, "negative": 2}


@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_a_passing_pilot_goes_on_and_pays_once_per_answer(tmp_path, sandbox):
    sandbox.settings(**{**COIN_FLIPS, "accuracy_mean": 0.97})
    before = _balance(sandbox)
    spec = _annotators(write_small_job(tmp_path / "job", rows=ROWS, pilot={**PILOT, "min_agreement": -1.0}), 2)
    summary = _run(sandbox, spec)
    rounds = summary["rounds"]
    assert [(r["kind"], r["datapoints"], r["annotators_per_task"]) for r in rounds] == [("pilot", 4, 1), ("main", 8, 2), ("main", 4, 1)]
    report = summary["pilot"]
    assert report["passed"] is True and report["median_minutes"] is not None and report["recommended_hourly_cents"]
    assert report["full_job_places"] == 4 * 2 and report["full_job_cost_cents"] > 0
    responses = pd.read_csv(tmp_path / "job" / "out" / "responses.csv", dtype=str, keep_default_na=False)
    assert (responses.groupby("id").size() == 2).all() and responses["id"].nunique() == 12  # every row: 2 answers, no more
    pilot_rows = set(responses.loc[responses["round"] == "1", "id"])
    assert not pilot_rows & set(responses.loc[responses["round"] == "2", "id"])  # the pilot's rows are not asked again in full
    assert set(responses.loc[responses["round"] == "3", "id"]) == pilot_rows
    assert before - _balance(sandbox) == summary["total_cost_cents"]
    assert _effects(sandbox)["publishes per study"] == [1, 1, 1]


def _spent(summary: dict) -> int:
    """The run's ``payments.spent`` in cents: rewards, fees, tax and bonuses."""
    spent = summary["payments"]["spent"]
    return sum(spent[name] for name in ("rewards_cents", "fees_cents", "tax_cents", "bonuses_cents"))


def _annotators(spec: Path, annotators: int) -> Path:
    """``spec`` with ``study.annotators_per_task`` set to ``annotators``."""
    data = yaml.safe_load(spec.read_text())
    data["study"]["annotators_per_task"] = annotators
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec
