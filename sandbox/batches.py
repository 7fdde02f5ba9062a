"""Batches (API doc §3): create, list, get, PATCH (``batch_items``, §12), status, setup, task groups.

Setup (202) moves a batch to PROCESSING; after ``batch_setup_seconds`` the engine builds the task
groups (seeded random groups of ``tasks_per_group`` datapoints, or the dataset's
``META_TASK_GROUP_ID`` column) and the batch turns READY.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sandbox import datasets
from sandbox.ids import iso, uuid7
from sandbox.layout import DatasetView, assign_ids, batch_items_issues, ids_of, instructions_of_items, strip_ids
from sandbox.records import field_types
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, bad_request, json_response, not_found, validate


PUBLIC_FIELDS = ("id", "created_at", "created_by", "name", "workspace_id", "dataset_id", "status",
                 "total_task_count", "total_instruction_count", "total_task_groups", "schema_version",
                 "tasks_per_group", "auto_sync_enabled", "task_details", "batch_items", "reason")



class TaskDetails(BaseModel):
    """``task_details`` of a batch (seed "Task details"); basic HTML allowed in each field."""

    model_config = ConfigDict(strict=True)
    task_name: str | None = None
    task_introduction: str | None = None
    task_steps: str | None = None


class BatchCreate(BaseModel):
    """Body of ``POST /api/v1/data-collection/batches`` (API doc §3.2)."""

    model_config = ConfigDict(strict=True)
    name: str = Field(min_length=1)
    workspace_id: str = Field(min_length=1)
    dataset_id: str | None = None
    task_details: TaskDetails | None = None
    batch_items: list | None = None
    auto_sync_enabled: bool = False


class BatchUpdate(BaseModel):
    """Body of ``PATCH /api/v1/data-collection/batches/{id}`` (API doc §3.2); ``batch_items: null`` clears."""

    model_config = ConfigDict(strict=True)
    name: str | None = Field(None, min_length=1)
    dataset_id: str | None = None
    task_details: TaskDetails | None = None
    batch_items: list | None = None
    auto_sync_enabled: bool | None = None


class BatchSetup(BaseModel):
    """Body of ``POST /api/v1/data-collection/batches/{id}/setup`` (API doc §3.2, seed "Setting up")."""

    model_config = ConfigDict(strict=True)
    dataset_id: str | None = None
    tasks_per_group: int | None = Field(None, ge=1)


def public(sb: State, batch: dict) -> dict:
    """The batch as the API shows it (API doc §3.1), with its dataset embedded under ``datasets``."""
    shown = {name: batch.get(name) for name in PUBLIC_FIELDS}
    dataset = sb.store.get("dataset", batch["dataset_id"]) if batch.get("dataset_id") else None
    shown["datasets"] = [datasets.public(sb, dataset)] if dataset else []
    return shown


def get_batch(sb: State, batch_id: str) -> dict:
    """The stored batch; 404 when unknown."""
    batch = sb.store.get("batch", batch_id)
    if batch is None:
        raise not_found("batch", batch_id)
    return batch


def task_instructions(batch: dict) -> list[dict]:
    """The instructions every task of the batch carries, in order: from ``batch_items`` when set,
    else the legacy instructions sorted by ``order``."""
    if batch.get("batch_items") is not None:
        return instructions_of_items(batch["batch_items"])
    return sorted(batch["instructions"], key=lambda item: item["order"])


def _referenced_dataset(sb: State, dataset_id: str, field: str = "dataset_id") -> dict:
    dataset = sb.store.get("dataset", dataset_id)
    if dataset is None:
        raise bad_request(field, f"no dataset with id {dataset_id!r}")
    return dataset


def _check_items(sb: State, items: Any, dataset_id: str | None, current: list | None = None) -> None:
    """422 INVALID_BATCH_ITEMS (now §3.5) when ``items`` breaks the layout rules (``layout.py``) against the
    dataset (when one is attached) and the ids of the ``current`` layout."""
    dataset = sb.store.get("dataset", dataset_id) if dataset_id else None
    view = None
    if dataset is not None:
        view = DatasetView(4, field_types(dataset["schema"]) if dataset.get("schema") else None) \
            if datasets.is_v4(dataset) else DatasetView(3)
    issues = batch_items_issues(items, view, ids_of(current),
                                v3_dataset_fields=sb.settings.v3_dataset_field_items == "accepted")
    if issues:
        raise ItemsInvalid(issues)


class ItemsInvalid(ApiError):
    """``batch_items`` failed validation: 422 ``{"type": "INVALID_BATCH_ITEMS", "issues": [...]}`` (API doc §1.1 shape 3)."""

    def __init__(self, issues: list[dict]) -> None:
        super().__init__(422, f"{len(issues)} batch_items issues")
        self.issues = issues

    def body(self) -> dict:
        return {"type": "INVALID_BATCH_ITEMS", "issues": self.issues}


def refuse_if_in_use(sb: State, batch: dict, what: str) -> None:
    """400 when the batch is being set up, or a published study uses it (its tasks are fixed then)."""
    if batch["status"] == "PROCESSING":
        raise ApiError(400, f"batch {batch['id']} is PROCESSING; {what} cannot change until setup ends")
    for study in sb.store.list("study", data_collection_id=batch["id"]):
        if study["status"] != "UNPUBLISHED":
            raise ApiError(400, f"batch {batch['id']} is used by published study {study['id']}; {what} cannot change")


def create(sb: State, req: Request) -> Response:
    """``POST /data-collection/batches`` (§2.2) → 201 batch; 422 INVALID_BATCH_ITEMS for bad ``batch_items``."""
    body = validate(BatchCreate, req.json_object())
    sb.require_workspace(body.workspace_id, "workspace_id")
    if body.dataset_id is not None:
        _referenced_dataset(sb, body.dataset_id)
    if body.batch_items is not None:
        _check_items(sb, body.batch_items, body.dataset_id)
    batch = {"id": uuid7(), "created_at": iso(), "created_by": sb.user_id(), "name": body.name,
             "workspace_id": body.workspace_id, "dataset_id": body.dataset_id, "status": "UNINITIALISED",
             "total_task_count": 0, "total_instruction_count": 0, "total_task_groups": None,
             "schema_version": 3, "tasks_per_group": 1, "auto_sync_enabled": body.auto_sync_enabled,
             "task_details": body.task_details.model_dump() if body.task_details else None,
             "batch_items": assign_ids(body.batch_items, uuid7) if body.batch_items is not None else None,
             "instructions": [], "task_groups": [], "reason": None,
             "setup_due_at": None}
    count_instructions(batch)
    sb.store.put("batch", batch)
    return json_response(201, public(sb, batch))


def list_batches(sb: State, req: Request) -> Response:
    """``GET /data-collection/batches?workspace_id=`` (§2.3) → ``{results}``; 400 without workspace_id."""
    workspace_id = req.query_value("workspace_id")
    if not workspace_id:
        raise bad_request("workspace_id", "query parameter workspace_id is required")
    sb.require_workspace(workspace_id, "workspace_id")
    return json_response(200, {"results": [public(sb, b) for b in sb.store.list("batch", workspace_id=workspace_id)]})


def get(sb: State, req: Request) -> Response:
    """``GET /data-collection/batches/{id}`` (§2.1); 404 when unknown."""
    return json_response(200, public(sb, get_batch(sb, req.params["batch_id"])))


def status(sb: State, req: Request) -> Response:
    """``GET /data-collection/batches/{id}/status`` (§2.5) → ``{status}``."""
    return json_response(200, {"status": get_batch(sb, req.params["batch_id"])["status"]})


def update(sb: State, req: Request) -> Response:
    """``PATCH /data-collection/batches/{id}`` (§2.4) → 200 batch; 400 while in use, 422 for bad ``batch_items``."""
    batch = get_batch(sb, req.params["batch_id"])
    body = validate(BatchUpdate, req.json_object())
    given = body.model_fields_set
    if {"dataset_id", "batch_items"} & given:
        refuse_if_in_use(sb, batch, "dataset_id and batch_items")
    if "dataset_id" in given and body.dataset_id is not None:
        _referenced_dataset(sb, body.dataset_id)
    if "batch_items" in given and body.batch_items is not None:
        _check_items(sb, body.batch_items, body.dataset_id if "dataset_id" in given else batch["dataset_id"],
                     batch["batch_items"])
    if body.name is not None:
        batch["name"] = body.name
    if "task_details" in given:
        batch["task_details"] = body.task_details.model_dump() if body.task_details else None
    if "dataset_id" in given:
        batch["dataset_id"] = body.dataset_id
    if "batch_items" in given:
        batch["batch_items"] = assign_ids(body.batch_items, uuid7) if body.batch_items is not None else None
    if body.auto_sync_enabled is not None:
        batch["auto_sync_enabled"] = body.auto_sync_enabled
    count_instructions(batch)
    sb.store.put("batch", batch)
    return json_response(200, public(sb, batch))


def setup(sb: State, req: Request) -> Response:
    """``POST /data-collection/batches/{id}/setup`` ``{dataset_id?, tasks_per_group?}`` (§2.6) → 202; PROCESSING."""
    batch = get_batch(sb, req.params["batch_id"])
    body = validate(BatchSetup, req.json_object())
    refuse_if_in_use(sb, batch, "its tasks")
    dataset_id = body.dataset_id or batch["dataset_id"]
    if dataset_id is None:
        raise bad_request("dataset_id", "the batch has no dataset; give dataset_id here or when creating the batch")
    dataset = _referenced_dataset(sb, dataset_id)
    datasets.raise_unless_ready(sb, dataset, "dataset_id")
    if batch.get("batch_items") is not None:
        _check_items(sb, batch["batch_items"], dataset_id, batch["batch_items"])
    if not task_instructions(batch):
        raise ApiError(400, "the batch has no instructions; add them (legacy instructions or batch_items) before setup")
    batch.update(dataset_id=dataset_id, tasks_per_group=body.tasks_per_group or 1, status="PROCESSING",
                 reason=None, setup_due_at=time.time() + sb.settings.batch_setup_seconds)
    sb.store.put("batch", batch)
    return json_response(202, public(sb, batch))


class BatchDuplicate(BaseModel):
    """Body of ``POST /data-collection/batches/{id}/duplicate`` (§2.9)."""

    model_config = ConfigDict(strict=True)
    name: str | None = Field(None, min_length=1)
    upload_new_dataset: bool = False


def duplicate(sb: State, req: Request) -> Response:
    """``POST /data-collection/batches/{id}/duplicate`` ``{name?, upload_new_dataset?}`` (§2.9) → 201 the new
    batch: UNINITIALISED, same task details, layout (new ids) and legacy instructions, and the same
    dataset (shared, not copied) unless ``upload_new_dataset``."""
    original = get_batch(sb, req.params["batch_id"])
    body = validate(BatchDuplicate, req.json_object())
    batch_id = uuid7()
    copy = {**original, "id": batch_id, "created_at": iso(), "created_by": sb.user_id(),
            "name": body.name or f"{original['name']} (Copy)", "status": "UNINITIALISED", "total_task_count": 0,
            "total_task_groups": None, "task_groups": [], "reason": None, "setup_due_at": None, "synced_count": 0,
            "dataset_id": None if body.upload_new_dataset else original["dataset_id"],
            "instructions": [{**item, "id": uuid7(), "batch_id": batch_id, "created_at": iso()}
                             for item in original["instructions"]]}
    if original.get("batch_items") is not None:
        copy["batch_items"] = assign_ids(strip_ids(original["batch_items"]), uuid7)
    sb.store.put("batch", copy)
    return json_response(201, public(sb, copy))


def task_groups(sb: State, req: Request) -> Response:
    """``GET /data-collection/batches/{id}/task-groups`` (§2.12) → a JSON list of group ids."""
    return json_response(200, [group["id"] for group in get_batch(sb, req.params["batch_id"])["task_groups"]])



def count_instructions(batch: dict) -> None:
    """Set ``total_instruction_count`` from the batch's current instructions."""
    batch["total_instruction_count"] = len(task_instructions(batch))


