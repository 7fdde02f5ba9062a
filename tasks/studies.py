"""Prefect tasks for studies: find-or-create, publish once, wait, submissions (the cost: ``tasks/costs.py``).

Endpoints (API doc §6, §7): ``GET/POST /api/v1/studies/``, ``GET /api/v1/studies/{id}/``,
``POST /api/v1/studies/{id}/transition/``, ``GET /api/v1/studies/{id}/submissions/``,
``POST /api/v1/submissions/bulk-approve/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from taskbuilder.errors import BadRequest
from taskbuilder.models import StudyAction, StudyStatus
from taskbuilder.polling import PollSettings, wait_for_status

from tasks.caching import CREATE_TASK_OPTIONS
from tasks.connection import ProlificConnection, open_client
from tasks.job_tags import of_job
from tasks.logs import run_logger
from tasks.reconcile import oldest, settle_before_lookup
from tasks.progress import report_progress
from tasks.records import update_job_record
from tasks.retry import API_TASK_OPTIONS

STUDY_DONE = {StudyStatus.AWAITING_REVIEW, StudyStatus.COMPLETED}
"""A study is finished for collection once it reaches either (it may pass AWAITING REVIEW quickly)."""


@task(name="create-study", **API_TASK_OPTIONS, **CREATE_TASK_OPTIONS)
def create_study(connection: ProlificConnection, job_key: str, payload: dict[str, Any]) -> str:
    """Return the id of the job's study, creating it only if no study carries the job key.

    ``payload["internal_name"]`` carries the job key and work tag. Look-up first by the job key
    (``GET /api/v1/studies/``; on a retry after a settle wait, see :mod:`tasks.reconcile`), then
    ``POST /api/v1/studies/`` with ``data_collection_method: AI_TASK_BUILDER_BATCH``; then a second
    look-up keeps the oldest and deletes an unpublished duplicate that a late create left
    (``DELETE /api/v1/studies/{id}/``). A study under the key made from other work raises
    :class:`tasks.job_tags.JobChanged` before any create.
    """
    logger = run_logger()
    settle_before_lookup(connection)
    internal_name = payload["internal_name"]
    with open_client(connection) as client:
        def of_this_job() -> list[Any]:
            return of_job(client.list_studies(), internal_name, "study", connection.base_url)

        existing = of_this_job()
        if existing:
            study = oldest(existing)
            logger.info("Found study %s (%s): not creating another", study.id, study.status)
        else:
            created = client.create_study(payload)
            logger.info("Created study %s with %s places", created.id, created.total_available_places)
            same = of_this_job()
            study = oldest(same) if same else created
            for duplicate in same:
                if duplicate.id != study.id and str(duplicate.status) == StudyStatus.UNPUBLISHED:
                    client.delete_study(duplicate.id)
                    logger.warning("Deleted study %s, an unpublished duplicate of %s (a create finished late)", duplicate.id, study.id)
    update_job_record(job_key, connection.base_url, study_id=study.id, statuses={"study": str(study.status)})
    return study.id


@task(name="publish-study", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def publish_study(connection: ProlificConnection, job_key: str, study_id: str) -> str:
    """Publish the study if, and only if, it is still UNPUBLISHED; return its status after.

    ``GET /api/v1/studies/{id}/`` first, then ``POST …/transition/ {"action": "PUBLISH"}``. A retry
    after a lost response sees the study published and does not publish again.
    """
    logger = run_logger()
    settle_before_lookup(connection)
    with open_client(connection) as client:
        study = client.get_study(study_id)
        if str(study.status) != StudyStatus.UNPUBLISHED:
            logger.info("Study %s is %s: already published, not publishing again", study_id, study.status)
            status = str(study.status)
        else:
            try:
                status = str(client.transition_study(study_id, StudyAction.PUBLISH).status)
            except BadRequest:
                # A PUBLISH still in flight from an earlier attempt may have won the race.
                status = str(client.get_study(study_id).status)
                if status == StudyStatus.UNPUBLISHED:
                    raise
                logger.info("Study %s was published by an earlier attempt (%s)", study_id, status)
            else:
                logger.info("Published study %s: %s", study_id, status)
    update_job_record(job_key, connection.base_url, statuses={"study": status})
    return status


@task(name="read-study-status", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def read_study_status(connection: ProlificConnection, study_id: str) -> str:
    """The study's current status (``GET /api/v1/studies/{id}/`` → ``status``, API doc §6.3)."""
    with open_client(connection) as client:
        return str(client.get_study(study_id).status)


