"""After money is spent nothing is lost: the raw report is kept before parsing, every datapoint and every
dataset column reaches the outputs, approvals are counted from the server, the work folder goes away.

The real flow against the real sandbox (and a real S3-compatible server for ``s3://`` outputs).
"""

from __future__ import annotations

import json
import tempfile

import httpx
import pandas as pd
import pytest

from flows.annotation_batch import annotation_batch
from taskbuilder.jobkey import job_key_of
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection
from tasks.results import ReportNotParsed

from tests.integration.jobs import write_small_job
from tests.integration.test_exactly_once import FAST
from tests.unit.test_outputs import ACCESS_KEY, BUCKET, SECRET_KEY, _client, s3_endpoint  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")


def _run(sandbox, spec, **kwargs):
    job = AnnotationJob.from_yaml(spec)
    return annotation_batch(job=job, connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST, **kwargs)


def _served_report(sandbox, batch_id: str) -> bytes:
    """The report exactly as the sandbox serves it (pointer or inline)."""
    headers = {"Authorization": f"Token {sandbox.token}"}
    answer = httpx.get(f"{sandbox.base_url}/api/v1/data-collection/batches/{batch_id}/report/", headers=headers, timeout=30)
    answer.raise_for_status()
    if answer.headers.get("content-type", "").startswith("application/json"):
        return httpx.get(answer.json()["url"], timeout=30).content
    return answer.content


