"""Collect a finished job: report → tidy tables, labels, agreement → the job's output location.

Triggered by ``prolific.study.status-changed`` when the study reaches AWAITING REVIEW or COMPLETED
(deployments/prefect.yaml), or run by hand with a job key. The job is found through its record
(:mod:`tasks.records`): batch, study, spec and output location as the main flow stored them.

Safe to trigger twice: runs for one job serialise on a file lock (one host); a job whose record has
``collected_at`` (set when the outputs are written) is not collected again, and a run whose
downloaded report has the same SHA-256 as the one already written (``report_sha256`` in the record)
does not write or approve anything again.

A job in rounds (a pilot, adaptive overlap) goes on here (:mod:`flows.rounds_collect`): its current round is
collected and the next one launched, the outputs written after the last; a job waiting for a reviewer in
another flow run is left to that run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock
from prefect import flow

from taskbuilder.aggregate import select_submissions_to_approve
from taskbuilder.client import normalise_base_url
from taskbuilder.jobkey import sha256_file, storage_slug
from taskbuilder.jobspec import AnnotationJob

from flows.annotation_batch import LOCK_DIR
from flows.approval import reviewer_waits_elsewhere
from flows.rounds_collect import collect_rounds, in_rounds, watched_round
from tasks.connection import ProlificConnection
from tasks.live_results import raise_alert_once
from tasks.logs import run_logger
from tasks.quality import update_blocklist_group
from tasks.payments import pay_job_bonuses, last_payments, reject_flagged
from tasks.records import ROUND_KEY, is_round_record, list_job_records, load_job_record, now_iso, update_job_record
from tasks.reports import fetch_report
from tasks.results import aggregate_results, keep_raw_report, write_results
from tasks.studies import STUDY_DONE, approve_submissions, list_submissions, read_study_status
from tasks.workdir import work_folder


class JobNotFound(LookupError):
    """No job record (or more than one) matches the job key given to collect-report."""


class StudyNotFinished(RuntimeError):
    """The job's study has not reached AWAITING REVIEW or COMPLETED yet: there is no final report."""


@flow(name="collect-report", log_prints=False)
def collect_report(job_key: str, base_url: str | None = None) -> dict[str, Any]:
    """Fetch the report of job ``job_key`` and write its outputs; return name → location and status.

    Parameters:
        job_key: the job key (the job's name, or the key derived from spec and CSV) as in the job record
            and in the batch name / study internal_name on Prolific.
        base_url: API root the job ran on; empty = the only recorded job with this key.

    Returns ``{"job_key", "study_id", "status", "outputs" (name → location), "written" (False when the
    same report had been written before), "report_sha256"}``. Raises :class:`JobNotFound`,
    :class:`StudyNotFinished`, :class:`tasks.results.ReportNotParsed` (the raw report kept, the
    message says where), or the typed API errors after retries.
    """
    record = find_job_record(job_key, base_url)
    if is_round_record(record):  # a later round's study (a webhook finds its round's record): the job goes on
        job_key = record.get("round_of") or ROUND_KEY.sub("", record["job_key"])
        record = find_job_record(job_key, record["base_url"])
    base_url = record["base_url"]
    job = AnnotationJob.model_validate(record["spec"])
    waiting = reviewer_waits_elsewhere(record)
    if waiting:
        run_logger().info("Job %r waits for a reviewer in flow run %s; nothing to do here", job_key, waiting)
        return {"job_key": job_key, "study_id": record["study_id"], "status": (record.get("statuses") or {}).get("study"),
                "report_sha256": None, "outputs": record.get("outputs") or {}, "written": False, "waiting_for_reviewer": waiting}
    connection = ProlificConnection(base_url=base_url, token_secret_block=job.token_secret_block)
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(LOCK_DIR / f"collect-{storage_slug(job_key, base_url)}.lock"):
        record = load_job_record(job_key, base_url) or record  # another run may have finished meanwhile
        if record.get("collected_at"):
            run_logger().info("Job %r was collected at %s (outputs written before to %s); nothing to do", job_key, record["collected_at"], record["output_location"])
            return {"job_key": job_key, "study_id": record["study_id"], "status": (record.get("statuses") or {}).get("study"),
                    "report_sha256": record.get("report_sha256"), "outputs": record.get("outputs") or {}, "written": False}
        number, study_id = watched_round(record) if in_rounds(job) else (1, record["study_id"])
        status = read_study_status(connection, study_id)
        if status not in STUDY_DONE and number > 1:
            run_logger().info("Round %d (study %s) of job %r is %s; nothing to collect yet", number, study_id, job_key, status)
            return {"job_key": job_key, "study_id": study_id, "status": status, "report_sha256": None,
                    "outputs": record.get("outputs") or {}, "written": False, "waiting_for_round": number}
        if status not in STUDY_DONE:
            raise StudyNotFinished(
                f"study {study_id} of job {job_key!r} is {status}; collect-report runs once it is AWAITING "
                "REVIEW or COMPLETED (the monitor-studies deployment triggers it)"
            )
        if in_rounds(job):
            return collect_rounds(job, connection, record, status)
        with work_folder("taskbuilder-collect-") as work_dir:
            return _collect(job, connection, record, status, work_dir)


