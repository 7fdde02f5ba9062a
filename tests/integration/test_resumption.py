"""Resumption that checks what it finds: a remembered id the server no longer has, and a re-run from a
host (Prefect home) that remembers nothing, against the real sandbox."""

from __future__ import annotations

import json

import httpx
import pytest

from flows.annotation_batch import JobChanged, annotation_batch
from taskbuilder.jobkey import JobTag
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection
from tasks.records import load_job_record, record_name

from tests.integration.jobs import write_small_job
from tests.integration.test_exactly_once import FAST, QUICK_SANDBOX, resources, tags_on_server

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")


def _run(sandbox, spec, **changes):
    job = AnnotationJob.from_yaml(spec)
    if changes:
        job = AnnotationJob.from_dict({**job.model_dump(mode="json"), **changes}, base_dir=spec.parent)
    return annotation_batch(job=job, connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST)


def _api(sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Token {sandbox.token}"}, timeout=30)


def test_a_deleted_draft_study_is_created_again_and_published(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path, publish=False, wait_for_completion=False)
    first = _run(sandbox, spec)
    with _api(sandbox) as api:
        api.delete(f"/api/v1/studies/{first['study_id']}/").raise_for_status()
    second = _run(sandbox, spec, publish=True)
    assert second["study_id"] != first["study_id"] and second["published"] is True
    assert (second["dataset_id"], second["batch_id"]) == (first["dataset_id"], first["batch_id"])
    counts = resources(sandbox, first["job_key"])
    assert counts["studies"] == 1 and counts["publishes"] == 1 and counts["dataset creates"] == 1


def test_after_the_server_forgot_everything_the_job_is_made_again(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path, publish=False, wait_for_completion=False)
    first = _run(sandbox, spec)
    sandbox.control.post("/_sandbox/reset").raise_for_status()  # every dataset, batch and study gone
    sandbox.settings(**QUICK_SANDBOX)
    second = _run(sandbox, spec)
    assert {second[k] for k in ("dataset_id", "batch_id", "study_id")}.isdisjoint(
        {first[k] for k in ("dataset_id", "batch_id", "study_id")})
    assert second["statuses"] == {"dataset": "complete", "batch": "READY", "study": "UNPUBLISHED"}  # V4: the import job
    assert resources(sandbox, first["job_key"])["batches"] == 1
    # the first create was answered and recorded: the dataset is gone, not a lost answer (no "extra dataset" note)
    assert not any("extra empty dataset" in note for note in second["notes"]), second["notes"]
    assert load_job_record(first["job_key"], sandbox.base_url)["dataset_create_attempts"] == 1


def _forget_this_host(tmp_path):
    """What another machine or Prefect home knows of the job: nothing (no cached results, no job record)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    def forget(job_key: str, base_url: str) -> None:
        with get_client(sync_client=True) as client:
            document = client.read_block_document_by_name(name=record_name(job_key, base_url),
                                                          block_type_slug="taskbuilder-job-record")
            client.delete_block_document(document.id)

    return forget, temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: tmp_path / "other-host-storage"})


def test_a_rerun_from_a_host_that_remembers_nothing_creates_nothing(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path, publish=False, wait_for_completion=False)
    first = _run(sandbox, spec)
    forget, other_storage = _forget_this_host(tmp_path)
    forget(first["job_key"], sandbox.base_url)
    with other_storage:
        second = _run(sandbox, spec, publish=True)
    assert (second["dataset_id"], second["batch_id"], second["study_id"]) == (
        first["dataset_id"], first["batch_id"], first["study_id"])
    with _api(sandbox) as api:
        batch = api.get(f"/api/v1/data-collection/batches/{first['batch_id']}").json()
    assert batch["dataset_id"] == second["dataset_id"]
    assert json.loads((tmp_path / "out" / "run.json").read_text())["dataset_id"] == batch["dataset_id"]
    counts = resources(sandbox, first["job_key"])
    assert counts == {"batches": 1, "studies": 1, "dataset creates": 1, "publishes": 1, "uploads": 1}  # not uploaded again


def test_a_changed_csv_under_the_same_name_is_refused_from_a_host_that_remembers_nothing(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path)  # run to completion: published, answered, outputs written
    first = _run(sandbox, spec)
    assert first["statuses"]["study"] == "COMPLETED"
    fingerprint = load_job_record(first["job_key"], sandbox.base_url)["fingerprint"]
    assert tags_on_server(sandbox) == {JobTag(first["job_key"], fingerprint[:12])}
    run_json = (tmp_path / "out" / "run.json").read_bytes()
    forget, other_storage = _forget_this_host(tmp_path)
    forget(first["job_key"], sandbox.base_url)
    csv = tmp_path / "data.csv"
    original = csv.read_text()
    csv.write_text(original.replace("I loved it", "I loved it so much"))

    seen = len(sandbox.requests())
    with other_storage:
        with pytest.raises(JobChanged, match="already used on Prolific .* for other work") as refused:
            _run(sandbox, spec)
        assert first["batch_id"] in str(refused.value) and "new `name:`" in str(refused.value)
        after = sandbox.requests()[seen:]
        assert any(r["method"] == "GET" and r["path"].startswith("/api/v1/data-collection/batches") for r in after)
        assert [(r["method"], r["path"]) for r in after if r["method"] != "GET"] == []  # nothing created, priced, uploaded, published
        assert not any(r["target"] == "s3" for r in after)
        assert (tmp_path / "out" / "run.json").read_bytes() == run_json  # the first run's outputs are not replaced
        assert load_job_record(first["job_key"], sandbox.base_url) is None  # nothing recorded that would refuse the CSV restored

        csv.write_text(original)  # the same work again: adopted, nothing made twice
        again = _run(sandbox, spec)
    assert (again["dataset_id"], again["batch_id"], again["study_id"]) == (first["dataset_id"], first["batch_id"], first["study_id"])
    counts = resources(sandbox, first["job_key"])
    assert counts == {"batches": 1, "studies": 1, "dataset creates": 1, "publishes": 1, "uploads": 1}


def test_resources_tagged_in_the_older_form_are_adopted(tmp_path, sandbox, monkeypatch):
    import flows.job_round
    from taskbuilder.jobkey import tag_name

    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path, publish=False, wait_for_completion=False)
    with monkeypatch.context() as older:  # a run by a version whose tags had no work part
        older.setattr(flows.job_round, "tag_name", lambda name, key, fingerprint=None: tag_name(name, key))
        first = _run(sandbox, spec)
    assert tags_on_server(sandbox) == {JobTag(first["job_key"], None)}
    forget, other_storage = _forget_this_host(tmp_path)
    forget(first["job_key"], sandbox.base_url)
    with other_storage:  # the older form cannot tell the work: the job is found by its key, as before
        second = _run(sandbox, spec, publish=True)
    assert (second["dataset_id"], second["batch_id"], second["study_id"]) == (
        first["dataset_id"], first["batch_id"], first["study_id"])
    counts = resources(sandbox, first["job_key"])
    assert counts == {"batches": 1, "studies": 1, "dataset creates": 1, "publishes": 1, "uploads": 1}
