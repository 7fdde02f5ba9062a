"""The main job: one CSV and one job spec through Prolific's AI Task Builder, end to end.

Order (the seed's ten steps, plus checks): validate the CSV and the spec (nothing remote is created if
that fails) → the account's cost calculator prices the job (over budget: nothing is created) → create
dataset → upload the CSV → wait READY → create batch → instructions (legacy, or ``batch_items``) → set up
→ wait READY → create study → the study's own cost and the paying balance checked → (approval) →
publish → wait for the study → report → outputs. Every create is "find by job key, else create" and
cached under the job key, so a retry or a re-run resumes instead of creating twice; publish happens
only while the study is UNPUBLISHED. Two runs of one job on this host serialise on a file lock.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from prefect import flow

from taskbuilder.aggregate import select_submissions_to_approve
from taskbuilder.cost import BudgetExceeded, CostRefused
from taskbuilder.jobkey import sha256_file, storage_slug, tag_name
from taskbuilder.polling import PollSettings
from taskbuilder.jobspec import AnnotationJob

from flows.form_launch import launch_parameters
from flows.job_finish import base_summary, finish_job
from flows.job_round import DEFAULT_DATASET_VERSION, PublishRejected, RoundPlan, collect_round, draft_round, job_run, price_round, publish_gate, published_before
from tasks.connection import ProlificConnection, open_client
from tasks.inputs import InputInvalid, prepare_upload_file, stage_csv, validate_input
from tasks.job_tags import JobChanged, refuse_other_work
from tasks.live_results import raise_alert_once
from tasks.payments import pay_job_bonuses, reject_flagged
from tasks.quality import quality_filters, update_blocklist_group
from tasks.preflight import preflight
from tasks.logs import run_logger
from tasks.records import load_job_record, update_job_record
from tasks.results import aggregate_results, write_results
from tasks.studies import approve_submissions, list_submissions
from tasks.workdir import work_folder

LOCK_DIR = Path(os.environ.get("TASKBUILDER_LOCK_DIR", Path(tempfile.gettempdir()) / "taskbuilder-locks"))
"""Folder of the per-job lock files (one host; several hosts need a shared lock, see NOTES.md)."""


__all__ = ["DEFAULT_DATASET_VERSION", "BudgetExceeded", "CostRefused", "JobChanged", "PublishRejected", "annotation_batch"]


@flow(name="annotation-batch", log_prints=False, validate_parameters=False)  # checked by launch_parameters
def annotation_batch(
    job: AnnotationJob,
    connection: ProlificConnection | None = None,
    polling: PollSettings | None = None,
    wait_for_completion: bool | None = None,
    output_dir: str | None = None,
) -> dict[str, Any]:
    """Run one annotation job; return the run summary written to ``run.json``.

    Parameters:
        job: the job spec (dataset CSV, batch, study, publish/budget switches); no secrets in it.
        connection: API URL, timeouts and the Secret block name; default from the environment.
        polling: poll intervals and deadlines (seconds).
        wait_for_completion: wait for the study to finish and write the results in this run (true), or end
            after publishing and let collect-report write them (false: the deployment's default). Empty = the
            spec's ``wait_for_completion`` (true when not written).
        output_dir: folder for the results, or ``s3://bucket/prefix``; a relative folder resolves against the
            form's base (``TASKBUILDER_FORM_BASE_DIR``, else the worker's working directory). Empty = the
            spec's ``output_dir`` (``out/``).

    Returns a dict: ``job_key``, ``dataset_id``, ``batch_id``, ``study_id``, ``statuses``,
    ``instructions_mode``, ``cost``, ``published``, ``outputs`` (name → location), ``notes``.
    Raises ``PreflightFailed`` (a non-https API URL, an output location that cannot be written or that would
    overwrite the input; nothing created), ``InputInvalid`` (bad CSV/spec, nothing created), a :class:`~taskbuilder.cost.CostRefused`
    (``BudgetExceeded`` before anything is created or before PUBLISH, ``CostUnknown``, ``BalanceTooLow``:
    never published), ``PublishRejected``, the typed API errors
    of :mod:`taskbuilder.errors` after retries, ``WaitTimedOut``.
    """
    job, connection, polling, output_dir = launch_parameters(job, connection, polling, output_dir)
    connection = connection or ProlificConnection(token_secret_block=job.token_secret_block)
    polling = polling or PollSettings(study_timeout_seconds=job.study_deadline_minutes * 60)
    wait = job.wait_for_completion if wait_for_completion is None else wait_for_completion
    destination = output_dir or job.output_dir
    return run_job(job, connection, polling, wait, destination)


def run_job(job: AnnotationJob, connection: ProlificConnection, polling: PollSettings, wait: bool, destination: str,
            advance_job_key: str | None = None) -> dict[str, Any]:
    """The flow's body (see :func:`annotation_batch`): checks, input staged and validated, then the job under its
    lock. ``advance_job_key``: the collect path of a job in rounds (:mod:`flows.rounds_collect`): the job of that
    key goes on from its finished rounds without waiting; raises :class:`JobChanged` when the input now makes
    another key, and :class:`JobBusy` when another run on this host holds the job's lock."""
    logger = run_logger()
    preflight(connection.base_url, destination, [job.dataset.csv])
    with work_folder("taskbuilder-", discard_on=(InputInvalid, CostRefused, PublishRejected)) as work_dir:
        csv_path = stage_csv(job.dataset.csv, work_dir / "input")
        report = validate_input(csv_path, job)
        upload_path = prepare_upload_file(csv_path, report, job, work_dir / "upload")
        csv_sha256 = sha256_file(upload_path)
        job_key = job.job_key(csv_sha256)
        logger.info("Job key %r", job_key)
        if advance_job_key is not None and job_key != advance_job_key:
            raise JobChanged(f"the input of job {advance_job_key!r} now makes the job key {job_key!r}: its CSV changed "
                             "since the job was launched, so its next round cannot be made. Restore the original CSV.")

        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        lock = FileLock(LOCK_DIR / f"{storage_slug(job_key, connection.base_url)}.lock")
        try:
            lock.acquire(timeout=-1 if advance_job_key is None else 0)
        except Timeout:
            raise JobBusy(f"job {job_key!r} is being run by another run on this host; it goes on with the rounds") from None
        try:
            _refuse_changed_job(job_key, connection, job.work_fingerprint(csv_sha256))
            return _run_locked(job, job_key, connection, polling, wait, destination, upload_path, report, work_dir,
                               csv_sha256, advance_job_key is not None)
        finally:
            lock.release()


