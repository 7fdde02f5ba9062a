"""Batch syncs (§2.10 of ../shared/docs/prolific-api-current.md): turn datapoints appended to a V4 dataset
after setup into tasks of a READY batch.

A sync job is ``queued``, then ``processing`` (one at a time per batch), and after
``batch_setup_seconds`` ``complete`` with its counts, or ``failed`` with a reason. New datapoints join
the task group of their ``task_group_id`` value (or start a new keyed group); without that field the
open, partial group is topped up to ``tasks_per_group`` first, then the rest is cut into new groups.
"""

from __future__ import annotations

import time
import uuid

from sandbox import batches, datasets
from sandbox.ids import iso, uuid7
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, json_response, not_found

SHOWN = ("batch_id", "dataset_id", "sync_id", "created_at", "status", "tasks_created", "datapoints_processed",
         "groups_created", "groups_expanded", "reason")


def start_sync(sb: State, batch: dict) -> dict:
    """Queue a sync job for a READY batch with a V4 dataset; returns the job."""
    now = iso()
    return sb.store.put("batch_sync", {
        "id": uuid7(), "sync_id": None, "batch_id": batch["id"], "dataset_id": batch["dataset_id"], "created_at": now,
        "status": "queued", "tasks_created": None, "datapoints_processed": None, "groups_created": None,
        "groups_expanded": None, "reason": None, "due_at": None})


def _shown(job: dict) -> dict:
    return {**{name: job.get(name) for name in SHOWN}, "sync_id": job["id"]}


def sync(sb: State, req: Request) -> Response:
    """``POST /data-collection/batches/{id}/sync`` (§2.10) → 202 the queued job ``{batch_id, dataset_id,
    sync_id, created_at, status}``. 400 unless the batch is READY with a V4 dataset attached."""
    batch = batches.get_batch(sb, req.params["batch_id"])
    if batch["status"] != "READY" or not batch.get("dataset_id"):
        raise ApiError(400, f"batch {batch['id']} is {batch['status']}; a sync needs a READY batch with a dataset")
    if not datasets.is_v4(datasets.get_dataset(sb, batch["dataset_id"])):
        raise ApiError(400, "syncs are V4-only; the batch's dataset is a V3 dataset")
    return json_response(202, _shown(start_sync(sb, batch)))


def sync_status(sb: State, req: Request) -> Response:
    """``GET /data-collection/batches/{id}/syncs/{sync_id}`` (§2.10); 404 when unknown."""
    job = sb.store.get("batch_sync", req.params["sync_id"])
    if job is None or job["batch_id"] != req.params["batch_id"]:
        raise not_found("sync", req.params["sync_id"])
    return json_response(200, _shown(job))


def process_due(sb: State) -> None:
    """Start the oldest queued sync of each batch when none runs; finish those whose time has passed."""
    with sb.lock:
        running = {job["batch_id"] for job in sb.store.list("batch_sync", status="processing")}
        for job in sb.store.list("batch_sync", status="queued"):
            if job["batch_id"] not in running:
                job.update(status="processing", due_at=time.time() + sb.settings.batch_setup_seconds)
                sb.store.put("batch_sync", job)
                running.add(job["batch_id"])
        for job in sb.store.list("batch_sync", status="processing"):
            if job["due_at"] <= time.time():
                _run(sb, job)


def _run(sb: State, job: dict) -> None:
    batch = sb.store.get("batch", job["batch_id"])
    dataset = sb.store.get("dataset", job["dataset_id"])
    if batch is None or dataset is None or batch["status"] != "READY" or batch["dataset_id"] != dataset["id"]:
        job.update(status="failed", reason="the batch is no longer READY on this dataset")
        sb.store.put("batch_sync", job)
        return
    frame = datasets.frame_of(sb, dataset)
    start = batch.get("synced_count", 0)
    new = list(range(start, len(frame)))
    groups = batch["task_groups"]
    before = len(groups)
    expanded: set[str] = set()
    namespace = uuid.UUID(batch["id"])
    column = datasets.task_group_column(dataset)
    if column is not None:
        by_key = {group.get("key"): group for group in groups}
        for index in new:
            key = frame.at[index, column]
            group = by_key.get(key)
            if group is None:
                group = {"id": str(uuid.uuid5(namespace, f"group:{key}")), "key": key, "datapoints": []}
                groups.append(group)
                by_key[key] = group
            elif group["id"] not in {g["id"] for g in groups[before:]}:
                expanded.add(group["id"])
            group["datapoints"].append(index)
    else:
        size = batch["tasks_per_group"]
        pending = list(new)
        if groups and len(groups[-1]["datapoints"]) < size and pending:
            room = size - len(groups[-1]["datapoints"])
            groups[-1]["datapoints"].extend(pending[:room])
            expanded.add(groups[-1]["id"])
            pending = pending[room:]
        for start_at in range(0, len(pending), size):
            groups.append({"id": str(uuid.uuid5(namespace, f"group:{len(groups)}")),
                           "datapoints": pending[start_at:start_at + size]})
    batch.update(task_groups=groups, total_task_groups=len(groups), total_task_count=len(frame),
                 synced_count=len(frame))
    sb.store.put("batch", batch)
    job.update(status="complete", tasks_created=len(new), datapoints_processed=len(new),
               groups_created=len(groups) - before, groups_expanded=len(expanded))
    sb.store.put("batch_sync", job)
