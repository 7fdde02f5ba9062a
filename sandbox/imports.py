"""V4 dataset imports (§1.4-§1.9 of ../shared/docs/prolific-api-current.md): upload URLs with one import
job each, import jobs that move on their own, appended datapoints, schema updates and their migrations.

An import job is ``uninitialised`` until its file is PUT through its URL. Then it is ``processing``
(``queued`` while an earlier import of the dataset runs; ``pending_schema`` while the dataset has no
schema), and after ``dataset_processing_seconds`` the engine reads the file (CSV or JSONL), checks each
record against the schema (``records.py``) and ends ``complete``, ``partial`` or ``failed``.
"""

from __future__ import annotations

import io
import json
import posixpath
import time

from sandbox import datasets, syncs
from sandbox.ids import iso, uuid7
from sandbox.records import CONTENT_TYPES, MAX_ERRORS, FileUnreadable, check_record, grouping_field, ingest, read_records
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, bad_request, json_response, not_found

RUNNING = ("processing", "queued")
MAX_APPEND_RECORDS = 1000


def _v4(sb: State, dataset_id: str) -> dict:
    dataset = datasets.get_dataset(sb, dataset_id)
    if not datasets.is_v4(dataset):
        raise ApiError(400, f"dataset {dataset_id} is a V3 dataset; this endpoint needs a V4 dataset (create it "
                            "with a schema)")
    return dataset


def upload_url(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}/upload-url/{filename}`` (§1.4) → 201.

    V3: ``{upload_url, expires_at, http_method, dataset_id}``. V4 (``.csv`` or ``.jsonl`` only, else 400
    naming ``filename``): also ``import_id``, ``content_type`` (``text/csv`` or ``application/x-ndjson``;
    the URL is signed for it), ``file_key``; each call creates a new import job.
    """
    dataset = datasets.get_dataset(sb, req.params["dataset_id"])
    filename = req.params["filename"]
    if not filename.strip() or filename in (".", ".."):
        raise bad_request("filename", "filename must be a file name such as reviews.csv")
    if not datasets.is_v4(dataset):
        return json_response(201, datasets.v3_upload_url(sb, dataset, filename))
    extension = posixpath.splitext(filename)[1].lower()
    if extension not in CONTENT_TYPES:
        raise bad_request("filename", f"a V4 dataset takes .csv or .jsonl files; got {filename!r}")
    import_id = uuid7()
    key = f"datasets/{dataset['id']}/imports/{import_id}/{filename}"
    expires_seconds = sb.settings.upload_url_expires_seconds
    content_type = CONTENT_TYPES[extension]
    now = iso()
    sb.store.put("dataset_import", {
        "id": import_id, "dataset_id": dataset["id"], "import_id": import_id, "type": "file_upload",
        "created_at": now, "updated_at": now, "status": "uninitialised", "accepted_count": None,
        "rejected_count": None, "errors": None, "reason": None, "filename": filename, "file_key": key,
        "extension": extension, "due_at": None})
    return json_response(201, {"upload_url": sb.objects.presign_put(key, expires_seconds, content_type),
                               "expires_at": iso(time.time() + expires_seconds), "http_method": "PUT",
                               "dataset_id": dataset["id"], "import_id": import_id, "content_type": content_type,
                               "file_key": key})


def get_import(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}/imports/{import_id}`` (§1.6); 404 when unknown."""
    job = sb.store.get("dataset_import", req.params["import_id"])
    if job is None or job["dataset_id"] != req.params["dataset_id"]:
        raise not_found("import job", req.params["import_id"])
    return json_response(200, datasets.public_import(job))


def object_put(sb: State, key: str) -> None:
    """An object was stored through the front door (caller holds the lock): a V4 import job whose file
    key it is starts (or queues, or parks in ``pending_schema``); otherwise the V3 datasets react."""
    jobs = [job for job in sb.store.list("dataset_import", status="uninitialised") if job["file_key"] == key]
    if not jobs:
        datasets.object_put(sb, key)
        return
    job = jobs[0]
    dataset = sb.store.get("dataset", job["dataset_id"])
    _start(sb, dataset, job)


def _set(sb: State, job: dict, **changes: object) -> None:
    job.update(changes, updated_at=iso())
    sb.store.put("dataset_import", job)


