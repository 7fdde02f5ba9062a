"""The main flow against the real sandbox subprocess: end to end, resume, faults, both instruction layouts."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from flows.annotation_batch import BudgetExceeded, JobChanged, annotation_batch
from taskbuilder.cost import CostUnknown
from tasks.batches import LegacyInstructionsRetired
from taskbuilder.errors import UnprocessableEntity
from taskbuilder.polling import PollSettings
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection
from tasks.inputs import InputInvalid

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "review-sentiment"
FAST = PollSettings(interval_seconds=0.2, max_interval_seconds=1.0, dataset_timeout_seconds=60, batch_timeout_seconds=60, study_timeout_seconds=120)

V3 = {"dataset__version": 3}
"""The spec change that asks for the seed's path (a V3 dataset + the legacy instructions endpoint)."""

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")


def example_job(tmp_path: Path, **changes) -> AnnotationJob:
    """The example job, copied to ``tmp_path``, under a unique name, with ``changes`` applied to the spec."""
    folder = tmp_path / "job"
    shutil.copytree(EXAMPLE, folder)
    job = AnnotationJob.from_yaml(folder / "job.yaml")
    data = job.model_dump(mode="json", exclude_unset=False)
    data["name"] = f"test-{uuid.uuid4().hex[:10]}"
    data["output_dir"] = str(tmp_path / "out")
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return AnnotationJob.from_dict(data, base_dir=folder)


def run(job: AnnotationJob, sandbox, **kwargs):
    return annotation_batch(job=job, connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST, **kwargs)


