"""The study monitor: look at every unfinished study of the recorded jobs, announce each status change.

Scheduled (deployments/prefect.yaml: every 5 minutes), so no worker waits on a study that runs for
days. For each job record (:mod:`tasks.records`) whose study is not COMPLETED, it reads the study
(``GET /api/v1/studies/{id}/``); when the status differs from the recorded one it emits
``prolific.study.status-changed`` (:mod:`tasks.events`) and stores the new status in the record, so
the next run (or the webhook receiver) does not announce the same change again. The
``collect-report`` deployment is triggered by that event.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from taskbuilder.client import normalise_base_url
from taskbuilder.errors import ProlificError

from tasks.connection import ProlificConnection
from tasks.events import emit_study_status_changed
from tasks.logs import run_logger
from tasks.records import list_job_records, update_job_record
from tasks.studies import read_study_status

FINAL_STUDY_STATUS = "COMPLETED"


@flow(name="monitor-studies", log_prints=False)
def monitor_studies(base_url: str | None = None) -> list[dict[str, Any]]:
    """Check the study of every recorded, unfinished job once; return the changes announced.

    Parameters:
        base_url: only jobs on this API root (e.g. https://api.prolific.com); empty = every job recorded
            on this Prefect server. The token comes from each job's Secret block or PROLIFIC_API_TOKEN.

    Returns a list of ``{"job_key", "study_id", "previous_status", "status", "event_id"}``. A study
    that cannot be read (API error after retries) is logged and skipped; the next run tries again.
    """
    logger = run_logger()
    wanted = normalise_base_url(base_url) if base_url else None
    changes: list[dict[str, Any]] = []
    for record in list_job_records():
        study_id = record.get("study_id")
        previous = (record.get("statuses") or {}).get("study")
        if not study_id or previous == FINAL_STUDY_STATUS:
            continue
        if wanted and normalise_base_url(record["base_url"]) != wanted:
            continue
        spec = record.get("spec") or {}
        connection = ProlificConnection(base_url=record["base_url"], token_secret_block=spec.get("token_secret_block"))
        try:
            status = read_study_status(connection, study_id)
        except ProlificError as error:
            logger.warning("Could not read study %s of job %r: %s; trying again next run", study_id, record["job_key"], error)
            continue
        if status == previous:
            continue
        event_id = emit_study_status_changed(
            study_id=study_id,
            batch_id=record.get("batch_id"),
            job_key=record["job_key"],
            status=status,
            previous_status=previous,
            base_url=record["base_url"],
        )
        update_job_record(record["job_key"], record["base_url"], statuses={"study": status})
        logger.info("Study %s of job %r: %s → %s", study_id, record["job_key"], previous, status)
        changes.append(
            {"job_key": record["job_key"], "study_id": study_id, "previous_status": previous, "status": status, "event_id": event_id}
        )
    logger.info("%d status change(s) announced", len(changes))
    return changes