class JobBusy(RuntimeError):
    """Another run on this host holds the job's lock (the collect path does not wait for it)."""


def _run_locked(
    job: AnnotationJob,
    job_key: str,
    connection: ProlificConnection,
    polling: PollSettings,
    wait: bool,
    destination: str,
    upload_path: Path,
    report: Any,
    work_dir: Path,
    csv_sha256: str,
    advance: bool = False,
) -> dict[str, Any]:
    logger = run_logger()
    workspace_id = _workspace_id(job, connection)
    fingerprint = job.work_fingerprint(csv_sha256)
    # a host with no record of the job: the server's tags tell, before anything is priced, recorded or created
    refuse_other_work(connection, workspace_id, tag_name(job.batch.name, job_key, fingerprint))
    update_job_record(
        job_key,
        connection.base_url,
        workspace_id=workspace_id,
        spec=job.model_dump(mode="json"),
        output_location=destination,
        fingerprint=fingerprint,
        dataset_columns=list(report.columns),
        polling=polling.model_dump(mode="json"),
    )
    group_filters = quality_filters(connection, workspace_id, job.quality)  # live: groups found before anything is created
    project_id = job.project_id or os.environ.get("PROLIFIC_PROJECT_ID")
    run = job_run(job, job_key, fingerprint, connection, polling, destination, work_dir, workspace_id, report, project_id,
                  group_filters)
    if job.adaptive is not None or job.pilot is not None:
        from flows.rounds import run_rounds

        return run_rounds(run, upload_path, wait, published_before(job_key, connection), advance)

    plan = RoundPlan(job_key, 1, "main", upload_path, report.rows, job.study.annotators_per_task)
    price = price_round(run, plan, job.max_budget, published_before(job_key, connection))
    draft = draft_round(run, plan)
    summary = base_summary(job_key, run.version, draft, price)

    def refuse(note: str) -> None:
        summary["notes"] = [note]
        finish_job(summary, job_key, connection, destination, work_dir)

    if not publish_gate(run, plan, draft, price, summary, refuse):
        return finish_job(summary, job_key, connection, destination, work_dir)
    summary["published"] = True
    if not wait:
        logger.info("Study %s published; not waiting (wait_for_completion is false)", draft.study_id)
        return finish_job(summary, job_key, connection, destination, work_dir)

    report_path, kept_at = collect_round(run, plan, draft)
    summary["outputs"] = {plan.report_name: kept_at}
    responses, result = aggregate_results(job, report_path, kept_at, list(report.columns))
    raise_alert_once(job, connection, job_key, draft.study_id, result.summary, pause=False)  # live
    update_blocklist_group(connection, job_key, workspace_id, job.quality, result.participants)  # live
    submissions = list_submissions(connection, draft.study_id)
    submissions = reject_flagged(connection, job, job_key, draft.study_id, responses, result, submissions)  # before approval
    if job.approve_submissions:
        approved = approve_submissions(connection, draft.study_id, select_submissions_to_approve(submissions, result.participants))
        summary["approved_submissions"] = len(approved)
        submissions = list_submissions(connection, draft.study_id)
    summary["payments"] = pay_job_bonuses(connection, job, job_key, draft.study_id, workspace_id, result, submissions)
    result.summary.setdefault("stopped", None)  # one round: it ran to the end (summary.json says so in every run)
    summary["outputs"].update(write_results(responses, result, submissions, destination, job, summary["cost"]))
    return finish_job(summary, job_key, connection, destination, work_dir)


