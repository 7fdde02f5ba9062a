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

Stored field by field: the block document's data has one key per field (``statuses`` as one key per
resource, ``statuses.<resource>``), so a write sends only the fields it changes and the Prefect server
merges them into the document (``PATCH /api/block_documents/{id}``, ``merge_existing_data``): one
request per step, no read first, and a writer never puts back a stale copy of a field another writer
changed meanwhile (the monitor's ``announced_status``, collect-report's ``collected_at``). Notes are the
one field written from what is stored (read, appended, written), and only when a note is added. The
document's id is remembered per process after its first read. Records written before (the whole record
under ``value``) are read as they are; fields written later overlay them.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any
from uuid import UUID

from prefect.blocks.core import Block
from tasks.prefect_client import prefect_client
from prefect.client.schemas.actions import BlockDocumentCreate, BlockDocumentUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL
from pydantic import ConfigDict

from taskbuilder.jobkey import storage_slug

from tasks.active_jobs import active_record_names, active_variable_name, index_is_built, mark_active, mark_done, mark_index_built

RECORD_PREFIX = "taskbuilder-job-"
STATUS_KEY = "statuses."
"""Prefix of the stored keys of ``statuses`` (``statuses.study`` → ``record["statuses"]["study"]``)."""
PAGE_SIZE = 200
"""Block documents per listing request (the Prefect API's default limit)."""


class JobRecord(Block):
    """A Prefect block holding one job record: one data key per record field (see the module docstring);
    ``value``: the whole record, in records written before that layout."""

    model_config = ConfigDict(extra="allow")
    _block_type_name = "Taskbuilder Job Record"
    _block_type_slug = "taskbuilder-job-record"
    _description = "What one Prolific annotation job created and where its outputs went (no secrets)."

    value: dict[str, Any] | None = None


_lock = threading.Lock()
_documents: dict[tuple[str, str], tuple[UUID, dict[str, Any]]] = {}
"""(Prefect API URL, record name) → (block document id, the record as last read or written by this process)."""
_absent: set[tuple[str, str]] = set()
"""Records this process read and found absent (a first write then creates without reading again)."""
_registered: set[str] = set()
"""Prefect API URLs where this process registered the block type and schema."""


def record_name(job_key: str, base_url: str) -> str:
    """Block name of the record of ``job_key`` on the API at ``base_url``."""
    return RECORD_PREFIX + storage_slug(job_key, base_url)


def _server() -> str:
    return str(PREFECT_API_URL.value() or "")


def decode_record(data: dict[str, Any]) -> dict[str, Any]:
    """The record stored as block document ``data`` (either layout)."""
    legacy = data.get("value")
    record: dict[str, Any] = dict(legacy) if isinstance(legacy, dict) else {}
    statuses = dict(record.get("statuses") or {})
    for key, value in data.items():
        if key.startswith(STATUS_KEY):
            statuses[key[len(STATUS_KEY):]] = value
        elif key != "value":
            record[key] = value
    record["statuses"] = statuses
    record.setdefault("notes", [])
    return record


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    """The block document keys that store ``fields`` (``statuses`` one key per resource)."""
    data: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "statuses":
            data.update({STATUS_KEY + resource: status for resource, status in (value or {}).items()})
        else:
            data[name] = value
    return data


def _read(client: Any, name: str) -> dict[str, Any] | None:
    """Read the record ``name`` from the server (one request) and remember its document; ``None`` when there
    is none (or the block type is not registered yet)."""
    try:
        document = client.read_block_document_by_name(name=name, block_type_slug=JobRecord.get_block_type_slug())
    except ObjectNotFound:
        with _lock:
            _documents.pop((_server(), name), None)
            _absent.add((_server(), name))
        return None
    record = decode_record(document.data)
    with _lock:
        _documents[(_server(), name)] = (document.id, record)
        _absent.discard((_server(), name))
    return dict(record)


def load_job_record(job_key: str, base_url: str) -> dict[str, Any] | None:
    """The stored record, read from the Prefect server (``GET /api/block_types/slug/…/block_documents/name/…``),
    or ``None`` when this job has none yet."""
    with prefect_client() as client:
        return _read(client, record_name(job_key, base_url))


