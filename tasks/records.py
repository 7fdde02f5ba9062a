"""The job record: what one job created and where its outputs went, readable by any worker.

Kept as a Prefect block of this project's type ``taskbuilder-job-record``, named
``taskbuilder-job-<slug>`` (slug of the job key and the API URL), so a later stage (collect-report), a
re-run or another worker on the same Prefect server finds the job by its key. A block rather than a
Variable because variables hold at most 5,000 characters and a record carries the whole job spec
(Prefect 3.9 no longer ships a generic JSON block).

Shape (a dict, JSON): ``job_key``, ``base_url``, ``workspace_id``, ``spec`` (the job spec as JSON),
``dataset_id``, ``batch_id``, ``study_id``, ``instructions_mode`` (``"legacy"`` | ``"batch_items"``),
``statuses`` (resource → last status *seen*), ``output_location``, ``notes`` (list of str),
``dataset_create_attempts`` (int), ``updated_at`` (ISO-8601), and what has been *done*, kept apart
from what was seen: ``published`` (bool), ``announced_status`` (the last study status announced as
``prolific.study.status-changed``), ``collected_at`` (ISO-8601, set once the outputs are written),
``collect_error`` (the last failed collect, cleared on success). :func:`collect_decision` is the one
rule the monitor and the webhook receiver apply to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError

from taskbuilder.jobkey import storage_slug

RECORD_PREFIX = "taskbuilder-job-"


class JobRecord(Block):
    """A Prefect block holding one job record (``value``: the dict described in the module docstring)."""

    _block_type_name = "Taskbuilder Job Record"
    _block_type_slug = "taskbuilder-job-record"
    _description = "What one Prolific annotation job created and where its outputs went (no secrets)."

    value: dict[str, Any]


def record_name(job_key: str, base_url: str) -> str:
    """Block name of the record of ``job_key`` on the API at ``base_url``."""
    return RECORD_PREFIX + storage_slug(job_key, base_url)


def _read_document(client: Any, name: str) -> Any:
    """The record's block document, or ``None`` when there is none (or the block type is not registered yet)."""
    try:
        return client.read_block_document_by_name(name=name, block_type_slug=JobRecord.get_block_type_slug())
    except ObjectNotFound:
        return None


def load_job_record(job_key: str, base_url: str) -> dict[str, Any] | None:
    """The stored record, or ``None`` when this job has none yet."""
    with get_client(sync_client=True) as client:
        document = _read_document(client, record_name(job_key, base_url))
    return dict(document.data["value"]) if document is not None else None


def update_job_record(job_key: str, base_url: str, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the record (creating it) and store it; returns the new record.

    ``statuses`` and ``notes`` are merged (dict update / appended without duplicates), other fields
    replaced. The first save goes through ``JobRecord.save`` (it registers the block type and schema);
    later ones replace the document's data with one ``update_block_document`` call, which saves the
    half-dozen registration requests ``Block.save`` makes every time (``benchmarks/bench_job.py``).
    """
    name = record_name(job_key, base_url)
    with get_client(sync_client=True) as client:
        document = _read_document(client, name)
        record = dict(document.data["value"]) if document is not None else {
            "job_key": job_key, "base_url": base_url, "statuses": {}, "notes": []}
        for field_name, value in fields.items():
            if field_name == "statuses":
                record.setdefault("statuses", {}).update(value)
            elif field_name == "notes":
                record.setdefault("notes", [])
                record["notes"] += [note for note in value if note not in record["notes"]]
            else:
                record[field_name] = value
        record["updated_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        if document is None:
            _save_new(name, record)
        else:
            client.update_block_document(
                block_document_id=document.id,
                block_document=BlockDocumentUpdate(data={"value": record}, merge_existing_data=False),
            )
    return record


def _save_new(name: str, record: dict[str, Any]) -> None:
    """First save of a record: ``JobRecord.save`` also registers the block type and schema. On a fresh Prefect
    server, runs that start together race to register the type (``create_block_type`` answers 409 to all but
    one: 5 of 6 concurrent first saves failed, ``benchmarks/bench_workers.py``); a loser saves once more,
    when the type exists."""
    try:
        JobRecord(value=record).save(name, overwrite=True)
    except (ObjectAlreadyExists, ObjectNotFound):
        JobRecord(value=record).save(name, overwrite=True)


def list_job_records() -> list[dict[str, Any]]:
    """Every job record on the current Prefect server (used by the study monitor)."""
    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type(JobRecord.get_block_type_slug())
        except PrefectHTTPStatusError as error:  # 404: no record saved yet, the block type is not registered
            if error.response.status_code == 404:
                return []
            raise
    return [dict(document.data["value"]) for document in documents if (document.name or "").startswith(RECORD_PREFIX)]


STUDY_FINISHED = ("AWAITING REVIEW", "COMPLETED")


def now_iso() -> str:
    """The current UTC time, ISO-8601 (the record's time stamps)."""
    return dt.datetime.now(dt.timezone.utc).isoformat()


def is_published(record: dict[str, Any]) -> bool:
    """Whether the job's study was published: ``published`` in the record, or a seen study status past
    UNPUBLISHED (records written before ``published`` was kept)."""
    seen = (record.get("statuses") or {}).get("study")
    return bool(record.get("published")) or seen not in (None, "UNPUBLISHED")


def collect_decision(record: dict[str, Any], status: str) -> tuple[bool, bool]:
    """What to do for a job whose study is now ``status``: ``(announce, collect)``.

    ``announce``: the status differs from the last one *announced* (not the last one seen: the launch
    flow may have seen COMPLETED without anybody announcing it, case C24). ``collect``: the study is
    published and finished (AWAITING REVIEW or COMPLETED) and the job is not collected yet, whether or
    not anything changed. A collected job (``collected_at``) is never announced nor collected again.
    """
    if record.get("collected_at"):
        return False, False
    announce = status != record.get("announced_status")
    collect = is_published({**record, "statuses": {**(record.get("statuses") or {}), "study": status}}) and status in STUDY_FINISHED
    return announce, collect


def previous_status(record: dict[str, Any], status: str) -> str | None:
    """The ``previous_status`` of an announcement of ``status``: the last status seen when it differs,
    else the last one announced (``None`` when there was none)."""
    seen = (record.get("statuses") or {}).get("study")
    return seen if seen not in (None, status) else record.get("announced_status")

