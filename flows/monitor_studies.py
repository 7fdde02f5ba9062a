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

A collected job is skipped: it is never announced nor collected again. A job in rounds is watched by its
current round's study (the record's ``current_round``: :func:`watched_view`), and a job whose collect may ask a
reviewer is never collected here (a pause would hold the monitor): :func:`may_ask_a_reviewer`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import deployment

from taskbuilder.client import normalise_base_url
from taskbuilder.errors import ProlificError

from flows.approval import reviewer_waits_elsewhere
from flows.collect_report import collect_report
from tasks.connection import ProlificConnection
from tasks.events import emit_study_status_changed
from tasks.live_results import monitor_partial_results
from tasks.logs import run_logger
from tasks.records import active_job_records, collect_decision, now_iso, previous_status, update_job_record
from tasks.study_statuses import read_active_studies
from tasks.studies import read_study_status


COLLECT_DEPLOYMENT = "collect-report/collect-report"
"""The collect-report deployment (deployments/prefect.yaml) a job that may ask a reviewer is handed to."""


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
        groups.setdefault((record["base_url"], token_block), []).append(watched_view(record))
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
                store_seen(record, status)
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
    store_seen(record, status, announced=True)
    run_logger().info("Study %s of job %r: %s → %s announced", record["study_id"], record["job_key"],
                      previous or "(none announced before)", status)
    return {"job_key": record["job_key"], "study_id": record["study_id"], "previous_status": previous, "status": status, "event_id": event_id}


def _collect_here(record: dict[str, Any], status: str) -> dict[str, Any]:
    """Run collect-report for a finished, announced, not collected job; a failure is kept in the record."""
    entry: dict[str, Any] = {"job_key": record["job_key"], "study_id": record["study_id"], "status": status}
    if may_ask_a_reviewer(record):
        return {**entry, **_leave_to_its_own_run(record)}
    run_logger().info("Job %r: study %s is %s and not collected yet; collecting it now", record["job_key"], record["study_id"], status)
    try:
        collect_report(record["job_key"], record["base_url"])
    except Exception as error:  # noqa: BLE001 - any failure: recorded, retried on the next run
        run_logger().warning("Collecting job %r failed: %s; the next monitor run tries again", record["job_key"], error)
        update_job_record(record["job_key"], record["base_url"], collect_error=f"{type(error).__name__}: {error}")
        return {**entry, "collected": False, "error": f"{type(error).__name__}: {error}"}
    return {**entry, "collected": True}


def watched_view(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the monitor watches it: a job in rounds past round 1 by its current round's study and batch
    (``current_round``), with the status seen and announced of that study (``round_watch``); other records as
    they are."""
    current = record.get("current_round") or {}
    if not current.get("study_id") or current["study_id"] == record.get("study_id"):
        return record
    watch = record.get("round_watch") or {}
    watch = watch if watch.get("study_id") == current["study_id"] else {}
    return {**record, "study_id": current["study_id"], "batch_id": current.get("batch_id"), "published": True,
            "statuses": {**(record.get("statuses") or {}), "study": watch.get("status")},
            "announced_status": watch.get("announced_status"), "watching_round": current.get("number")}


def store_seen(record: dict[str, Any], status: str, announced: bool = False) -> None:
    """Store the status seen (and announced) of the watched study: in the job record's own fields, or for a
    later round in ``round_watch`` (``{study_id, status, announced_status}``), so a round's status never
    overwrites round 1's."""
    if record.get("watching_round"):
        watch = {"study_id": record["study_id"], "status": status,
                 "announced_status": status if announced else record.get("announced_status")}
        update_job_record(record["job_key"], record["base_url"], round_watch=watch)
    else:
        update_job_record(record["job_key"], record["base_url"], statuses={"study": status},
                          **({"announced_status": status} if announced else {}))


def may_ask_a_reviewer(record: dict[str, Any]) -> bool:
    """Whether collecting this job may ask a reviewer (a job in rounds whose pilot ends with ``then: approval``
    and is not decided yet, or with ``require_approval`` before each round's PUBLISH)."""
    spec = record.get("spec") or {}
    if not (spec.get("pilot") or spec.get("adaptive")):
        return False
    pilot_waits = (spec.get("pilot") or {}).get("then") == "approval" and not record.get("pilot_decision")
    return pilot_waits or bool(spec.get("require_approval"))


def _leave_to_its_own_run(record: dict[str, Any]) -> dict[str, Any]:
    """A job whose collect may ask a reviewer is never collected inside the monitor (a pause would hold the
    monitor for days): it is left to the flow run that waits for the reviewer, or handed to a collect-report
    run of its own (a deployment run suspends while it waits: no worker is held)."""
    job_key = record["job_key"]
    waiting = reviewer_waits_elsewhere(record)
    if waiting:
        run_logger().info("Job %r waits for a reviewer in flow run %s; the monitor goes on", job_key, waiting)
        return {"collected": False, "waiting_for_reviewer": waiting}
    if deployment.id:
        from prefect.deployments import run_deployment

        started = run_deployment(COLLECT_DEPLOYMENT, parameters={"job_key": job_key, "base_url": record["base_url"]},
                                 timeout=0, as_subflow=False)
        update_job_record(job_key, record["base_url"], awaiting_review={
            "flow_run_id": str(started.id), "what": "collect-report, which asks the reviewer", "since": now_iso()})
        run_logger().info("Job %r may ask a reviewer: collect-report runs it in flow run %s", job_key, started.id)
        return {"collected": False, "waiting_for_reviewer": str(started.id)}
    run_logger().warning("Job %r needs a reviewer's decision, which the monitor never waits for: run collect-report for "
                         "it (its run asks the reviewer and waits)", job_key)
    return {"collected": False, "error": "needs a reviewer: run collect-report for it"}
