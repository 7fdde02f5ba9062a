"""Batches (API doc §3) and their instructions: legacy endpoints (§4) and ``batch_items`` (§12).

Setup (202) moves a batch to PROCESSING; after ``batch_setup_seconds`` the engine builds the task
groups (seeded random groups of ``tasks_per_group`` datapoints, or the dataset's
``META_TASK_GROUP_ID`` column) and the batch turns READY.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from sandbox import datasets
from sandbox.ids import iso, uuid7
from sandbox.instructions import batch_items_issues, instructions_of_items, legacy_problems
from sandbox.web import ApiError, Request, Response, Router, bad_request, json_response, not_found, validate

if TYPE_CHECKING:
    from sandbox.app import Sandbox

LEGACY_HEADERS = {"Deprecation": "true", "Sunset": "Tue, 01 Sep 2026 23:59:59 GMT"}
PUBLIC_FIELDS = ("id", "created_at", "created_by", "name", "workspace_id", "dataset_id", "status",
                 "total_task_count", "total_instruction_count", "total_task_groups", "schema_version",
                 "tasks_per_group", "auto_sync_enabled", "task_details", "batch_items", "reason")
# Fields an instruction keeps, by type (API doc §4.2/§4.3); anything else in a request is ignored.
COMMON_INSTRUCTION_FIELDS = ("type", "description", "order", "helper_text", "placeholder_text_input",
                             "created_by", "answer_limit")
INSTRUCTION_FIELDS = {
    "free_text": ("validation",),
    "multiple_choice": ("options", "disable_dropdown"),
    "multiple_choice_with_free_text": ("options", "disable_dropdown"),
    "free_text_with_unit": ("unit_options", "unit_position", "default_unit"),
    "file_upload": ("accepted_file_types", "max_file_size_mb", "min_file_count", "max_file_count"),
}


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


def public(sb: Sandbox, batch: dict) -> dict:
    """The batch as the API shows it (API doc §3.1), with its dataset embedded under ``datasets``."""
    shown = {name: batch.get(name) for name in PUBLIC_FIELDS}
    dataset = sb.store.get("dataset", batch["dataset_id"]) if batch.get("dataset_id") else None
    shown["datasets"] = [datasets.public(dataset)] if dataset else []
    return shown


def get_batch(sb: Sandbox, batch_id: str) -> dict:
    """The stored batch; 404 when unknown."""
    batch = sb.store.get("batch", batch_id)
    if batch is None:
        raise not_found("batch", batch_id)
    return batch


def task_instructions(batch: dict) -> list[dict]:
    """The instructions every task of the batch carries, in order: from ``batch_items`` when set,
    else the legacy instructions sorted by ``order``."""
    if batch.get("batch_items") is not None:
        return instructions_of_items(batch["id"], batch["batch_items"])
    return sorted(batch["instructions"], key=lambda item: item["order"])


def _referenced_dataset(sb: Sandbox, dataset_id: str, field: str = "dataset_id") -> dict:
    dataset = sb.store.get("dataset", dataset_id)
    if dataset is None:
        raise bad_request(field, f"no dataset with id {dataset_id!r}")
    return dataset


def _check_items(sb: Sandbox, items: Any, dataset_id: str | None) -> None:
    """422 INVALID_BATCH_ITEMS (API doc §12) when ``items`` is invalid; dataset fields are checked
    against the dataset's columns once it is READY."""
    dataset = sb.store.get("dataset", dataset_id) if dataset_id else None
    columns = dataset["columns"] if dataset and dataset["status"] == "READY" else None
    issues = batch_items_issues(items, columns)
    if issues:
        raise ItemsInvalid(issues)


class ItemsInvalid(ApiError):
    """``batch_items`` failed validation: 422 ``{"type": "INVALID_BATCH_ITEMS", "issues": [...]}`` (API doc §1.1 shape 3)."""

    def __init__(self, issues: list[dict]) -> None:
        super().__init__(422, f"{len(issues)} batch_items issues")
        self.issues = issues

    def body(self) -> dict:
        return {"type": "INVALID_BATCH_ITEMS", "issues": self.issues}


def _refuse_if_in_use(sb: Sandbox, batch: dict, what: str) -> None:
    """400 when the batch is being set up, or a published study uses it (its tasks are fixed then)."""
    if batch["status"] == "PROCESSING":
        raise ApiError(400, f"batch {batch['id']} is PROCESSING; {what} cannot change until setup ends")
    for study in sb.store.list("study", data_collection_id=batch["id"]):
        if study["status"] != "UNPUBLISHED":
            raise ApiError(400, f"batch {batch['id']} is used by published study {study['id']}; {what} cannot change")