def _start(sb: State, dataset: dict, job: dict) -> None:
    if dataset.get("schema") is None:
        _set(sb, job, status="pending_schema")
    elif any(other["status"] == "processing" for other in sb.store.list("dataset_import", dataset_id=dataset["id"])):
        _set(sb, job, status="queued")
    else:
        _set(sb, job, status="processing", due_at=time.time() + sb.settings.dataset_processing_seconds)


def _start_next(sb: State, dataset: dict) -> None:
    queued = sb.store.list("dataset_import", dataset_id=dataset["id"], status="queued")
    if queued and not sb.store.list("dataset_import", dataset_id=dataset["id"], status="processing"):
        _set(sb, queued[0], status="processing", due_at=time.time() + sb.settings.dataset_processing_seconds)


def process_due(sb: State) -> None:
    """Finish every import job and schema migration whose processing time has passed (engine tick)."""
    with sb.lock:
        due = [job["id"] for job in sb.store.list("dataset_import", status="processing") if job["due_at"] <= time.time()]
    for job_id in due:
        with sb.lock:
            job = sb.store.get("dataset_import", job_id)
            dataset = sb.store.get("dataset", job["dataset_id"]) if job else None
            if job is None or dataset is None or job["status"] != "processing":
                continue
            _finish(sb, dataset, job)
            _start_next(sb, dataset)
    with sb.lock:
        for migration in sb.store.list("schema_migration", status="processing"):
            if migration["due_at"] <= time.time():
                _migrate(sb, migration)


def _finish(sb: State, dataset: dict, job: dict) -> None:
    """Read the job's file, check its records, store the accepted ones; complete, partial or failed."""
    try:
        with sb.objects.open_object(job["file_key"]) as stream:
            accepted, rejected, errors = ingest(dataset["schema"], read_records(stream, job["extension"]))
    except KeyError:
        _set(sb, job, status="failed", reason="the uploaded file is missing", accepted_count=0)
        return
    except FileUnreadable as exc:
        _set(sb, job, status="failed", reason=str(exc), accepted_count=0)
        return
    if not accepted:
        reason = f"no record was accepted ({rejected} rejected)" if rejected else "the file holds no records"
        _set(sb, job, status="failed", reason=reason, accepted_count=0, rejected_count=rejected, errors=errors)
        return
    datasets.add_rows(sb, dataset, accepted)
    if rejected:
        _set(sb, job, status="partial", accepted_count=len(accepted), rejected_count=rejected, errors=errors)
    else:
        _set(sb, job, status="complete", accepted_count=len(accepted), rejected_count=0, errors=[])


def _in_progress(sb: State, dataset: dict) -> str | None:
    """What runs on the dataset now (an import or a schema migration), or None."""
    for job in sb.store.list("dataset_import", dataset_id=dataset["id"]):
        if job["status"] in RUNNING:
            return f"import {job['import_id']} is {job['status']}"
    for migration in sb.store.list("schema_migration", dataset_id=dataset["id"], status="processing"):
        return f"schema migration {migration['id']} is processing"
    return None


def append_datapoints(sb: State, req: Request) -> Response:
    """``POST /data-collection/datasets/{id}/datapoints`` with a JSONL body (§1.7) → 200
    ``{accepted_count, rejected_count, errors: [{record_index, field, reason}]}``, synchronous.

    400: a V3 dataset, no schema yet, more than 1,000 records; 415: a CSV (non-JSONL) Content-Type; 409
    while an import or a schema migration runs. Re-appending an identical record counts as accepted and
    is not stored twice. Batches on the dataset with ``auto_sync_enabled`` get a sync.
    """
    dataset = _v4(sb, req.params["dataset_id"])
    content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and "json" not in content_type:
        raise ApiError(415, f"append takes JSONL (Content-Type application/x-ndjson), not {content_type}")
    if dataset.get("schema") is None:
        raise ApiError(400, "the dataset has no schema yet; PATCH the dataset with a schema first")
    running = _in_progress(sb, dataset)
    if running:
        raise ApiError(409, f"cannot append while {running}; try again when it has finished")
    try:
        records = list(read_records(io.BytesIO(req.body), ".jsonl"))
    except FileUnreadable as exc:
        raise bad_request("body", f"{exc}; send one JSON object per line") from None
    if len(records) > MAX_APPEND_RECORDS:
        raise bad_request("body", f"at most {MAX_APPEND_RECORDS} records per request; got {len(records)}")
    accepted, rejected, errors = ingest(dataset["schema"], iter(records))
    seen = {json.dumps(row, sort_keys=True) for row in datasets.rows_of(sb, dataset)}
    new_rows = []
    for row in accepted:
        text = json.dumps(row, sort_keys=True)
        if text not in seen:
            seen.add(text)
            new_rows.append(row)
    if new_rows:
        datasets.add_rows(sb, dataset, new_rows)
        for batch in sb.store.list("batch", dataset_id=dataset["id"], auto_sync_enabled=True):
            if batch["status"] == "READY":
                syncs.start_sync(sb, batch)
    return json_response(200, {"accepted_count": len(accepted), "rejected_count": rejected, "errors": errors})