def _batch_of(sandbox, job_key: str) -> str:
    """The id of the job's batch on the sandbox (its name carries the job key)."""
    headers = {"Authorization": f"Token {sandbox.token}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=30) as api:
        workspace = api.get("/api/v1/workspaces/").json()["results"][0]["id"]
        batches = api.get("/api/v1/data-collection/batches", params={"workspace_id": workspace}).json()["results"]
    [batch] = [b for b in batches if job_key_of(b["name"]) == job_key]
    return batch["id"]


def _csv(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture
def forced_parse_failure(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("forced parse failure\nsecond line of the reason")

    monkeypatch.setattr("tasks.results.read_report", broken)


@pytest.mark.usefixtures("forced_parse_failure")
def test_a_report_that_cannot_be_parsed_is_kept_raw_and_the_error_says_where(tmp_path, sandbox):
    spec = write_small_job(tmp_path)
    with pytest.raises(ReportNotParsed) as raised:
        _run(sandbox, spec)
    kept = tmp_path / "out" / "report.csv"
    message = str(raised.value)
    assert "\n" not in message and str(kept) in message and "forced parse failure" in message
    assert kept.read_bytes() == _served_report(sandbox, _batch_of(sandbox, AnnotationJob.from_yaml(spec).name))
    assert not (tmp_path / "out" / "labels.csv").exists()


@pytest.mark.usefixtures("forced_parse_failure")
def test_a_report_that_cannot_be_parsed_is_kept_raw_in_s3_too(tmp_path, sandbox, s3_endpoint, monkeypatch):
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                        "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    prefix = f"s3://{BUCKET}/kept-{tmp_path.name}"
    spec = write_small_job(tmp_path, output_dir=prefix)
    with pytest.raises(ReportNotParsed, match=f"kept at {prefix}/report.csv"):
        _run(sandbox, spec)
    body = _client(s3_endpoint).get_object(Bucket=BUCKET, Key=f"kept-{tmp_path.name}/report.csv")["Body"].read()
    assert body.startswith(b"DataPoint_ID,Task_Group_ID,Task_Type,Question,")


def test_dataset_columns_named_like_output_and_report_columns_reach_every_output(tmp_path, sandbox):
    rows = ("participant_id,answer,text,Annotator1_ID,META_gold\n"
            "00123,x1,I loved it,p1,positive\n"
            "04567,x2,Broken on arrival,p2,negative\n"
            "00009,x3,Would not buy again,p3,negative\n")
    spec = write_small_job(tmp_path, rows=rows, dataset={"name": "clash", "csv": "data.csv", "id_column": "participant_id",
                                                         "gold_column": "META_gold"})
    summary = _run(sandbox, spec)
    out = tmp_path / "out"
    renamed = ["participant_id_original", "answer_original", "text", "Annotator1_ID", "META_gold"]
    responses, labels = _csv(out / "responses.csv"), _csv(out / "labels.csv")
    assert list(responses.columns[7:]) == renamed and list(labels.columns[8:]) == renamed
    assert labels["participant_id_original"].tolist() == ["00009", "00123", "04567"]  # ordered by the id, text kept
    assert dict(zip(labels["participant_id_original"], labels["Annotator1_ID"])) == {"00123": "p1", "04567": "p2", "00009": "p3"}
    assert set(responses["participant_id"]) != {"p1", "p2", "p3"}  # the participants' own ids
    assert summary["outputs"]["labels.csv"].endswith("labels.csv")


def test_datapoints_nobody_answered_stay_in_labels_and_the_summary(tmp_path, sandbox):
    spec = write_small_job(tmp_path)  # 6 datapoints in 2 task groups of 3, one annotator each
    data = AnnotationJob.from_yaml(spec).model_dump(mode="json")
    data["study"]["total_available_places"] = 1  # one group is answered, the other never
    summary = annotation_batch(job=AnnotationJob.from_dict(data, base_dir=tmp_path),
                               connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST)
    out = tmp_path / "out"
    labels = _csv(out / "labels.csv")
    figures = json.loads((out / "summary.json").read_text())
    assert labels["id"].tolist() == ["001", "002", "003", "004", "005", "006"]
    unlabelled = labels[labels["votes"] == "{}"]
    assert len(unlabelled) == 3 and set(unlabelled["label"]) == {""}
    assert figures["datapoints"] == 6 and figures["datapoints_without_answers"] == 3
    assert summary["published"] is True


def test_a_lost_bulk_approve_answer_is_counted_from_the_server(tmp_path, sandbox):
    sandbox.settings(return_rate=0.0, timeout_rate=0.0, careless_share=0.0)
    sandbox.faults({"target": "api", "method": "POST", "path": "/api/v1/submissions/bulk-approve/", "nth": 1,
                    "effect": "lost_response"})
    spec = write_small_job(tmp_path, approve_submissions=True)
    data = AnnotationJob.from_yaml(spec).model_dump(mode="json")
    # manual review: without AUTOMATICALLY_APPROVE the submissions wait in AWAITING REVIEW
    data["study"]["completion_codes"] = [{"code": "OK1", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}]
    summary = annotation_batch(job=AnnotationJob.from_dict(data, base_dir=tmp_path),
                               connection=ProlificConnection(base_url=sandbox.base_url, timeouts=_short()), polling=FAST)
    headers = {"Authorization": f"Token {sandbox.token}"}
    submissions = httpx.get(f"{sandbox.base_url}/api/v1/studies/{summary['study_id']}/submissions/", headers=headers).json()["results"]
    approved_on_server = sum(1 for s in submissions if s["status"] == "APPROVED")
    assert [r["status"] for r in sandbox.requests() if r["path"].startswith("/api/v1/submissions/bulk-approve")][0] == 0
    assert approved_on_server == 2 and summary["approved_submissions"] == approved_on_server
    assert json.loads((tmp_path / "out" / "run.json").read_text())["approved_submissions"] == approved_on_server


def _short():
    from tests.integration.test_exactly_once import SHORT_TIMEOUTS

    return SHORT_TIMEOUTS


def test_the_work_folder_is_removed_after_a_run_and_kept_with_its_path_after_a_failure(tmp_path, sandbox, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    _run(sandbox, write_small_job(tmp_path / "ok"))
    assert [p.name for p in scratch.iterdir() if p.name.startswith("taskbuilder-")] == []

    def broken(*args, **kwargs):
        raise RuntimeError("forced")

    monkeypatch.setattr("tasks.results.read_report", broken)
    with pytest.raises(ReportNotParsed) as raised:
        _run(sandbox, write_small_job(tmp_path / "fails"))
    kept = [p for p in scratch.iterdir() if p.name.startswith("taskbuilder-")]
    assert len(kept) == 1 and any(str(kept[0]) in note for note in raised.value.__notes__)
    assert (kept[0] / "report.csv").is_file()


def test_refused_input_leaves_no_work_folder(tmp_path, sandbox, monkeypatch):
    from tasks.inputs import InputInvalid

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(InputInvalid):
        _run(sandbox, write_small_job(tmp_path, rows="id,text,META_gold\n1,a,positive\n1,b,negative\n"))
    assert list(scratch.iterdir()) == []


def test_more_study_places_than_the_batch_has_are_refused_before_anything_is_created(tmp_path, sandbox):
    """Prolific refuses a study with more places than its batch has, after the dataset and batch exist: the job
    checks it first (6 datapoints in 2 task groups × 1 annotator = 2 places)."""
    from tasks.inputs import InputInvalid

    spec = write_small_job(tmp_path)
    data = AnnotationJob.from_yaml(spec).model_dump(mode="json")
    data["study"]["total_available_places"] = 3
    before = len(sandbox.requests())
    with pytest.raises(InputInvalid, match="total_available_places is 3, but the batch has 2 places"):
        annotation_batch(job=AnnotationJob.from_dict(data, base_dir=tmp_path),
                         connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST)
    creates = [r for r in sandbox.requests()[before:] if r["method"] == "POST" and "cost-calculator" not in r["path"]]
    assert creates == []