def _keep_known_fields(item: dict) -> dict:
    names = COMMON_INSTRUCTION_FIELDS + INSTRUCTION_FIELDS[item["type"]]
    return {name: item[name] for name in names if name in item}


def register(router: Router, sb: Sandbox) -> None:
    """Add the batch and instruction endpoints under ``/api/v1/data-collection/batches``."""
    base = "/api/v1/data-collection/batches"
    one = base + r"/(?P<batch_id>[^/]+)"

    def create(req: Request) -> Response:
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
                 "batch_items": body.batch_items, "instructions": [], "task_groups": [], "reason": None,
                 "setup_due_at": None}
        _count_instructions(batch)
        sb.store.put("batch", batch)
        return json_response(201, public(sb, batch))

    def list_batches(req: Request) -> Response:
        workspace_id = req.query_value("workspace_id")
        if not workspace_id:
            raise bad_request("workspace_id", "query parameter workspace_id is required")
        sb.require_workspace(workspace_id, "workspace_id")
        return json_response(200, {"results": [public(sb, b) for b in sb.store.list("batch", workspace_id=workspace_id)]})

    def get(req: Request) -> Response:
        return json_response(200, public(sb, get_batch(sb, req.params["batch_id"])))

    def status(req: Request) -> Response:
        return json_response(200, {"status": get_batch(sb, req.params["batch_id"])["status"]})

    def update(req: Request) -> Response:
        batch = get_batch(sb, req.params["batch_id"])
        body = validate(BatchUpdate, req.json_object())
        given = body.model_fields_set
        if {"dataset_id", "batch_items"} & given:
            _refuse_if_in_use(sb, batch, "dataset_id and batch_items")
        if "dataset_id" in given and body.dataset_id is not None:
            _referenced_dataset(sb, body.dataset_id)
        if "batch_items" in given and body.batch_items is not None:
            _check_items(sb, body.batch_items, body.dataset_id if "dataset_id" in given else batch["dataset_id"])
        if body.name is not None:
            batch["name"] = body.name
        if "task_details" in given:
            batch["task_details"] = body.task_details.model_dump() if body.task_details else None
        if "dataset_id" in given:
            batch["dataset_id"] = body.dataset_id
        if "batch_items" in given:
            batch["batch_items"] = body.batch_items
        if body.auto_sync_enabled is not None:
            batch["auto_sync_enabled"] = body.auto_sync_enabled
        _count_instructions(batch)
        sb.store.put("batch", batch)
        return json_response(200, public(sb, batch))

    def setup(req: Request) -> Response:
        batch = get_batch(sb, req.params["batch_id"])
        body = validate(BatchSetup, req.json_object())
        _refuse_if_in_use(sb, batch, "its tasks")
        dataset_id = body.dataset_id or batch["dataset_id"]
        if dataset_id is None:
            raise bad_request("dataset_id", "the batch has no dataset; give dataset_id here or when creating the batch")
        dataset = _referenced_dataset(sb, dataset_id)
        datasets.raise_unless_ready(dataset, "dataset_id")
        if batch.get("batch_items") is not None:
            _check_items(sb, batch["batch_items"], dataset_id)
        if not task_instructions(batch):
            raise ApiError(400, "the batch has no instructions; add them (legacy instructions or batch_items) before setup")
        batch.update(dataset_id=dataset_id, tasks_per_group=body.tasks_per_group or 1, status="PROCESSING",
                     reason=None, setup_due_at=time.time() + sb.settings.batch_setup_seconds)
        sb.store.put("batch", batch)
        return json_response(202, public(sb, batch))

    def legacy_batch(req: Request) -> dict:
        if sb.settings.legacy_instructions == "retired":
            raise ApiError(410, "The instructions endpoint has been retired (Sunset: Tue, 01 Sep 2026 23:59:59 GMT); "
                                "define instructions with batch_items on the batch (PATCH the batch).",
                           headers=LEGACY_HEADERS)
        batch = get_batch(sb, req.params["batch_id"])
        if batch.get("batch_items") is not None:
            raise ApiError(422, "This batch uses batch_items; the legacy instructions endpoint cannot be used on it.",
                           headers=LEGACY_HEADERS)
        return batch

    def legacy_body(req: Request) -> list[dict]:
        body = req.json_object()
        problems = legacy_problems(body.get("instructions"))
        if problems:
            raise ApiError(400, problems, headers=LEGACY_HEADERS)
        return body["instructions"]

    def new_instruction(batch: dict, item: dict, order: int) -> dict:
        return {**_keep_known_fields(item), "order": item.get("order", order), "id": uuid7(),
                "batch_id": batch["id"], "created_at": iso(), "created_by": item.get("created_by") or sb.user_id()}

    def get_instructions(req: Request) -> Response:
        batch = legacy_batch(req)
        items = task_instructions(batch)
        return json_response(200, {"results": items, "meta": {"count": len(items)}}, LEGACY_HEADERS)

    def post_instructions(req: Request) -> Response:
        batch = legacy_batch(req)
        items = legacy_body(req)
        _refuse_if_in_use(sb, batch, "instructions")
        created = [new_instruction(batch, item, len(batch["instructions"]) + i + 1) for i, item in enumerate(items)]
        batch["instructions"].extend(created)
        _count_instructions(batch)
        sb.store.put("batch", batch)
        return json_response(201, created, LEGACY_HEADERS)

    def put_instructions(req: Request) -> Response:
        batch = legacy_batch(req)
        items = legacy_body(req)
        _refuse_if_in_use(sb, batch, "instructions")
        existing = {item["id"]: item for item in batch["instructions"]}
        replaced = []
        for i, item in enumerate(items):
            if "id" in item:
                if item["id"] not in existing:
                    raise ApiError(400, {f"instructions[{i}].id": [f"no instruction {item['id']!r} on this batch"]},
                                   headers=LEGACY_HEADERS)
                old = existing[item["id"]]
                replaced.append({**_keep_known_fields(item), "order": item.get("order", i + 1), "id": old["id"],
                                 "batch_id": batch["id"], "created_at": old["created_at"],
                                 "created_by": item.get("created_by") or old["created_by"]})
            else:
                replaced.append(new_instruction(batch, item, i + 1))
        batch["instructions"] = replaced
        _count_instructions(batch)
        sb.store.put("batch", batch)
        return json_response(200, task_instructions(batch), LEGACY_HEADERS)

    def task_groups(req: Request) -> Response:
        return json_response(200, [group["id"] for group in get_batch(sb, req.params["batch_id"])["task_groups"]])

    router.add("POST", base, create)
    router.add("GET", base, list_batches)
    router.add("GET", one, get)
    router.add("PATCH", one, update)
    router.add("GET", one + "/status", status)
    router.add("POST", one + "/setup", setup)
    router.add("GET", one + "/instructions", get_instructions)
    router.add("POST", one + "/instructions", post_instructions)
    router.add("PUT", one + "/instructions", put_instructions)
    router.add("GET", one + "/task-groups", task_groups)


