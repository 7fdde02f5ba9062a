"""Prefect tasks for batches: find-or-create, instructions, setup, wait until READY.

Endpoints (API doc §3, §4, §12): ``GET/POST /api/v1/data-collection/batches``, ``PATCH …/batches/{id}``,
``GET/POST/PUT …/batches/{id}/instructions`` (legacy, past its sunset date; only with ``dataset.version: 3``), ``POST …/batches/{id}/setup``,
``GET …/batches/{id}/status``.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.errors import BatchSetupFailed, Gone, NotFound, UnprocessableEntity
from taskbuilder.models import BatchStatus
from taskbuilder.polling import PollSettings, wait_for_status

from tasks.caching import CREATE_TASK_OPTIONS
from tasks.connection import ProlificConnection, open_client
from tasks.datasets import NO_REASON
from tasks.job_tags import of_job
from tasks.logs import run_logger
from tasks.reconcile import oldest, settle_before_lookup
from tasks.records import update_job_record
from tasks.retry import API_TASK_OPTIONS


@task(name="create-batch", **API_TASK_OPTIONS, **CREATE_TASK_OPTIONS)
def create_batch(
    connection: ProlificConnection,
    job_key: str,
    workspace_id: str,
    name: str,
    dataset_id: str,
    task_details: dict[str, Any] | None,
    batch_items: list[dict[str, Any]] | None,
) -> str:
    """Return the id of the job's batch, creating it only if the workspace has none under the job key.

    ``name`` already carries the job key and work tag (``"<name> [job:<key> work:<12 hex>]"``). Look-up
    first by the job key (``GET …/batches?workspace_id=``; on a retry after a settle wait, see
    :mod:`tasks.reconcile`), then ``POST …/batches`` (→ 201) with ``dataset_id``, ``task_details`` and, in
    the current layout, ``batch_items``; then a second look-up keeps the oldest if a late create made two.
    A batch under the key made from other work raises :class:`tasks.job_tags.JobChanged` before any create.
    """
    logger = run_logger()
    settle_before_lookup(connection)
    with open_client(connection) as client:
        def of_this_job() -> list[Any]:
            return of_job(client.list_batches(workspace_id), name, "batch", connection.base_url)

        existing = of_this_job()
        if existing:
            batch = oldest(existing)
            logger.info("Found batch %s (%s, %s): not creating another", batch.id, name, batch.status)
        else:
            created = client.create_batch(
                name=name, workspace_id=workspace_id, dataset_id=dataset_id, task_details=task_details, batch_items=batch_items
            )
            logger.info("Created batch %s (%s)", created.id, name)
            same = of_this_job()
            batch = oldest(same) if same else created
            if len(same) > 1:
                extra = [b.id for b in same if b.id != batch.id]
                logger.warning("Batches %s duplicate %s (an earlier create finished late); using %s", extra, name, batch.id)
                update_job_record(job_key, connection.base_url, notes=[f"unused duplicate batches (empty, no cost): {extra}"])
    update_job_record(job_key, connection.base_url, batch_id=batch.id, statuses={"batch": str(batch.status)})
    return batch.id


class LegacyInstructionsRetired(RuntimeError):
    """The seed's path was asked for (``dataset.version: 3``) but the legacy instructions endpoint is gone."""


