"""Datasets (API doc §2, V3 only): create, get, status, upload URL, and processing of the upload.

A dataset is UNINITIALISED until an object is PUT through one of its upload URLs; the object store
then reports the object, the dataset turns PROCESSING, and after ``dataset_processing_seconds`` the
engine reads the CSV (pandas, every cell as text) and moves it to READY or ERROR with a reason.
"""

from __future__ import annotations

import time
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from sandbox.ids import iso, uuid7
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, bad_request, json_response, not_found, validate

TASK_GROUP_COLUMN = "META_TASK_GROUP_ID"
METADATA_PREFIX = "META_"
PUBLIC_FIELDS = ("id", "name", "created_at", "created_by", "workspace_id", "status", "total_datapoint_count",
                 "schema_version", "filename", "has_predetermined_grouping_id", "columns", "metadata_columns",
                 "reason")


class DatasetCreate(BaseModel):
    """Body of ``POST /api/v1/data-collection/datasets`` (API doc §2.2)."""

    model_config = ConfigDict(strict=True)
    name: str = Field(min_length=1)
    workspace_id: str = Field(min_length=1)
    schema_: dict | None = Field(None, alias="schema")


def public(dataset: dict) -> dict:
    """The dataset as the API shows it (API doc §2.3 plus the sandbox's ``columns``, ``metadata_columns``, ``reason``)."""
    return {name: dataset.get(name) for name in PUBLIC_FIELDS}


def get_dataset(sb: State, dataset_id: str) -> dict:
    """The stored dataset; 404 when unknown."""
    dataset = sb.store.get("dataset", dataset_id)
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return dataset


def create(sb: State, req: Request) -> Response:
    """``POST /data-collection/datasets`` ``{name, workspace_id}`` → 201 dataset (V3)."""
    body = validate(DatasetCreate, req.json_object())
    if body.schema_ is not None:
        raise bad_request("schema", "V4 datasets (with a schema) are not supported by the sandbox; omit schema")
    sb.require_workspace(body.workspace_id, "workspace_id")
    dataset = {"id": uuid7(), "name": body.name, "created_at": iso(), "created_by": sb.user_id(),
               "workspace_id": body.workspace_id, "status": "UNINITIALISED", "total_datapoint_count": 0,
               "schema_version": 3, "filename": None, "has_predetermined_grouping_id": False,
               "columns": [], "metadata_columns": [], "reason": None, "upload_keys": [],
               "object_key": None, "processing_due_at": None}
    sb.store.put("dataset", dataset)
    return json_response(201, public(dataset))


def get(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}``; 404 when unknown."""
    return json_response(200, public(get_dataset(sb, req.params["dataset_id"])))


def status(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}/status`` → ``{status}``."""
    return json_response(200, {"status": get_dataset(sb, req.params["dataset_id"])["status"]})


def upload_url(sb: State, req: Request) -> Response:
    """``GET /data-collection/datasets/{id}/upload-url/{filename}`` → 201 ``{upload_url, expires_at,
    http_method, dataset_id}`` (a presigned PUT, valid ``upload_url_expires_seconds``)."""
    dataset = get_dataset(sb, req.params["dataset_id"])
    filename = req.params["filename"]
    if not filename.strip() or filename in (".", ".."):
        raise bad_request("filename", "filename must be a file name such as reviews.csv")
    key = f"datasets/{dataset['id']}/{filename}"
    expires_seconds = sb.settings.upload_url_expires_seconds
    url = sb.objects.presign_put(key, expires_seconds)
    if key not in dataset["upload_keys"]:
        dataset["upload_keys"].append(key)
        sb.store.put("dataset", dataset)
    return json_response(201, {"upload_url": url, "expires_at": iso(time.time() + expires_seconds),
                               "http_method": "PUT", "dataset_id": dataset["id"]})


def object_put(sb: State, key: str) -> None:
    """An object was stored: the dataset that issued ``key`` as an upload key starts PROCESSING.

    Only UNINITIALISED and ERROR datasets react (a READY dataset keeps its data; see ASSUMPTIONS.md).
    """
    for dataset in sb.store.list("dataset"):
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
    """The READY dataset's rows (cached; read again from the object store after a restart)."""
    frame = sb.frames.get(dataset["id"])
    if frame is None:
        frame = read_frame(sb, dataset["object_key"])
        sb.frames[dataset["id"]] = frame
    return frame


def raise_unless_ready(dataset: dict, field: str) -> None:
    """400 naming ``field`` unless the dataset is READY (API doc §3.2 setup: "V3 dataset must be READY")."""
    if dataset["status"] != "READY":
        raise ApiError(400, {field: [f"dataset {dataset['id']} is {dataset['status']}; it must be READY"]})