def update_schema(sb: State, req: Request) -> Response:
    """``PATCH /data-collection/datasets/{id}`` ``{schema}`` (§1.8) → 200 dataset.

    The first schema releases ``pending_schema`` imports and starts no migration; a later one starts a
    migration of the stored rows and the answer adds ``migration_job_id``. 400 for a V3 dataset, a missing
    or invalid schema, or a changed ``task_group_id`` field once datapoints exist; 409 while an import or
    a migration runs.
    """
    dataset = _v4(sb, req.params["dataset_id"])
    body = req.json_object()
    if not isinstance(body.get("schema"), dict) or body["schema"] == {}:
        raise bad_request("schema", "schema is required: {\"strict\": bool, \"fields\": {name: {type}}}")
    schema = datasets.parse_schema(body["schema"])
    first = dataset.get("schema") is None
    if not first:
        running = _in_progress(sb, dataset)
        if running:
            raise ApiError(409, f"cannot change the schema while {running}")
        if dataset["total_datapoint_count"] and grouping_field(schema) != grouping_field(dataset["schema"]):
            raise bad_request("schema.fields", "the task_group_id field cannot change once the dataset has datapoints")
    dataset.update(schema=schema, schema_revision=dataset["schema_revision"] + 1)
    sb.store.put("dataset", dataset)
    sb.frames.pop(dataset["id"], None)
    shown = datasets.public(sb, dataset)
    if first:
        for job in sb.store.list("dataset_import", dataset_id=dataset["id"], status="pending_schema"):
            _start(sb, dataset, job)
        return json_response(200, datasets.public(sb, dataset))
    migration = sb.store.put("schema_migration", {
        "id": uuid7(), "dataset_id": dataset["id"], "schema_version": dataset["schema_revision"], "created_at": iso(),
        "updated_at": iso(), "status": "processing", "reprocessed_count": None, "failed_count": None,
        "errors": None, "reason": None, "due_at": time.time() + sb.settings.dataset_processing_seconds})
    return json_response(200, {**shown, "migration_job_id": migration["id"]})


def _migrate(sb: State, migration: dict) -> None:
    """Re-check every stored row against the current schema: fields that no longer fit are nulled
    (``partial``), new fields are filled as a non-strict import would fill them."""
    dataset = sb.store.get("dataset", migration["dataset_id"])
    lenient = {**dataset["schema"], "strict": False}
    rows, errors, failed = [], [], 0
    for index, old in enumerate(datasets.rows_of(sb, dataset)):
        row, problems = check_record(lenient, old)
        if row is None:
            failed += 1
            row, _ = check_record(lenient, {k: v for k, v in old.items() if k not in {f for f, _ in problems}})
            errors.extend({"record_index": index, "field": f, "reason": r} for f, r in problems)
        rows.append(row if row is not None else old)
    datasets.replace_rows(sb, dataset, rows)
    migration.update(status="partial" if failed else "complete", reprocessed_count=len(rows),
                     failed_count=failed, errors=errors[:MAX_ERRORS], updated_at=iso())
    sb.store.put("schema_migration", migration)


def migration_status(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}/schema-migrations/{job_id}`` (§1.9); 404 when unknown."""
    migration = sb.store.get("schema_migration", req.params["job_id"])
    if migration is None or migration["dataset_id"] != req.params["dataset_id"]:
        raise not_found("schema migration", req.params["job_id"])
    shown = {k: v for k, v in migration.items() if k not in ("id", "due_at")}
    return json_response(200, {"job_id": migration["id"], **shown})