@task(name="add-instructions", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def add_instructions(connection: ProlificConnection, batch_id: str, instructions: list[dict[str, Any]]) -> str:
    """Give a V3 batch its instructions through the legacy endpoint (§4); return ``"legacy"``.

    Only on the seed's path (``dataset.version: 3``). State first: a batch already past UNINITIALISED, or
    whose instructions already match, is left alone; differing instructions are replaced with the
    full-replacement ``PUT``; none yet → ``POST``. When the endpoint answers 404 or 410 (retired after its
    sunset date, §4) the job stops here, before the study, with :class:`LegacyInstructionsRetired`: there is
    no fallback (``dataset_field`` items need a V4 dataset, §3.1). 422 (the batch already uses
    ``batch_items``) → ``"batch_items"``, nothing to add.
    """
    logger = run_logger()
    settle_before_lookup(connection)
    with open_client(connection) as client:
        batch = client.get_batch(batch_id)
        if getattr(batch, "batch_items", None):
            logger.info("Batch %s already defines batch_items: no legacy instructions to add", batch_id)
            return "batch_items"
        try:
            current = client.get_instructions(batch_id)
            if _same_instructions(current, instructions):
                logger.info("Batch %s already has its %d instructions", batch_id, len(current))
            elif str(batch.status) != BatchStatus.UNINITIALISED:
                logger.warning("Batch %s is %s: instructions can no longer change", batch_id, batch.status)
            elif current:
                replacement = [dict(item, id=old.id) for item, old in zip(instructions, current)] + instructions[len(current):]
                client.replace_instructions(batch_id, replacement)
                logger.info("Replaced the instructions of batch %s (%d)", batch_id, len(instructions))
            else:
                client.create_instructions(batch_id, instructions)
                logger.info("Added %d instructions to batch %s", len(instructions), batch_id)
            return "legacy"
        except (Gone, NotFound) as exc:
            raise LegacyInstructionsRetired(
                f"the legacy instructions endpoint of batch {batch_id} answers {exc.status_code} (retired after its "
                "sunset date, 2026-09-01): the seed's path (dataset.version: 3) cannot give the batch its instructions. "
                "Remove `dataset.version: 3` from the job spec to use the default path (a V4 dataset and batch_items) "
                "and run the job under a new `name`. No study was created."
            ) from exc
        except UnprocessableEntity as exc:
            logger.info("Batch %s refuses legacy instructions (%s): it uses batch_items", batch_id, exc.detail)
            return "batch_items"


@task(name="set-up-batch", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def set_up_batch(connection: ProlificConnection, batch_id: str, dataset_id: str, tasks_per_group: int | None) -> str:
    """Trigger task generation once; return the batch status seen before.

    ``POST …/batches/{id}/setup`` with ``{dataset_id, tasks_per_group}`` (→ 202) only while the batch
    is UNINITIALISED; a batch already PROCESSING or READY is not set up again.
    """
    logger = run_logger()
    settle_before_lookup(connection)
    with open_client(connection) as client:
        status = str(client.get_batch_status(batch_id))
        if status != BatchStatus.UNINITIALISED:
            logger.info("Batch %s is %s: already set up", batch_id, status)
            return status
        client.setup_batch(batch_id, dataset_id=dataset_id, tasks_per_group=tasks_per_group)
        logger.info("Set up batch %s (tasks_per_group=%s)", batch_id, tasks_per_group)
        return status


@task(name="wait-for-batch", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def wait_for_batch(connection: ProlificConnection, batch_id: str, polling: PollSettings) -> dict[str, Any]:
    """Poll ``GET …/batches/{id}/status`` until READY; return the batch as a dict.

    Raises :class:`BatchSetupFailed` at once on ERROR (with the server's reason),
    :class:`WaitTimedOut` after ``polling.batch_timeout_seconds``.
    """
    logger = run_logger()
    with open_client(connection) as client:

        def failed(status: str) -> Exception:
            return BatchSetupFailed(batch_id=batch_id, reason=client.get_batch(batch_id).error_reason or NO_REASON)

        wait_for_status(
            lambda: client.get_batch_status(batch_id),
            resource="batch",
            resource_id=batch_id,
            done={BatchStatus.READY},
            failed={BatchStatus.ERROR},
            on_failed=failed,
            timeout_seconds=polling.batch_timeout_seconds,
            settings=polling,
            on_poll=lambda status, elapsed: logger.info("Batch %s is %s after %.1f s", batch_id, status, elapsed),
        )
        batch = client.get_batch(batch_id)
    logger.info("Batch %s is READY: %s tasks in %s task groups", batch_id, batch.total_task_count, batch.total_task_groups)
    return batch.model_dump(mode="json")


_COMPARED_FIELDS = ("type", "description", "options", "answer_limit")


def _same_instructions(current: list[Any], wanted: list[dict[str, Any]]) -> bool:
    """True when the batch's instructions already match ``wanted`` in type, text and options."""
    if len(current) != len(wanted):
        return False
    for have, want in zip(sorted(current, key=lambda i: getattr(i, "order", 0) or 0), wanted):
        have_fields = have.model_dump(mode="json")
        for field in _COMPARED_FIELDS:
            if field in want and _strip_ids(have_fields.get(field)) != _strip_ids(want[field]):
                return False
    return True


def _strip_ids(value: Any) -> Any:
    if isinstance(value, list):
        return [_strip_ids(item) for item in value]
    if isinstance(value, dict):
        return {k: _strip_ids(v) for k, v in value.items() if k not in ("id", "created_at", "created_by", "batch_id")}
    return value
