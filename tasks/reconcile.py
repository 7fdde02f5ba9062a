"""Look-up-before-create for resources whose create may still be in flight on the server.

A create whose answer never came (time-out, dropped connection) may still be running on the server
when Prefect retries it, so a look-up straight away can miss it and the retry would create a second
one. Two guards, both here:

1. :func:`settle_before_lookup`: on a retry after an attempt that got no answer, wait one client
   read timeout before looking up, so a request the server was still working on has finished (or
   failed) by then;
2. :func:`oldest`: after a create, the caller lists again; if two resources carry the job key, every
   run keeps the oldest (so concurrent or retried runs converge on the same one) and handles the rest
   (studies: deleted while UNPUBLISHED; batches: the API cannot delete them, so they are reported);
3. :func:`sweep_duplicates`: the same look once more at the end of the run, for a create that
   finished later still.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.models import StudyStatus

from tasks.connection import ProlificConnection, open_client
from tasks.job_tags import of_job
from tasks.logs import run_logger
from tasks.retry import API_TASK_OPTIONS, previous_attempt_unanswered

R = TypeVar("R")


def settle_before_lookup(connection: ProlificConnection) -> None:
    """Sleep ``connection.timeouts.read_seconds`` when an earlier attempt of the current task run got
    no answer (see :func:`tasks.retry.previous_attempt_unanswered`); return at once otherwise."""
    from prefect.runtime import task_run

    if task_run.get_run_count() > 1 and previous_attempt_unanswered(task_run.get_id()):
        wait_seconds = connection.timeouts.read_seconds
        run_logger().info("Retry of a create: waiting %.1f s for a request still in flight before looking up", wait_seconds)
        time.sleep(wait_seconds)


def oldest(resources: Sequence[R]) -> R:
    """The resource created first (``created_at`` / ``date_created``, then id); ``resources`` non-empty."""
    def key(resource: Any) -> tuple[str, str]:
        extra = getattr(resource, "model_extra", None) or {}
        created = getattr(resource, "created_at", None) or extra.get("created_at") or extra.get("date_created") or ""
        return (str(created), str(resource.id))

    return min(resources, key=key)


@task(name="sweep-duplicates", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def sweep_duplicates(
    connection: ProlificConnection, workspace_id: str, batch_name: str, internal_name: str, batch_id: str, study_id: str
) -> list[str]:
    """Last look at the end of a run for resources of this job that a late create left behind.

    Lists the batches in the workspace and the studies under the job key of ``batch_name`` and
    ``internal_name`` (:func:`tasks.job_tags.of_job`; ones of other work are not this job's). A study
    other than ``study_id`` that is still UNPUBLISHED is deleted (``DELETE /api/v1/studies/{id}/``); a
    published one, or a batch other than ``batch_id`` (the API cannot delete batches), is returned as a
    note for the job record and ``run.json``. Returns the notes (empty when nothing was left behind).
    """
    logger = run_logger()
    notes: list[str] = []
    with open_client(connection) as client:
        batches = of_job(client.list_batches(workspace_id), batch_name, "batch", connection.base_url, refuse=False)
        extra_batches = [b.id for b in batches if b.id != batch_id]
        if extra_batches:
            notes.append(f"unused duplicate batches of this job (no cost; the API cannot delete them): {extra_batches}")
        for study in of_job(client.list_studies(), internal_name, "study", connection.base_url, refuse=False):
            if study.id == study_id:
                continue
            if str(study.status) == StudyStatus.UNPUBLISHED:
                client.delete_study(study.id)
                logger.warning("Deleted study %s, an unpublished duplicate of %s left by a late create", study.id, study_id)
                notes.append(f"deleted unpublished duplicate study {study.id}")
            else:
                notes.append(f"study {study.id} duplicates {study_id} and is {study.status}: review it in Prolific")
    for note in notes:
        logger.warning("%s", note)
    return notes