def known_job_record(job_key: str, base_url: str) -> dict[str, Any] | None:
    """The record as this process last read or wrote it, else read from the server (:func:`load_job_record`).

    For the fields only the job's own run writes, under the job's lock (fingerprint, ids, ``statuses`` before
    publishing, ``dataset_create_attempts``): every run reads its record from the server first
    (:func:`load_job_record`), so what this process knows of them is what is stored. Fields other runs write
    (``announced_status``, ``collected_at``, ...) are read with :func:`load_job_record`.
    """
    with _lock:
        known = _documents.get((_server(), record_name(job_key, base_url)))
    return dict(known[1]) if known else load_job_record(job_key, base_url)


def update_job_record(job_key: str, base_url: str, **fields: Any) -> dict[str, Any]:
    """Store ``fields`` in the record (creating it); returns the record as this process now knows it.

    One request when the document is known to this process: ``PATCH /api/block_documents/{id}`` with the
    fields only, merged by the server. ``statuses`` is merged per resource; ``notes`` are appended without
    duplicates to the stored ones (read first, only when there is a note to add); other fields replaced.
    The first write of a process reads the document's id (one request more), and a new record is created
    (the block type and schema registered once per process and server).
    """
    name = record_name(job_key, base_url)
    fields = dict(fields)
    new_notes = list(fields.pop("notes", None) or [])
    with prefect_client() as client:
        with _lock:
            known = _documents.get((_server(), name))
            absent = (_server(), name) in _absent
        if (known is None and not absent) or new_notes:
            _read(client, name)
            with _lock:
                known = _documents.get((_server(), name))
        record = dict(known[1]) if known else {"job_key": job_key, "base_url": base_url, "statuses": {}, "notes": []}
        if new_notes:
            notes = list(record.get("notes") or [])
            notes += [note for note in dict.fromkeys(new_notes) if note not in notes]
            if notes != record.get("notes"):
                fields["notes"] = notes
        fields["updated_at"] = now_iso()
        record.update({k: v for k, v in fields.items() if k != "statuses"})
        record["statuses"] = {**(record.get("statuses") or {}), **(fields.get("statuses") or {})}
        document_id = _write(client, name, known[0] if known else None, _encode(fields), record)
        with _lock:
            _documents[(_server(), name)] = (document_id, record)
            _absent.discard((_server(), name))
        _index(client, name, fields, record)
    return dict(record)


def _index(client: Any, name: str, fields: dict[str, Any], record: dict[str, Any]) -> None:
    """Keep the index of active jobs (:mod:`tasks.active_jobs`): a record gets an entry when a ``study_id`` is
    stored while it is not collected, and loses it when ``collected_at`` is stored."""
    variable = active_variable_name(name, RECORD_PREFIX)
    if fields.get("collected_at"):
        mark_done(client, variable)
    elif fields.get("study_id") and not record.get("collected_at") and not is_round_record(record):
        mark_active(client, variable, name)


def _write(client: Any, name: str, document_id: UUID | None, data: dict[str, Any], record: dict[str, Any]) -> UUID:
    """Merge ``data`` into document ``document_id``; create the document (from ``record``) when there is none
    or it was deleted meanwhile. Returns the document's id."""
    if document_id is not None:
        try:
            client.update_block_document(block_document_id=document_id,
                                         block_document=BlockDocumentUpdate(data=data, merge_existing_data=True))
            return document_id
        except ObjectNotFound:
            pass
    full = _encode(record)
    try:
        return _create(client, name, full)
    except ObjectAlreadyExists:  # another run created it meanwhile: merge into theirs
        found = client.read_block_document_by_name(name=name, block_type_slug=JobRecord.get_block_type_slug())
        client.update_block_document(block_document_id=found.id, block_document=BlockDocumentUpdate(data=data, merge_existing_data=True))
        return found.id