def _collect(job: AnnotationJob, connection: ProlificConnection, record: dict[str, Any], status: str, work_dir: Path) -> dict[str, Any]:
    """Download the report, keep it raw at the output location, then parse, approve and write the rest."""
    logger = run_logger()
    job_key, destination = record["job_key"], record["output_location"]
    report_path = fetch_report(connection, record["batch_id"], work_dir / "report.csv")
    digest = sha256_file(report_path)
    summary = {"job_key": job_key, "study_id": record["study_id"], "status": status, "report_sha256": digest}
    if record.get("report_sha256") == digest and record.get("outputs"):
        logger.info("Job %r: this report (sha256 %s) was written before to %s; nothing to do", job_key, digest[:12], destination)
        return {**summary, "outputs": record["outputs"], "written": False}

    outputs = keep_raw_report(report_path, destination)
    responses, result = aggregate_results(job, report_path, outputs["report.csv"], record.get("dataset_columns"))
    raise_alert_once(job, connection, job_key, record["study_id"], result.summary, pause=False)  # live
    update_blocklist_group(connection, job_key, record.get("workspace_id"), job.quality, result.participants)  # live
    submissions = list_submissions(connection, record["study_id"])
    submissions = reject_flagged(connection, job, job_key, record["study_id"], responses, result, submissions)  # pay (issue 21)
    notes = []
    if job.approve_submissions:
        approved = approve_submissions(connection, record["study_id"], select_submissions_to_approve(submissions, result.participants))
        notes.append(f"approved {len(approved)} submissions")
        submissions = list_submissions(connection, record["study_id"])
        status = read_study_status(connection, record["study_id"])
    summary["payments"] = pay_job_bonuses(connection, job, job_key, record["study_id"], record.get("workspace_id"), result, submissions)  # pay (issue 21)
    result.summary.setdefault("stopped", None)  # one round: it ran to the end (summary.json says so in every run)
    outputs.update(write_results(responses, result, submissions, destination, job, record.get("cost")))
    outputs.update(_write_run_json(record, status, outputs, notes, work_dir))
    update_job_record(
        job_key, record["base_url"], statuses={"study": status}, outputs=outputs, report_sha256=digest, notes=notes,
        collected_at=now_iso(), collect_error=None,
    )
    logger.info("Job %r: wrote %s to %s", job_key, ", ".join(sorted(outputs)), destination)
    return {**summary, "status": status, "outputs": outputs, "written": True}


def find_job_record(job_key: str, base_url: str | None = None) -> dict[str, Any]:
    """The job record of ``job_key`` (on ``base_url`` when given). Raises :class:`JobNotFound` when
    there is none, or several on different APIs and ``base_url`` is empty."""
    if base_url:
        record = load_job_record(job_key, normalise_base_url(base_url)) or load_job_record(job_key, base_url)
        if record is None:
            raise JobNotFound(f"no job record for job key {job_key!r} on {base_url}: was the job launched on this Prefect server?")
        return record
    matches = [record for record in list_job_records() if record.get("job_key") == job_key]
    if not matches:
        raise JobNotFound(f"no job record for job key {job_key!r}: was the job launched on this Prefect server?")
    if len(matches) > 1:
        raise JobNotFound(
            f"job key {job_key!r} is recorded on {len(matches)} APIs ({', '.join(m['base_url'] for m in matches)}): give base_url"
        )
    return matches[0]


def _write_run_json(record: dict[str, Any], status: str, outputs: dict[str, str], notes: list[str], work_dir: Path) -> dict[str, str]:
    """Write ``run.json`` (the job's ids, statuses and outputs) beside the other outputs."""
    from taskbuilder.outputs import write_outputs

    summary = {
        "job_key": record["job_key"],
        "dataset_id": record.get("dataset_id"),
        "batch_id": record.get("batch_id"),
        "study_id": record.get("study_id"),
        "instructions_mode": record.get("instructions_mode"),
        "statuses": {**(record.get("statuses") or {}), "study": status},
        "published": True,
        "outputs": outputs,
        "notes": [*record.get("notes", []), *notes],
        "payments": last_payments(record["job_key"], record["base_url"]),  # the shape of the flow run's run.json (issue 21)
        "stopped": None,  # one round, collected: it ran to the end (a job in rounds: flows/rounds_collect.py)
        "collected_by": "collect-report",
    }
    path = work_dir / "run.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return write_outputs(record["output_location"], files={"run.json": path})
