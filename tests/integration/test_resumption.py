"""Resumption that checks what it finds: a remembered id the server no longer has, and a re-run from a
host (Prefect home) that remembers nothing, against the real sandbox."""

from __future__ import annotations

import json

import httpx
import pytest

from flows.annotation_batch import annotation_batch
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection
from tasks.records import record_name

from tests.integration.jobs import write_small_job
from tests.integration.test_exactly_once import FAST, QUICK_SANDBOX, resources

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
