"""The study monitor's cost follows the active jobs: collected records are not read, studies are read in bulk.

Against the sandbox subprocess and the session's Prefect server: job records written as runs write them, studies
published on the sandbox with participants too slow to finish them.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from flows.monitor_studies import monitor_studies
from tasks import records
from tasks.active_jobs import active_record_names
from tests.sandbox.helpers import create_study, publish, ready_batch, ready_dataset, sentences_csv, write_csv

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results", "empty_index")


@pytest.fixture
def empty_index():
    """No active job left in the index by earlier tests of the session (their records stay)."""
    from prefect.client.orchestration import get_client

    from tasks.active_jobs import active_variable_name, mark_done, mark_index_built

    mark_index_built()
    with get_client(sync_client=True) as client:
        for name in active_record_names():
            mark_done(client, active_variable_name(name, records.RECORD_PREFIX))

SLOW = {"participant_arrival_per_second": 0.0001, "submission_seconds": 1e6, "dataset_processing_seconds": 0.0,
        "batch_setup_seconds": 0.0}


def active_studies(sandbox, tmp_path, count: int) -> list[str]:
    sandbox.control.post("/_sandbox/settings", json=SLOW).raise_for_status()
    with httpx.Client(base_url=sandbox.base_url + "/api/v1", headers={"Authorization": f"Token {sandbox.token}"}, timeout=30) as api:
        workspace_id = api.get("/workspaces/").json()["results"][0]["id"]
        batch = ready_batch(api, workspace_id, ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(9)))["id"], tasks_per_group=3)
        ids = [create_study(api, batch["id"])["id"] for _ in range(count)]
        for study_id in ids:
            publish(api, study_id)
    return ids


def job(sandbox, study_id: str, **fields) -> str:
    key = f"mon-{uuid.uuid4().hex[:10]}"
    records.update_job_record(key, sandbox.base_url, spec={"name": key}, output_location="/tmp/unused", batch_id="b",
                              published=True, study_id=study_id, **fields)
    return key


def test_the_index_holds_a_job_from_its_study_until_it_is_collected(sandbox):
    key = job(sandbox, "s-" + uuid.uuid4().hex[:8])
    name = records.record_name(key, sandbox.base_url)
    assert name in active_record_names()
    records.update_job_record(key, sandbox.base_url, collected_at=records.now_iso())
    assert name not in active_record_names()
    records.update_job_record(key, sandbox.base_url, statuses={"study": "COMPLETED"})  # a later write does not re-index it
    assert name not in active_record_names()


def test_the_monitor_reads_active_studies_in_bulk_and_never_the_collected_ones(sandbox, tmp_path):
    studies = active_studies(sandbox, tmp_path, 4)
    keys = [job(sandbox, study_id) for study_id in studies[:3]]
    collected = job(sandbox, studies[3], collected_at=records.now_iso(), announced_status="ACTIVE")
    before = len(sandbox.requests())
    done = monitor_studies(base_url=sandbox.base_url)
    log = sandbox.requests()[before:]
    gets = [r["path"] for r in log if r["target"] == "api"]
    assert gets == ["/api/v1/studies/"], gets  # one list request for the three active jobs, none for the collected one
    announced = {d["job_key"]: d["status"] for d in done if "event_id" in d}
    assert announced == {key: "ACTIVE" for key in keys}
    assert records.load_job_record(collected, sandbox.base_url)["statuses"] == {}
    before = len(sandbox.requests())
    assert monitor_studies(base_url=sandbox.base_url) == []  # nothing changed: nothing announced twice
    assert [r["path"] for r in sandbox.requests()[before:] if r["target"] == "api"] == ["/api/v1/studies/"]
    for key in keys:
        records.update_job_record(key, sandbox.base_url, collected_at=records.now_iso())


def test_one_active_job_is_read_with_one_get_and_a_study_missing_from_the_list_is_read_alone(sandbox, tmp_path):
    study_id = active_studies(sandbox, tmp_path, 1)[0]
    key = job(sandbox, study_id, announced_status="ACTIVE", statuses={"study": "ACTIVE"})
    before = len(sandbox.requests())
    assert monitor_studies(base_url=sandbox.base_url) == []
    assert [r["path"] for r in sandbox.requests()[before:] if r["target"] == "api"] == [f"/api/v1/studies/{study_id}/"]
    records.update_job_record(key, sandbox.base_url, collected_at=records.now_iso())
    assert records.record_name(key, sandbox.base_url) not in active_record_names()