def setup_due(sb: State) -> None:
    """Finish the setup of every PROCESSING batch whose setup time has passed (engine tick):
    READY with task groups, or ERROR with a reason when its dataset is no longer READY."""
    with sb.lock:
        for batch in sb.store.list("batch", status="PROCESSING"):
            if batch["setup_due_at"] > time.time():
                continue
            dataset = sb.store.get("dataset", batch["dataset_id"])
            reason = f"dataset {batch['dataset_id']} is gone" if dataset is None else datasets.not_usable(sb, dataset)
            if reason:
                batch.update(status="ERROR", reason=reason)
            else:
                groups = build_task_groups(sb, batch, dataset)
                batch.update(status="READY", task_groups=groups, total_task_groups=len(groups),
                             total_task_count=dataset["total_datapoint_count"],
                             synced_count=dataset["total_datapoint_count"])
            sb.store.put("batch", batch)


def build_task_groups(sb: State, batch: dict, dataset: dict) -> list[dict]:
    """Task groups ``[{"id", "datapoints": [row index, ...]}]`` (seed "Setting up the batch").

    With a ``META_TASK_GROUP_ID`` column (V3) or a ``task_group_id`` field (V4): one group per distinct value, in order of first
    appearance. Otherwise datapoints are shuffled with the seed and cut into groups of
    ``tasks_per_group`` (the last may be smaller). Group ids are UUIDv5 of the batch id.
    """
    frame = datasets.frame_of(sb, dataset)
    namespace = uuid.UUID(batch["id"])
    column = datasets.task_group_column(dataset)
    if column is not None:
        members: dict[str, list[int]] = {}
        for index, value in enumerate(frame[column]):
            members.setdefault(value, []).append(index)
        return [{"id": str(uuid.uuid5(namespace, f"group:{key}")), "key": key, "datapoints": rows}
                for key, rows in members.items()]
    order = list(range(len(frame)))
    random.Random(f"{sb.settings.seed}:setup:{len(order)}:{batch['tasks_per_group']}").shuffle(order)
    size = batch["tasks_per_group"]
    return [{"id": str(uuid.uuid5(namespace, f"group:{n}")), "datapoints": sorted(order[start:start + size])}
            for n, start in enumerate(range(0, len(order), size))]