def _create(client: Any, name: str, data: dict[str, Any]) -> UUID:
    """Create the record's block document (``POST /api/block_documents/``). The block type and schema are
    registered first, once per process and server. On a fresh Prefect server, runs that start together race
    to register the type (``create_block_type`` answers 409 to all but one: 5 of 6 concurrent first saves
    failed, ``benchmarks/bench_workers.py``); a loser registers once more, when the type exists. A server
    that lost the registration (a new database at the same address) is registered again."""
    if _server() not in _registered:
        _register()
    create = BlockDocumentCreate(name=name, data=data, block_type_id=JobRecord._block_type_id,
                                 block_schema_id=JobRecord._block_schema_id)
    try:
        return client.create_block_document(create).id
    except ObjectAlreadyExists:
        raise
    except (ObjectNotFound, PrefectHTTPStatusError):
        _register()
        create.block_type_id, create.block_schema_id = JobRecord._block_type_id, JobRecord._block_schema_id
        return client.create_block_document(create).id


def _register() -> None:
    try:
        JobRecord.register_type_and_schema()
    except (ObjectAlreadyExists, ObjectNotFound):
        JobRecord.register_type_and_schema()
    _registered.add(_server())


def read_job_records(names: list[str]) -> list[dict[str, Any]]:
    """The records with these block names, in bulk: one ``POST /api/block_documents/filter`` per 200 names
    (names with no record are left out)."""
    records: list[dict[str, Any]] = []
    with prefect_client() as client:
        for start in range(0, len(names), PAGE_SIZE):
            chunk = names[start:start + PAGE_SIZE]
            page = client.request("POST", "/block_documents/filter", json={
                "block_documents": {"name": {"any_": chunk}}, "block_types": {"slug": {"any_": [JobRecord.get_block_type_slug()]}},
                "include_secrets": True, "limit": len(chunk)}).json()
            records += [decode_record(document.get("data") or {}) for document in page]
    return records


def active_job_records() -> list[dict[str, Any]]:
    """The records of the active jobs (a study, not collected: :mod:`tasks.active_jobs`), read in bulk.

    Two Prefect requests for up to 200 active jobs (the index, then the records), plus one to see that the
    index is built; the first call on a server with records from before the index lists every record once
    and indexes the active ones. An entry whose record turns out collected (by an older version) is dropped.
    """
    if not index_is_built():
        with prefect_client() as client:
            for record in list_job_records():
                if record.get("study_id") and not record.get("collected_at") and not is_round_record(record):
                    name = record_name(record["job_key"], record["base_url"])
                    mark_active(client, active_variable_name(name, RECORD_PREFIX), name)
        mark_index_built()
    records = read_job_records(active_record_names())
    done = [r for r in records if r.get("collected_at") or not r.get("study_id") or is_round_record(r)]
    if done:
        with prefect_client() as client:
            for record in done:
                mark_done(client, active_variable_name(record_name(record["job_key"], record["base_url"]), RECORD_PREFIX))
    return [r for r in records if r not in done]


def list_job_records() -> list[dict[str, Any]]:
    """Every job record on the current Prefect server, all pages (``POST /api/block_documents/filter``)."""
    with prefect_client() as client:
        documents: list[Any] = []
        while True:
            try:
                page = client.read_block_documents_by_type(JobRecord.get_block_type_slug(), offset=len(documents), limit=PAGE_SIZE)
            except PrefectHTTPStatusError as error:  # 404: no record saved yet, the block type is not registered
                if error.response.status_code == 404:
                    return []
                raise
            documents += page
            if len(page) < PAGE_SIZE:
                break
    return [decode_record(document.data) for document in documents if (document.name or "").startswith(RECORD_PREFIX)]


STUDY_FINISHED = ("AWAITING REVIEW", "COMPLETED")
ROUND_KEY = re.compile(r"-round-\d+$")


def is_round_record(record: dict[str, Any]) -> bool:
    """Whether ``record`` is the record of round n > 1 of a job (``round_of``: the job key; records written
    before ``round_of`` was kept: a round key with no spec). The job's own record is the one the monitor watches
    (its ``current_round``); a round's record holds only that round's ids and statuses."""
    return bool(record.get("round_of")) or (not record.get("spec") and bool(ROUND_KEY.search(str(record.get("job_key") or ""))))


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