def _count_instructions(batch: dict) -> None:
    batch["total_instruction_count"] = len(task_instructions(batch))


def setup_due(sb: Sandbox) -> None:
    """Finish the setup of every PROCESSING batch whose setup time has passed (engine tick):
    READY with task groups, or ERROR with a reason when its dataset is no longer READY."""
    with sb.lock:
        for batch in sb.store.list("batch", status="PROCESSING"):
            if batch["setup_due_at"] > time.time():
                continue
            dataset = sb.store.get("dataset", batch["dataset_id"])
            if dataset is None or dataset["status"] != "READY":
                batch.update(status="ERROR", reason=f"dataset {batch['dataset_id']} is not READY")
            else:
                groups = build_task_groups(sb, batch, dataset)
                batch.update(status="READY", task_groups=groups, total_task_groups=len(groups),
                             total_task_count=dataset["total_datapoint_count"])
            sb.store.put("batch", batch)


def build_task_groups(sb: Sandbox, batch: dict, dataset: dict) -> list[dict]:
    """Task groups ``[{"id", "datapoints": [row index, ...]}]`` (seed "Setting up the batch").

    With a ``META_TASK_GROUP_ID`` column: one group per distinct value, in order of first
    appearance. Otherwise datapoints are shuffled with the seed and cut into groups of
    ``tasks_per_group`` (the last may be smaller). Group ids are UUIDv5 of the batch id.
    """
    frame = datasets.frame_of(sb, dataset)
    namespace = uuid.UUID(batch["id"])
    if datasets.TASK_GROUP_COLUMN in frame.columns:
        members: dict[str, list[int]] = {}
        for index, value in enumerate(frame[datasets.TASK_GROUP_COLUMN]):
            members.setdefault(value, []).append(index)
        return [{"id": str(uuid.uuid5(namespace, f"group:{key}")), "datapoints": rows} for key, rows in members.items()]
    order = list(range(len(frame)))
    random.Random(f"{sb.settings.seed}:setup:{len(order)}:{batch['tasks_per_group']}").shuffle(order)
    size = batch["tasks_per_group"]
    return [{"id": str(uuid.uuid5(namespace, f"group:{n}")), "datapoints": sorted(order[start:start + size])}
            for n, start in enumerate(range(0, len(order), size))]
