"""Datasets (§1 of ../shared/docs/prolific-api-current.md): create (V3, or V4 with a ``schema``), get,
status, and the rows of a dataset; V3 processing of an upload. V4 import jobs are in ``imports.py``.

A V3 dataset is UNINITIALISED until an object is PUT through one of its upload URLs; the object store
then reports the object, the dataset turns PROCESSING, and after ``dataset_processing_seconds`` the
engine reads the CSV (pandas, every cell as text) and moves it to READY or ERROR with a reason.
A V4 dataset has no status: each upload is an import job, and the accepted records are its rows.
"""

from __future__ import annotations

import time

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandbox.ids import iso, uuid7
from sandbox.records import DatasetSchema, cell_text, grouping_field
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, json_response, not_found, validate

TASK_GROUP_COLUMN = "META_TASK_GROUP_ID"
METADATA_PREFIX = "META_"
PUBLIC_FIELDS = ("id", "name", "created_at", "created_by", "workspace_id", "status", "total_datapoint_count",
                 "schema_version", "filename", "has_predetermined_grouping_id", "columns", "metadata_columns",
                 "reason")
V4_PUBLIC_FIELDS = ("id", "name", "created_at", "created_by", "workspace_id", "total_datapoint_count",
                    "schema_version", "schema")
IMPORT_FIELDS = ("dataset_id", "import_id", "type", "created_at", "updated_at", "status", "accepted_count",
                 "rejected_count", "errors", "reason", "filename", "file_key")


class DatasetCreate(BaseModel):
    """Body of ``POST /api/v1/data-collection/datasets`` (§1.1)."""

    model_config = ConfigDict(strict=True)
    name: str = Field(min_length=1)
    workspace_id: str = Field(min_length=1)
    schema_: dict | None = Field(None, alias="schema")


def parse_schema(raw: dict, field: str = "schema") -> dict | None:
    """A request's ``schema`` object as stored ``{strict, fields}``; None for ``{}`` (a V4 dataset whose
    schema is not set yet, see ASSUMPTIONS.md). 400 naming ``schema.<path>`` when it is invalid."""
    if raw == {}:
        return None
    try:
        return DatasetSchema.model_validate(raw).model_dump(exclude_none=True)
    except ValidationError as exc:
        detail: dict[str, list[str]] = {}
        for issue in exc.errors():
            path = ".".join(str(part) for part in (field, *issue["loc"]))
            detail.setdefault(path, []).append(issue["msg"])
        raise ApiError(400, detail) from None


def is_v4(dataset: dict) -> bool:
    """True for a dataset created with a ``schema`` (schema_version 4)."""
    return dataset["schema_version"] == 4


def public_import(job: dict) -> dict:
    """An import job as ``GET …/imports/{import_id}`` shows it (§1.6)."""
    return {name: job.get(name) for name in IMPORT_FIELDS}


def imports_of(sb: State, dataset_id: str) -> list[dict]:
    """The dataset's import jobs, most recent first."""
    return list(reversed(sb.store.list("dataset_import", dataset_id=dataset_id)))


def public(sb: State, dataset: dict) -> dict:
    """The dataset as the API shows it (§1.2). V3: plus the sandbox's ``columns``, ``metadata_columns``,
    ``reason``; V4: ``schema`` and ``imports`` (most recent first), no ``status``."""
    if is_v4(dataset):
        shown = {name: dataset.get(name) for name in V4_PUBLIC_FIELDS}
        shown["imports"] = [public_import(job) for job in imports_of(sb, dataset["id"])]
        return shown
    return {name: dataset.get(name) for name in PUBLIC_FIELDS}


