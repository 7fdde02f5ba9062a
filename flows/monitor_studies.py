"""The study monitor: reconcile every recorded job that is not collected yet with its study on Prolific.

Scheduled (deployments/prefect.yaml: every 5 minutes), so no worker waits on a study that runs for
days; with Prolific's webhooks on (deployments/webhooks.py) it is the fallback. Its cost follows the
active jobs, not every job ever run: the records with a study and no ``collected_at`` come from the index
of active jobs (:mod:`tasks.active_jobs`, read in bulk: :func:`tasks.records.active_job_records`); their
studies' statuses from the ACTIVE study list, one request per API for three jobs or more
(:mod:`tasks.study_statuses`), and a ``GET /api/v1/studies/{id}/`` for each study not in it. For each such
job it applies :func:`tasks.records.collect_decision`:

- the status differs from the last one *announced* → emit ``prolific.study.status-changed``
  (:mod:`tasks.events`; the ``collect-report`` deployment's trigger acts on it) and store it as
  announced and seen;
- the study is published and finished, the job is not collected, and nothing was announced just now
  (the earlier announcement's collect failed, or never ran) → run ``collect-report`` here, as a
  subflow. A failure is logged and stored as ``collect_error``; the next monitor run tries again.

A collected job is skipped: it is never announced nor collected again.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from taskbuilder.client import normalise_base_url
from taskbuilder.errors import ProlificError

from flows.collect_report import collect_report
from tasks.connection import ProlificConnection
from tasks.events import emit_study_status_changed
from tasks.live_results import monitor_partial_results
from tasks.logs import run_logger
from tasks.records import active_job_records, collect_decision, previous_status, update_job_record
from tasks.study_statuses import read_active_studies
from tasks.studies import read_study_status


@flow(name="monitor-studies", log_prints=False)
def monitor_studies(base_url: str | None = None) -> list[dict[str, Any]]:
    """Reconcile every recorded job that is not collected yet once; return what was done.

    Parameters:
        base_url: only jobs on this API root (e.g. https://api.prolific.com); empty = every job recorded
            on this Prefect server. The token comes from each job's Secret block or PROLIFIC_API_TOKEN.

    Returns a list of ``{"job_key", "study_id", "previous_status", "status", "event_id"}`` for each
    status announced, and ``{"job_key", "study_id", "status", "collected": bool, "error"?}`` for each
    collect run here. A study that cannot be read (API error after retries) is logged and skipped; the
    next run tries again.
    """
    logger = run_logger()
    wanted = normalise_base_url(base_url) if base_url else None
    done: list[dict[str, Any]] = []
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for record in active_job_records():
        if wanted and normalise_base_url(record["base_url"]) != wanted:
            continue
        token_block = (record.get("spec") or {}).get("token_secret_block")
        groups.setdefault((record["base_url"], token_block), []).append(record)
    for (api_url, token_block), records in groups.items():
        connection = ProlificConnection(base_url=api_url, token_secret_block=token_block)
        listed = _listed_statuses(connection, [record["study_id"] for record in records])
        for record in records:
            status = listed.get(record["study_id"]) or _read_status(connection, record)
            if status is None:
                continue
            monitor_partial_results(record, status)  # live: partial results of a job nobody waits for
            announce, collect = collect_decision(record, status)
            if announce:
                done.append(_announce(record, status))
            elif status != (record.get("statuses") or {}).get("study"):
                update_job_record(record["job_key"], record["base_url"], statuses={"study": status})
            if collect and not announce:
                done.append(_collect_here(record, status))
    logger.info("%d status change(s) announced, %d collect(s) run here", sum("event_id" in d for d in done), sum("collected" in d for d in done))
    return done


def _listed_statuses(connection: ProlificConnection, study_ids: list[str]) -> dict[str, str]:
    """The statuses the ACTIVE study list gives (:func:`tasks.study_statuses.read_active_studies`); ``{}`` when
    it cannot be read (each study is then read on its own)."""
    try:
        return read_active_studies(connection, study_ids)
    except ProlificError as error:
        run_logger().warning("Could not list the active studies on %s: %s; reading each study", connection.base_url, error)
        return {}


def _read_status(connection: ProlificConnection, record: dict[str, Any]) -> str | None:
    """The study's status (``GET /api/v1/studies/{id}/``), ``None`` when it cannot be read (logged)."""
    try:
        return read_study_status(connection, record["study_id"])
    except ProlificError as error:
        run_logger().warning("Could not read study %s of job %r: %s; trying again next run", record["study_id"], record["job_key"], error)
        return None


def _announce(record: dict[str, Any], status: str) -> dict[str, Any]:
    """Emit the status change of ``record``'s study, then store it as announced and seen."""
    previous = previous_status(record, status)
    event_id = emit_study_status_changed(
        study_id=record["study_id"], batch_id=record.get("batch_id"), job_key=record["job_key"], status=status,
        previous_status=previous, base_url=record["base_url"],
    )
    update_job_record(record["job_key"], record["base_url"], statuses={"study": status}, announced_status=status)
    run_logger().info("Study %s of job %r: %s → %s announced", record["study_id"], record["job_key"], previous, status)
    return {"job_key": record["job_key"], "study_id": record["study_id"], "previous_status": previous, "status": status, "event_id": event_id}


def _collect_here(record: dict[str, Any], status: str) -> dict[str, Any]:
    """Run collect-report for a finished, announced, not collected job; a failure is kept in the record."""
    entry: dict[str, Any] = {"job_key": record["job_key"], "study_id": record["study_id"], "status": status}
    run_logger().info("Job %r: study %s is %s and not collected yet; collecting it now", record["job_key"], record["study_id"], status)
    try:
        collect_report(record["job_key"], record["base_url"])
    except Exception as error:  # noqa: BLE001 - any failure: recorded, retried on the next run
        run_logger().warning("Collecting job %r failed: %s; the next monitor run tries again", record["job_key"], error)
        update_job_record(record["job_key"], record["base_url"], collect_error=f"{type(error).__name__}: {error}")
        return {**entry, "collected": False, "error": f"{type(error).__name__}: {error}"}
    return {**entry, "collected": True}
