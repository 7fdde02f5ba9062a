"""The collect path of a job in rounds (issue 19) launched with ``wait_for_completion: false``: when the study of
the job's current round finishes, collect-report (triggered by the study monitor or a webhook, or run by the
monitor itself) collects that round and launches the next one, or, after the last, writes the job's outputs.

It runs the job's own steps (:func:`flows.annotation_batch.run_job`, :func:`flows.rounds.run_rounds` with
``advance``): the input is staged and checked again (its key must be the job's: a changed CSV stops here), every
round is found again under its round key, a finished one is collected, the next is decided (the pilot's
decision, stored once; the adaptive rows below the target), priced against what is left of ``max_budget``,
made and published once, and the run ends at the first round still running. So a second collect of the same
round sends nothing: it finds everything and publishes nothing (``publish_study`` reads the status first), and
it runs under the job's lock (a run holding it on this host makes it return at once: :class:`JobBusy`).
The job record's ``current_round`` is the study the monitor watches; the job is collected (``collected_at``)
only with its outputs, after the last round.
"""

from __future__ import annotations

from typing import Any

from taskbuilder.jobspec import AnnotationJob
from taskbuilder.polling import PollSettings

from flows.annotation_batch import JobBusy, run_job
from tasks.connection import ProlificConnection
from tasks.logs import run_logger
from tasks.records import update_job_record


def in_rounds(job: AnnotationJob) -> bool:
    """Whether the job runs in rounds (a pilot, or adaptive overlap)."""
    return job.pilot is not None or job.adaptive is not None


def watched_round(record: dict[str, Any]) -> tuple[int, str]:
    """``(number, study_id)`` of the job's current round (the record's ``current_round``; round 1 else)."""
    current = record.get("current_round") or {}
    return int(current.get("number") or 1), str(current.get("study_id") or record["study_id"])


def collect_rounds(job: AnnotationJob, connection: ProlificConnection, record: dict[str, Any], status: str) -> dict[str, Any]:
    """Go on with the job of ``record`` from its finished rounds (its current round's study is ``status``,
    finished); return ``{"job_key", "study_id", "status", "outputs", "written" (the job's outputs written now),
    "rounds", "waiting_for_round" (the round now running, None when the job is done)}``. Raises as
    :func:`flows.rounds.run_rounds` does, and :class:`flows.annotation_batch.JobChanged`."""
    job_key = record["job_key"]
    stored = record.get("polling")
    polling = PollSettings(**stored) if stored else PollSettings(study_timeout_seconds=job.study_deadline_minutes * 60)
    number, study_id = watched_round(record)
    entry = {"job_key": job_key, "study_id": study_id, "status": status, "report_sha256": None}
    try:
        summary = run_job(job, connection, polling, False, record["output_location"], advance_job_key=job_key)
    except JobBusy as busy:
        run_logger().info("Round %d of job %r finished, but %s", number, job_key, busy)
        return {**entry, "outputs": record.get("outputs") or {}, "written": False, "rounds": record.get("rounds"),
                "waiting_for_round": number}
    written = "labels.csv" in summary["outputs"]
    update_job_record(job_key, record["base_url"], collect_error=None, **({"outputs": summary["outputs"]} if written else {}))
    waiting = summary.get("waiting_for_round")
    run_logger().info("Job %r: %s", job_key, f"round {waiting} is running" if waiting else "every round collected, outputs written")
    return {**entry, "outputs": summary["outputs"], "written": written, "rounds": summary.get("rounds"), "waiting_for_round": waiting}