@task(name="wait-for-study", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def wait_for_study(
    connection: ProlificConnection, study_id: str, polling: PollSettings, observer: Callable[[Any, float], None] | None = None,
) -> str:
    """Poll ``GET /api/v1/studies/{id}/`` until AWAITING REVIEW or COMPLETED; return the status. PAUSED is not
    done: the wait goes on, and goes on where it was once the study is resumed.

    ``observer(study, elapsed_seconds)``, when given, is called after each poll with the study read
    (:class:`taskbuilder.models.Study`), e.g. :class:`tasks.live_results.LiveResults` (partial results).

    Raises :class:`WaitTimedOut` after ``polling.study_timeout_seconds``. Logs progress and keeps a
    Prefect progress artifact (key ``study-<id>-progress``) at places taken / total places × 100, updated
    (and logged) only when the status or the places change (one API request each), also reported after
    every poll to in-process listeners (:mod:`tasks.progress`, the CLI's bar).
    """
    logger = run_logger()
    artifact_id = create_progress_artifact(0.0, key=f"study-{study_id}-progress".lower(), description=f"Places taken of study {study_id}")
    with open_client(connection) as client:
        places = {"taken": 0, "total": 0}
        seen: dict[str, Any] = {}

        def status() -> str:
            study = seen["study"] = client.get_study(study_id)
            places.update(taken=int(study.places_taken or 0), total=int(study.total_available_places or 0))
            return str(study.status)

        shown: dict[str, str] = {}

        def on_poll(current: str, elapsed: float) -> None:
            done = current in STUDY_DONE
            percent = 100.0 if done else study_progress_percent(places["taken"], places["total"])
            description = f"Study {study_id}: {current}, {places['taken']}/{places['total']} places taken"
            report_progress(f"study-{study_id}", percent, description)
            if shown.get("description") != description:  # the artifact and the log change only with the figure
                shown["description"] = description
                update_progress_artifact(artifact_id, percent, description=description)
                logger.info("Study %s is %s, %d/%d places taken, after %.0f s", study_id, current, places["taken"], places["total"], elapsed)
            if observer is not None and not done:
                observer(seen["study"], elapsed)

        return wait_for_status(
            status,
            resource="study",
            resource_id=study_id,
            done=STUDY_DONE,
            timeout_seconds=polling.study_timeout_seconds,
            settings=polling,
            on_poll=on_poll,
        )


def study_progress_percent(places_taken: int, total_places: int) -> float:
    """Places taken as a percentage of the study's places (0–100; 0 when the study has no places)."""
    if total_places <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * places_taken / total_places))


@task(name="list-submissions", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def list_submissions(connection: ProlificConnection, study_id: str) -> list[dict[str, Any]]:
    """``GET /api/v1/studies/{id}/submissions/`` (all pages) as a list of dicts."""
    with open_client(connection) as client:
        return [submission.model_dump(mode="json") for submission in client.list_submissions(study_id)]


@task(name="approve-submissions", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def approve_submissions(connection: ProlificConnection, study_id: str, submission_ids: list[str]) -> list[str]:
    """Bulk-approve ``submission_ids`` that are still AWAITING REVIEW; return those of ``submission_ids``
    that the server shows APPROVED afterwards.

    State first (``GET …/submissions/``): a retry never acts on a submission already approved, nor on
    any RETURNED or TIMED-OUT one. Then ``POST /api/v1/submissions/bulk-approve/ {submission_ids}``,
    then the submissions are read again, so a retry after an answer that never came (the server
    approved, the client did not hear) still counts what the first attempt approved.
    """
    logger = run_logger()
    if not submission_ids:
        return []
    with open_client(connection) as client:
        awaiting = {s.id for s in client.list_submissions(study_id) if str(s.status) == "AWAITING REVIEW"}
        to_approve = [sid for sid in submission_ids if sid in awaiting]
        if to_approve:
            client.bulk_approve_submissions(to_approve)
        approved_now = {s.id for s in client.list_submissions(study_id) if str(s.status) == "APPROVED"}
    approved = [sid for sid in submission_ids if sid in approved_now]
    logger.info("%d of %d submissions asked are APPROVED (%d sent in this attempt)", len(approved), len(submission_ids), len(to_approve))
    return approved