def creates(sandbox) -> dict[str, int]:
    return {
        "datasets": sandbox.count("POST", "/api/v1/data-collection/datasets"),
        "batches": sandbox.count("POST", "/api/v1/data-collection/batches"),
        "studies": sandbox.count("POST", "/api/v1/studies"),
        "publish": sum(1 for r in sandbox.requests() if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition")),
    }


def test_example_job_end_to_end(tmp_path, sandbox):
    job = example_job(tmp_path)
    summary = run(job, sandbox)

    out = tmp_path / "out"
    for name in ("report.csv", "responses.csv", "labels.csv", "participants.csv", "summary.json", "run.json"):
        assert (out / name).is_file(), name
    assert summary["statuses"]["study"] == "COMPLETED"  # the example auto-approves
    assert json.loads((out / "summary.json").read_text())["stopped"] is None  # every run says whether it stopped early
    assert "stopped" in summary and summary["stopped"] is None and json.loads((out / "run.json").read_text())["stopped"] is None
    responses = pd.read_csv(out / "responses.csv", dtype=str, keep_default_na=False)
    source = pd.read_csv(EXAMPLE / "reviews.csv", dtype=str, keep_default_na=False)
    assert len(responses) == len(source) * 2 * 3  # datapoints × instructions × annotators_per_task
    assert list(responses.columns[:7]) == [
        "datapoint_id", "task_group_id", "instruction", "instruction_type", "participant_id", "answer", "answered_at"
    ]
    # cell text reaches participants and comes back byte for byte ("NA", leading zeros, quotes, trailing spaces)
    assert set(responses["review_text"]) == set(source["review_text"])
    assert set(responses["id"]) == set(source["id"])
    choices = responses[responses["instruction_type"] == "multiple_choice"]["answer"]
    assert set(choices) <= {"positive", "neutral", "negative"}
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["study_id"] == summary["study_id"] and run_json["job_key"] == job.name
    assert creates(sandbox) == {"datasets": 1, "batches": 1, "studies": 1, "publish": 1}


def test_rerun_resumes_without_creating_or_publishing_again(tmp_path, sandbox):
    job = example_job(tmp_path, wait_for_completion=False)
    first = run(job, sandbox)
    second = run(job, sandbox)
    assert (second["dataset_id"], second["batch_id"], second["study_id"]) == (first["dataset_id"], first["batch_id"], first["study_id"])
    assert creates(sandbox) == {"datasets": 1, "batches": 1, "studies": 1, "publish": 1}
    # the figures checked before publishing stay in the summary (the re-run has nothing to check)
    assert first["cost"]["checked"] and second["cost"]["checked"] == first["cost"]["checked"]
    assert (first["resumed"], second["resumed"]) == (False, True)  # the closing lines say so


def test_bad_csv_fails_before_any_api_call(tmp_path, sandbox):
    job = example_job(tmp_path)
    Path(job.dataset.csv).write_text("id,review_text,product_name,rating,META_gold\n1,fine,x,5\n")  # too few fields
    with pytest.raises(InputInvalid) as error:
        run(job, sandbox)
    assert "record 1" in str(error.value).lower() or "line 2" in str(error.value).lower()
    assert [r for r in sandbox.requests() if r["target"] == "api"] == []


def test_over_budget_never_publishes(tmp_path, sandbox):
    job = example_job(tmp_path, max_budget=100)
    with pytest.raises(BudgetExceeded, match="max_budget"):
        run(job, sandbox)
    assert creates(sandbox) == {"datasets": 0, "batches": 0, "studies": 0, "publish": 0}


def test_the_accounts_fee_over_budget_creates_nothing(tmp_path, sandbox):
    """C02: the account's fee is 100%, the budget covers rewards + a third: refused before any create."""
    sandbox.settings(service_fee_percent=100.0)
    job = example_job(tmp_path)
    rewards = job.study.reward * 6 * job.study.annotators_per_task  # 30 rows in task groups of 5
    job = example_job(tmp_path / "again", max_budget=int(rewards * 1.5))  # enough at a fee of a third
    with pytest.raises(BudgetExceeded, match="cost calculator") as refusal:
        run(job, sandbox)
    assert "nothing was created" in str(refusal.value)
    assert creates(sandbox) == {"datasets": 0, "batches": 0, "studies": 0, "publish": 0}
    calls = [r["path"] for r in sandbox.requests() if r["target"] == "api"]
    assert any(path.startswith("/api/v1/study-cost-calculator") for path in calls)


def test_calculator_before_the_first_create_and_the_study_cost_before_publish(tmp_path, sandbox):
    run(example_job(tmp_path), sandbox)
    calls = [(r["method"], r["path"]) for r in sandbox.requests() if r["target"] == "api"]
    first_create = next(i for i, (m, p) in enumerate(calls) if m == "POST" and p.startswith("/api/v1/data-collection/datasets"))
    calculator = next(i for i, (m, p) in enumerate(calls) if p.startswith("/api/v1/study-cost-calculator"))
    publish = next(i for i, (m, p) in enumerate(calls) if m == "POST" and p.rstrip("/").endswith("/transition"))
    study_cost = max(i for i, (m, p) in enumerate(calls[:publish]) if m == "GET" and p.rstrip("/").endswith("/cost"))
    assert calculator < first_create and study_cost < publish


def test_a_failing_cost_endpoint_never_publishes(tmp_path, sandbox):
    sandbox.faults({"target": "api", "method": "GET", "path": "/api/v1/studies/*/cost*", "effect": "status", "status": 500})
    with pytest.raises(CostUnknown, match="cannot read the cost"):
        run(example_job(tmp_path), sandbox)
    counts = creates(sandbox)
    assert counts["studies"] == 1 and counts["publish"] == 0


def test_unpublished_when_publish_is_false(tmp_path, sandbox):
    job = example_job(tmp_path, publish=False)
    summary = run(job, sandbox)
    assert summary["statuses"]["study"] == "UNPUBLISHED"
    assert creates(sandbox)["publish"] == 0


def test_retired_legacy_instructions_stop_the_seed_path_before_the_study(tmp_path, sandbox):
    sandbox.settings(legacy_instructions="retired")
    with pytest.raises(LegacyInstructionsRetired, match="dataset.version: 3"):
        run(example_job(tmp_path, **V3), sandbox)
    assert creates(sandbox)["studies"] == 0
    assert sandbox.count("PATCH", "/api/v1/data-collection/batches/*") == 0


def test_spec_written_in_batch_items(tmp_path, sandbox):
    job = example_job(tmp_path)
    data = job.model_dump(mode="json")
    instructions = [
        {k: v for k, v in item.items() if k != "order" and v is not None} for item in data["batch"].pop("instructions")
    ]
    data["batch"]["batch_items"] = [
        {"rows": [{"columns": [{"items": [{"type": "dataset_field", "field": "review_text"}, *instructions]}]}]}
    ]
    job = AnnotationJob.from_dict(data)
    summary = run(job, sandbox)
    assert summary["instructions_mode"] == "batch_items"
    assert sandbox.count("POST", "/api/v1/data-collection/batches/*/instructions") == 0
    assert (tmp_path / "out" / "labels.csv").is_file()


def test_transient_503_is_retried(tmp_path, sandbox):
    sandbox.faults({"target": "api", "method": "POST", "path": "/api/v1/data-collection/batches", "nth": 1, "effect": "status", "status": 503})
    summary = run(example_job(tmp_path, wait_for_completion=False), sandbox)
    assert summary["published"] is True
    statuses = [r["status"] for r in sandbox.requests() if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/data-collection/batches"]
    assert statuses == [503, 201]


def test_permanent_422_fails_at_once_with_the_servers_message(tmp_path, sandbox):
    sandbox.faults({"target": "api", "method": "POST", "path": "/api/v1/studies/", "nth": 1, "effect": "status", "status": 422})
    with pytest.raises(UnprocessableEntity) as error:
        run(example_job(tmp_path), sandbox)
    assert "422" in str(error.value)
    assert sandbox.count("POST", "/api/v1/studies") == 1  # no retry
    assert creates(sandbox)["publish"] == 0


def test_429_with_retry_after_is_waited_out(tmp_path, sandbox):
    sandbox.faults(
        {"target": "api", "method": "POST", "path": "/api/v1/data-collection/datasets", "nth": 1, "effect": "status", "status": 429, "retry_after": 2}
    )
    run(example_job(tmp_path, wait_for_completion=False), sandbox)
    posts = [r for r in sandbox.requests() if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/data-collection/datasets"]
    assert [r["status"] for r in posts] == [429, 201]
    waited = _seconds(posts[1]["time"]) - _seconds(posts[0]["time"])
    assert 1.9 <= waited <= 6, waited


def _seconds(stamp) -> float:
    if isinstance(stamp, (int, float)):
        return float(stamp)
    return pd.Timestamp(stamp).timestamp()


def test_rerun_with_changed_work_is_refused_but_publish_may_change(tmp_path, sandbox):
    draft = example_job(tmp_path, publish=False, wait_for_completion=False)
    first = run(draft, sandbox)
    assert first["statuses"]["study"] == "UNPUBLISHED"

    data = draft.model_dump(mode="json")
    data["study"]["reward"] = 500
    data["publish"] = True
    with pytest.raises(JobChanged, match="new `name`"):
        run(AnnotationJob.from_dict(data), sandbox)
    Path(draft.dataset.csv).write_text(Path(draft.dataset.csv).read_text().replace("Great product", "CHANGED"))
    with pytest.raises(JobChanged):
        run(draft.model_copy(update={"publish": True}), sandbox)
    assert creates(sandbox) == {"datasets": 1, "batches": 1, "studies": 1, "publish": 0}

    Path(draft.dataset.csv).write_text(Path(draft.dataset.csv).read_text().replace("CHANGED", "Great product"))
    second = run(draft.model_copy(update={"publish": True}), sandbox)  # only a run-control field changed
    assert second["study_id"] == first["study_id"] and second["published"] is True
    assert creates(sandbox) == {"datasets": 1, "batches": 1, "studies": 1, "publish": 1}


def test_missing_csv_is_an_input_error(tmp_path, sandbox):
    job = example_job(tmp_path)
    Path(job.dataset.csv).unlink()
    with pytest.raises(InputInvalid, match="dataset.csv"):
        run(job, sandbox)
    assert [r for r in sandbox.requests() if r["target"] == "api"] == []


def test_bulk_approval_approves_exactly_the_passing_submissions(tmp_path, sandbox):
    sandbox.settings(careless_share=0.5, accuracy_mean=0.95, accuracy_spread=0.02, return_rate=0.0, timeout_rate=0.0, seed=5)
    job = example_job(tmp_path, approve_submissions=True, min_gold_accuracy=0.7)
    data = job.model_dump(mode="json")
    data["study"].pop("completion_codes")  # manual review: submissions wait in AWAITING REVIEW
    summary = run(AnnotationJob.from_dict(data), sandbox)

    participants = pd.read_csv(tmp_path / "out" / "participants.csv", dtype=str, keep_default_na=False)
    flagged = set(participants.loc[participants["flagged"] == "True", "participant_id"])
    passing = set(participants.loc[participants["flagged"] == "False", "participant_id"])
    assert flagged and passing, "the settings should give both kinds of participant"
    assert sandbox.count("POST", "/api/v1/submissions/bulk-approve/") == 1
    status_of = dict(zip(participants["participant_id"], participants["submission_status"]))
    assert {status_of[p] for p in passing} == {"APPROVED"}
    assert {status_of[p] for p in flagged} == {"AWAITING REVIEW"}
    assert summary["approved_submissions"] == len(passing)


def test_a_jsonl_dataset_runs_on_the_default_path(tmp_path, sandbox):
    job = example_job(tmp_path)
    frame = pd.read_csv(job.dataset.csv, dtype=str, keep_default_na=False)
    jsonl = Path(job.dataset.csv).with_suffix(".jsonl")
    jsonl.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in frame.to_dict("records")))
    summary = run(example_job(tmp_path / "jsonl", dataset__csv=str(jsonl)), sandbox)
    assert summary["dataset_version"] == 4 and summary["statuses"]["dataset"] == "complete"
    puts = [r["path"] for r in sandbox.requests() if r["target"] == "api" and "/upload-url/" in r["path"]]
    assert puts and all(path.endswith(".jsonl") for path in puts)
    responses = pd.read_csv(tmp_path / "jsonl" / "out" / "responses.csv", dtype=str, keep_default_na=False)
    sent = dict(zip(frame["id"], frame["review_text"]))
    assert responses["review_text"].map(len).sum() > 0 and all(sent[i] == t for i, t in zip(responses["id"], responses["review_text"]))