def get_dataset(sb: State, dataset_id: str) -> dict:
    """The stored dataset; 404 when unknown."""
    dataset = sb.store.get("dataset", dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return dataset


def create(sb: State, req: Request) -> Response:
    """``POST /data-collection/datasets`` ``{name, workspace_id, schema?}`` (§1.1) → 201 dataset: V3
    without ``schema``, V4 with one. 400 naming the field at fault."""
    body = validate(DatasetCreate, req.json_object())
    schema = parse_schema(body.schema_) if body.schema_ is not None else None
    sb.require_workspace(body.workspace_id, "workspace_id")
    dataset = {"id": uuid7(), "name": body.name, "created_at": iso(), "created_by": sb.user_id(),
               "workspace_id": body.workspace_id, "total_datapoint_count": 0}
    if body.schema_ is not None:
        dataset.update(schema_version=4, schema=schema, schema_revision=1 if schema else 0)
        sb.store.put("dataset_rows", {"id": dataset["id"], "rows": []})
    else:
        dataset.update(status="UNINITIALISED", schema_version=3, filename=None, has_predetermined_grouping_id=False,
                       columns=[], metadata_columns=[], reason=None, upload_keys=[], object_key=None,
                       processing_due_at=None)
    sb.store.put("dataset", dataset)
    return json_response(201, public(sb, dataset))


def get(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}`` (§1.2); 404 when unknown."""
    return json_response(200, public(sb, get_dataset(sb, req.params["dataset_id"])))


def status(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}/status`` (§1.3) → ``{status}``; 400 for a V4 dataset, which has
    no status (see ASSUMPTIONS.md)."""
    dataset = get_dataset(sb, req.params["dataset_id"])
    if is_v4(dataset):
        raise ApiError(400, "V4 datasets have no status; poll GET /datasets/{dataset_id}/imports/{import_id} "
                            "for each upload")
    return json_response(200, {"status": dataset["status"]})


def v3_upload_url(sb: State, dataset: dict, filename: str) -> dict:
    """The V3 upload-url answer ``{upload_url, expires_at, http_method, dataset_id}`` (§1.4); the URL is
    not bound to a Content-Type unless the setting ``sign_content_type`` is on."""
    key = f"datasets/{dataset['id']}/{filename}"
    expires_seconds = sb.settings.upload_url_expires_seconds
    content_type = "text/csv" if sb.settings.sign_content_type else None
    url = sb.objects.presign_put(key, expires_seconds, content_type)
    if key not in dataset["upload_keys"]:
        dataset["upload_keys"].append(key)
        sb.store.put("dataset", dataset)
    return {"upload_url": url, "expires_at": iso(time.time() + expires_seconds), "http_method": "PUT",
            "dataset_id": dataset["id"]}


# -- rows -------------------------------------------------------------------------------------------
def rows_of(sb: State, dataset: dict) -> list[dict]:
    """The stored rows of a V4 dataset (schema fields → values), in order."""
    return sb.store.get("dataset_rows", dataset["id"])["rows"]


def add_rows(sb: State, dataset: dict, rows: list[dict]) -> None:
    """Append rows to a V4 dataset and update its ``total_datapoint_count``."""
    stored = sb.store.get("dataset_rows", dataset["id"])
    stored["rows"].extend(rows)
    sb.store.put("dataset_rows", stored)
    dataset["total_datapoint_count"] = len(stored["rows"])
    sb.store.put("dataset", dataset)
    sb.frames.pop(dataset["id"], None)


def replace_rows(sb: State, dataset: dict, rows: list[dict]) -> None:
    """Replace every row of a V4 dataset (a schema migration)."""
    sb.store.put("dataset_rows", {"id": dataset["id"], "rows": rows})
    dataset["total_datapoint_count"] = len(rows)
    sb.store.put("dataset", dataset)
    sb.frames.pop(dataset["id"], None)


def task_group_column(dataset: dict) -> str | None:
    """The column that groups rows into task groups: V3 ``META_TASK_GROUP_ID`` when present, V4 the
    ``task_group_id`` schema field."""
    if is_v4(dataset):
        return grouping_field(dataset.get("schema"))
    return TASK_GROUP_COLUMN if TASK_GROUP_COLUMN in dataset["columns"] else None


def metadata_columns(dataset: dict) -> list[str]:
    """Columns that are data about a datapoint, not shown: V3 ``META_*``, V4 fields of type metadata."""
    if is_v4(dataset):
        return [n for n, f in ((dataset.get("schema") or {}).get("fields") or {}).items() if f["type"] == "metadata"]
    return dataset["metadata_columns"]


def object_put(sb: State, key: str) -> None:
    """An object was stored: the V3 dataset that issued ``key`` as an upload key starts PROCESSING.

    Only UNINITIALISED and ERROR datasets react (a READY dataset keeps its data; see ASSUMPTIONS.md).
    """
    for dataset in sb.store.list("dataset", schema_version=3):
        if key in dataset["upload_keys"] and dataset["status"] in ("UNINITIALISED", "ERROR"):
            dataset.update(status="PROCESSING", object_key=key, filename=key.rsplit("/", 1)[-1], reason=None,
                           processing_due_at=time.time() + sb.settings.dataset_processing_seconds)
            sb.store.put("dataset", dataset)
            sb.frames.pop(dataset["id"], None)


def process_due(sb: State) -> None:
    """Finish processing every PROCESSING dataset whose processing time has passed (engine tick)."""
    with sb.lock:
        due = [d["id"] for d in sb.store.list("dataset", status="PROCESSING") if d["processing_due_at"] <= time.time()]
    for dataset_id in due:
        with sb.lock:
            key = sb.store.get("dataset", dataset_id)["object_key"]
        try:
            frame = read_frame(sb, key)
            outcome = {"status": "READY", "total_datapoint_count": len(frame), "columns": list(frame.columns),
                       "metadata_columns": [c for c in frame.columns if c.startswith(METADATA_PREFIX)],
                       "has_predetermined_grouping_id": TASK_GROUP_COLUMN in frame.columns}
        except DatasetFileError as exc:
            frame, outcome = None, {"status": "ERROR", "reason": str(exc)}
        with sb.lock:
            dataset = sb.store.get("dataset", dataset_id)
            if dataset is None or dataset["status"] != "PROCESSING" or dataset["object_key"] != key:
                continue
            dataset.update(outcome)
            sb.store.put("dataset", dataset)
            if frame is not None:
                sb.frames[dataset_id] = frame


class DatasetFileError(Exception):
    """The uploaded file cannot be used as a V3 CSV dataset; the message is the dataset's ``reason``."""


def read_frame(sb: State, key: str) -> pd.DataFrame:
    """Read the CSV object ``key`` as text cells (pandas ``dtype=str``, ``keep_default_na=False``).

    The first row is the header; rows with fewer fields are padded with empty cells (pandas).
    Raises DatasetFileError naming the problem (not UTF-8, not CSV or a row with more fields than
    the header, blank or duplicate column names, no rows, an empty ``META_TASK_GROUP_ID`` cell).
    """
    try:
        stream = sb.objects.open_object(key)
    except KeyError:
        raise DatasetFileError(f"uploaded object {key} is missing") from None
    with stream:
        try:
            raw = pd.read_csv(stream, header=None, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except pd.errors.EmptyDataError:
            raise DatasetFileError("the file is empty; expected a CSV with a header row") from None
        except UnicodeDecodeError as exc:
            raise DatasetFileError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise DatasetFileError(f"the file is not a readable CSV: {exc}") from None
    header = list(raw.iloc[0])
    for position, name in enumerate(header, start=1):
        if name == "" or pd.isna(name):
            raise DatasetFileError(f"column {position} of the header has no name")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DatasetFileError(f"duplicate column names in the header: {', '.join(duplicates)}")
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = header
    if frame.empty:
        raise DatasetFileError("the file has a header but no datapoint rows")
    if TASK_GROUP_COLUMN in frame.columns and (frame[TASK_GROUP_COLUMN] == "").any():
        row = int((frame[TASK_GROUP_COLUMN] == "").idxmax()) + 1
        raise DatasetFileError(f"datapoint row {row} (after the header): {TASK_GROUP_COLUMN} is empty; "
                               "every row needs a task group")
    return frame


def frame_of(sb: State, dataset: dict) -> pd.DataFrame:
    """The dataset's rows as text cells: a READY V3 dataset's CSV (read again from the object store after a
    restart), or a V4 dataset's accepted records with one column per schema field (cached)."""
    frame = sb.frames.get(dataset["id"])
    if frame is None:
        if is_v4(dataset):
            columns = list(((dataset.get("schema") or {}).get("fields") or {}))
            frame = pd.DataFrame([[cell_text(row.get(c)) for c in columns] for row in rows_of(sb, dataset)],
                                 columns=columns, dtype=object)
        else:
            frame = read_frame(sb, dataset["object_key"])
        sb.frames[dataset["id"]] = frame
    return frame


def not_usable(sb: State, dataset: dict) -> str | None:
    """Why a batch cannot be set up on the dataset now (§2.6), or None: a V3 dataset must be READY, a V4
    dataset needs at least one import job ``complete`` (a ``partial`` one does not count; ASSUMPTIONS.md)."""
    if is_v4(dataset):
        if not any(job["status"] == "complete" for job in imports_of(sb, dataset["id"])):
            return (f"dataset {dataset['id']} has no import job with status complete; upload a file and wait "
                    "for its import to complete")
        return None
    if dataset["status"] != "READY":
        return f"dataset {dataset['id']} is {dataset['status']}; it must be READY"
    return None


def raise_unless_ready(sb: State, dataset: dict, field: str) -> None:
    """400 naming ``field`` when a batch cannot be set up on the dataset now (see ``not_usable``)."""
    reason = not_usable(sb, dataset)
    if reason:
        raise ApiError(400, {field: [reason]})