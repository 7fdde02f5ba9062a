"""The webhook receiver's cost follows the active jobs: a delivery reads the index of active jobs and their
records, never every record ever written (issue 18). Against the session's Prefect server, with the real
handler (:func:`deployments.webhooks.handle_study_status_change`) and the records written as runs write them."""

from __future__ import annotations

import uuid

import pytest

from deployments.webhooks import handle_study_status_change
from tasks import records
from tests.prefect_requests import count_prefect_requests

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")

BASE_URL = "http://127.0.0.1:9"  # never contacted: the handler talks to the Prefect server only


def recorded_job(study_id: str, **fields) -> str:
    key = f"hook-{uuid.uuid4().hex[:10]}"
    records.update_job_record(key, BASE_URL, spec={"name": key}, output_location="/tmp/unused", batch_id="b",
                              published=True, study_id=study_id, **fields)
    return key


def delivery_cost(study_id: str, status: str) -> tuple[dict, int, list[str]]:
    """What one delivery answered, how many Prefect requests it sent, and which of them listed records."""
    seen, stop = count_prefect_requests()
    try:
        answer = handle_study_status_change({"resource_id": study_id, "event_type": "study.status.change", "status": status})
    finally:
        stop()
    listings = [path for path in seen if "/block_types/slug/" in path and path.endswith("/block_documents")]
    return answer, sum(seen.values()), listings


def collected_jobs(count: int) -> list[str]:
    return [recorded_job(f"done-{uuid.uuid4().hex[:8]}", collected_at=records.now_iso(), announced_status="COMPLETED")
            for _ in range(count)]


def test_a_delivery_reads_only_the_active_jobs_and_costs_the_same_with_more_collected_records():
    records.active_job_records()  # the index is built on this server (records of earlier tests indexed once)
    active_study = f"live-{uuid.uuid4().hex[:8]}"
    key = recorded_job(active_study)
    collected_jobs(3)

    first, first_requests, listings = delivery_cost(active_study, "ACTIVE")
    assert first["emitted"] is True and first["job_key"] == key
    assert listings == [], f"the delivery listed every job record: {listings}"

    collected_jobs(25)  # many more finished jobs: a delivery must not cost more
    again, again_requests, listings = delivery_cost(active_study, "AWAITING REVIEW")
    assert again["emitted"] is True and again["previous_status"] == "ACTIVE"
    assert listings == []
    assert again_requests <= first_requests, (first_requests, again_requests)


def test_a_collected_job_and_an_unknown_study_get_nothing():
    records.active_job_records()
    done_study = f"done-{uuid.uuid4().hex[:8]}"
    key = recorded_job(done_study, collected_at=records.now_iso(), announced_status="ACTIVE")
    answer, _, listings = delivery_cost(done_study, "COMPLETED")
    assert answer["emitted"] is False and "no active job" in answer["reason"] and listings == []
    assert records.load_job_record(key, BASE_URL).get("announced_status") == "ACTIVE"  # nothing announced again
    unknown, _, _ = delivery_cost(f"nobody-{uuid.uuid4().hex[:8]}", "ACTIVE")
    assert unknown["emitted"] is False


def test_a_job_in_rounds_is_announced_by_its_current_round_s_study_once():
    """Round 2's study (the record's ``current_round``) is the one a delivery goes by, as the monitor; the
    announcement is stored for that round (``round_watch``), so a second delivery of it emits nothing and round
    1's own status is left as it was."""
    records.active_job_records()
    first, second = f"r1-{uuid.uuid4().hex[:8]}", f"r2-{uuid.uuid4().hex[:8]}"
    key = recorded_job(first, statuses={"study": "COMPLETED"}, announced_status="COMPLETED",
                       current_round={"number": 2, "study_id": second, "batch_id": "b2"})
    answer, _, _ = delivery_cost(second, "ACTIVE")
    assert answer["emitted"] is True and answer["job_key"] == key and answer["previous_status"] is None
    again, _, _ = delivery_cost(second, "ACTIVE")
    assert again["emitted"] is False and "announced as ACTIVE before" in again["reason"]
    stored = records.load_job_record(key, BASE_URL)
    assert stored["round_watch"] == {"study_id": second, "status": "ACTIVE", "announced_status": "ACTIVE"}
    assert stored["statuses"]["study"] == "COMPLETED" and stored["announced_status"] == "COMPLETED"
    finished, _, _ = delivery_cost(second, "COMPLETED")
    assert finished["emitted"] is True and finished["previous_status"] == "ACTIVE"
    stale, _, _ = delivery_cost(first, "COMPLETED")  # round 1's study is no longer the watched one
    assert stale["emitted"] is False