def _refuse_changed_job(job_key: str, connection: ProlificConnection, fingerprint: str) -> None:
    """Raise :class:`JobChanged` when the job's record was made from other work (CSV bytes, dataset,
    batch or study fields): re-running would reuse resources that do not match the spec. Run-control
    fields (publish, budget, output, ...) may change between runs. Without a record (another host or
    Prefect server) the work tags on the server tell (:func:`tasks.job_tags.refuse_other_work`)."""
    record = load_job_record(job_key, connection.base_url)
    if not record or not record.get("fingerprint") or record["fingerprint"] == fingerprint:
        return
    made = ", ".join(f"{kind} {record[f'{kind}_id']}" for kind in ("dataset", "batch", "study") if record.get(f"{kind}_id"))
    raise JobChanged(
        f"job {job_key!r} was first run with a different CSV or different dataset/batch/study fields and already "
        f"made {made or 'resources'} on {connection.base_url}. Re-running it would reuse them, not your changes. "
        "Give the job a new `name` (or leave `name` empty to key the job on its content), or restore the "
        "original CSV and spec. Only run-control fields (publish, max_budget, output_dir, ...) may change."
    )


def _workspace_id(job: AnnotationJob, connection: ProlificConnection) -> str:
    """The spec's workspace, else ``PROLIFIC_WORKSPACE_ID``, else the account's only workspace."""
    if job.workspace_id or os.environ.get("PROLIFIC_WORKSPACE_ID"):
        return job.workspace_id or os.environ["PROLIFIC_WORKSPACE_ID"]
    with open_client(connection) as client:
        workspaces = client.list_workspaces()
    if len(workspaces) != 1:
        raise ValueError(
            f"the account has {len(workspaces)} workspaces: set workspace_id in the job spec or PROLIFIC_WORKSPACE_ID "
            f"(ids: {', '.join(w.id for w in workspaces[:10])})"
        )
    return workspaces[0].id
