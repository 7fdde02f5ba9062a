"""The job record costs one Prefect request per step: counted on a whole run of the example job.

Every request the Prefect client sends is counted by path (``httpx`` send of Prefect's sync and async
clients); the record's requests are those to ``/block_documents``, ``/block_types`` and ``/block_schemas``.
Before this change a run made 22 of them (4 reads, 9 read-then-write updates); the bound below is what
"written once per step" allows: one read at the start of the run, one write per step that changes it.
"""

from __future__ import annotations

import collections
import uuid

import pytest

from tests.integration.test_annotation_batch import example_job, run
from tasks.records import load_job_record
from tests.prefect_requests import count_prefect_requests

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")

RECORD_PATHS = ("/block_documents", "/block_types", "/block_schemas")


@pytest.fixture
def prefect_requests():
    """A Counter of ``"METHOD /path"`` of every request sent to the Prefect API while the test runs."""
    seen, stop = count_prefect_requests()
    yield seen
    stop()


def record_requests(seen: collections.Counter[str]) -> int:
    return sum(n for key, n in seen.items() if any(part in key for part in RECORD_PATHS))


def test_a_run_reads_its_record_once_and_writes_it_once_per_step(tmp_path, sandbox, prefect_requests):
    job = example_job(tmp_path)
    run(job, sandbox)  # the first run of the process registers the block type; not what is counted
    prefect_requests.clear()
    job = example_job(tmp_path / "second")
    summary = run(job, sandbox)
    used = record_requests(prefect_requests)
    print(f"record requests per run: {used}; by path: {dict(prefect_requests)}")
    record = load_job_record(summary["job_key"], sandbox.base_url)
    # the record is whole: what every step wrote is there
    assert record["study_id"] == summary["study_id"] and record["batch_id"] == summary["batch_id"]
    assert record["dataset_id"] == summary["dataset_id"] and record["import_id"] == summary["import_id"]
    assert record["statuses"]["study"] == summary["statuses"]["study"] and record["statuses"]["batch"]
    assert record["published"] is True and record["collected_at"] and record["instructions_mode"] == "batch_items"
    assert record["spec"]["name"] == job.name and record["dataset_create_attempts"] == 1
    assert record["cost"]["checked"]["checked_cents"] > 0  # the checked cost is a step of its own (the results summary reads it)
    assert used <= 12, f"{used} record requests in one run: {dict(prefect_requests)}"


def test_a_stale_copy_never_puts_back_a_field_another_writer_changed(prefect_harness):
    from tasks import records

    key, base_url = f"merge-{uuid.uuid4().hex[:8]}", "http://127.0.0.1:1"
    records.update_job_record(key, base_url, study_id="s1", statuses={"study": "UNPUBLISHED", "batch": "READY"})
    stale = dict(records._documents)  # this process's copy, from before the other writer
    records._documents.clear()  # another process (the monitor, collect-report) knows nothing of ours
    records.update_job_record(key, base_url, announced_status="COMPLETED", collected_at="2026-12-01T00:00:00+00:00")
    records._documents.update(stale)
    records.update_job_record(key, base_url, statuses={"study": "COMPLETED"}, published=True)
    stored = records.load_job_record(key, base_url)
    assert stored["collected_at"] == "2026-12-01T00:00:00+00:00" and stored["announced_status"] == "COMPLETED"
    assert stored["statuses"] == {"study": "COMPLETED", "batch": "READY"} and stored["published"] is True


def test_notes_are_appended_to_the_stored_ones_once(prefect_harness):
    from tasks import records

    key, base_url = f"notes-{uuid.uuid4().hex[:8]}", "http://127.0.0.1:1"
    records.update_job_record(key, base_url, notes=["first"])
    records._documents.clear()
    records.update_job_record(key, base_url, notes=["second", "first"])
    assert records.load_job_record(key, base_url)["notes"] == ["first", "second"]


def test_a_record_in_the_earlier_layout_is_read_and_updated(prefect_harness):
    from tasks import records

    key, base_url = f"legacy-{uuid.uuid4().hex[:8]}", "http://127.0.0.1:1"
    legacy = {"job_key": key, "base_url": base_url, "study_id": "s9", "statuses": {"study": "ACTIVE", "batch": "READY"}, "notes": ["n"]}
    records.JobRecord(value=legacy).save(records.record_name(key, base_url), overwrite=True)
    assert records.load_job_record(key, base_url)["statuses"] == {"study": "ACTIVE", "batch": "READY"}
    records.update_job_record(key, base_url, statuses={"study": "COMPLETED"}, collected_at="t")
    stored = records.load_job_record(key, base_url)
    assert stored["statuses"] == {"study": "COMPLETED", "batch": "READY"} and stored["collected_at"] == "t"
    assert stored["study_id"] == "s9" and stored["notes"] == ["n"]
    assert [r["job_key"] for r in records.list_job_records() if r["job_key"] == key] == [key]
