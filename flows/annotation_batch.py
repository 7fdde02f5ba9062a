"""The main job: one CSV and one job spec through Prolific's AI Task Builder, end to end.

Order (the seed's ten steps, plus checks): validate the CSV and the spec (nothing remote is created if
that fails) → create dataset → upload the CSV → wait READY → create batch → instructions (legacy, or
``batch_items``) → set up → wait READY → create study → cost estimate vs budget → (approval) →
publish → wait for the study → report → outputs. Every create is "find by job key, else create" and
cached under the job key, so a retry or a re-run resumes instead of creating twice; publish happens
only while the study is UNPUBLISHED. Two runs of one job on this host serialise on a file lock.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from taskbuilder import payloads
from taskbuilder.aggregate import select_submissions_to_approve
from taskbuilder.jobkey import sha256_file, storage_slug, tag_name
from taskbuilder.outputs import write_outputs
from taskbuilder.polling import PollSettings
from taskbuilder.jobspec import AnnotationJob

from tasks.batches import add_instructions, create_batch, set_up_batch, wait_for_batch
from tasks.caching import create_once
from tasks.connection import ProlificConnection, open_client
from tasks.datasets import create_dataset, upload_dataset_file, wait_for_dataset
from tasks.inputs import InputInvalid, prepare_upload_file, stage_csv, validate_input
from tasks.preflight import preflight
from tasks.logs import run_logger
from tasks.reconcile import sweep_duplicates
from tasks.records import load_job_record, now_iso, update_job_record
from tasks.reports import fetch_report
from tasks.results import aggregate_results, keep_raw_report, write_results
from tasks.studies import (
    approve_submissions,
    create_study,
    estimate_study_cost,
    list_submissions,
    publish_study,
    wait_for_study,
)
from tasks.workdir import work_folder

LOCK_DIR = Path(os.environ.get("TASKBUILDER_LOCK_DIR", Path(tempfile.gettempdir()) / "taskbuilder-locks"))
"""Folder of the per-job lock files (one host; several hosts need a shared lock, see NOTES.md)."""


class BudgetExceeded(RuntimeError):
    """The study's estimated cost is above ``max_budget``: it stays unpublished."""


class PublishRejected(RuntimeError):
    """A reviewer rejected publishing the study: it stays unpublished."""


@flow(name="annotation-batch", log_prints=False)
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
        polling: poll intervals and deadlines (seconds); default: the study's deadline from the spec's
            ``study_deadline_minutes``.
        wait_for_completion: overrides ``job.wait_for_completion`` (deployments launch with false).
        output_dir: overrides ``job.output_dir`` (a folder or ``s3://bucket/prefix``).

    Returns a dict: ``job_key``, ``dataset_id``, ``batch_id``, ``study_id``, ``statuses``,
    ``instructions_mode``, ``cost``, ``published``, ``outputs`` (name → location), ``notes``.
    Raises ``PreflightFailed`` (a non-https API URL, an output location that cannot be written or that would
    overwrite the input; nothing created), ``InputInvalid`` (bad CSV/spec, nothing created), ``BudgetExceeded``, the typed API errors
    of :mod:`taskbuilder.errors` after retries, ``WaitTimedOut``.
    """
    logger = run_logger()
    connection = connection or ProlificConnection(token_secret_block=job.token_secret_block)
    polling = polling or PollSettings(study_timeout_seconds=job.study_deadline_minutes * 60)
    wait = job.wait_for_completion if wait_for_completion is None else wait_for_completion
    destination = output_dir or job.output_dir
    preflight(connection.base_url, destination, [job.dataset.csv])
    with work_folder("taskbuilder-", discard_on=(InputInvalid, BudgetExceeded, PublishRejected)) as work_dir:
        csv_path = stage_csv(job.dataset.csv, work_dir / "input")
        report = validate_input(csv_path, job)
        upload_path = prepare_upload_file(csv_path, report, job, work_dir / "upload")
        csv_sha256 = sha256_file(upload_path)
        job_key = job.job_key(csv_sha256)
        logger.info("Job key %r", job_key)

        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        with FileLock(LOCK_DIR / f"{storage_slug(job_key, connection.base_url)}.lock"):
            _refuse_changed_job(job_key, connection, job.work_fingerprint(csv_sha256))
            return _run_locked(job, job_key, connection, polling, wait, destination, upload_path, report, work_dir, csv_sha256)


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
) -> dict[str, Any]:
    logger = run_logger()
    workspace_id = _workspace_id(job, connection)
    update_job_record(
        job_key,
        connection.base_url,
        workspace_id=workspace_id,
        spec=job.model_dump(mode="json"),
        output_location=destination,
        fingerprint=job.work_fingerprint(csv_sha256),
        dataset_columns=list(report.columns),
    )

    batch_name = tag_name(job.batch.name, job_key)
    dataset_id = create_once(create_dataset, "dataset", connection, job_key, job.dataset.name, workspace_id, batch_name)
    upload_dataset_file(connection, dataset_id, upload_path, _upload_filename(job))
    wait_for_dataset(connection, dataset_id, polling)

    batch_items = payloads.batch_items_payload(job.batch)
    batch_id = create_once(
        create_batch,
        "batch",
        connection,
        job_key,
        workspace_id,
        batch_name,
        dataset_id,
        job.batch.task_details.model_dump(mode="json") if job.batch.task_details else None,
        batch_items,
    )
    if batch_items is None:
        visible = [column for column in report.columns if not column.startswith("META_")]
        mode = add_instructions(connection, batch_id, payloads.instructions_payload(job.batch),
                                payloads.instructions_as_batch_items(job.batch, visible))
    else:
        mode = "batch_items"
    update_job_record(job_key, connection.base_url, instructions_mode=mode)
    set_up_batch(connection, batch_id, dataset_id, job.batch.tasks_per_group)
    batch = wait_for_batch(connection, batch_id, polling)
    dataset_id = _dataset_in_use(job_key, connection, batch, dataset_id)

    internal_name = tag_name(job.study.internal_name or job.study.name, job_key)
    names = {"batch_name": batch_name, "internal_name": internal_name, "workspace_id": workspace_id}
    study_payload = payloads.study_payload(job.study, batch_id, internal_name)
    project_id = job.project_id or os.environ.get("PROLIFIC_PROJECT_ID")
    if project_id:
        study_payload.setdefault("project", project_id)  # bills the workspace's funds (API doc §6.1)
    study_id = create_once(create_study, "study", connection, job_key, study_payload)
    cost = estimate_study_cost(connection, study_id, job.fee_rate, job.vat_rate, job.max_budget)
    create_markdown_artifact(
        key="cost-estimate", markdown=f"# Cost estimate of study {study_id}\n\n{cost.to_markdown()}", description="Before publishing"
    )
    logger.info("Estimated cost: %.2f %s (budget %.2f)", cost.total_cents / 100, cost.currency_code, job.max_budget / 100)

    summary: dict[str, Any] = {
        "job_key": job_key,
        "dataset_id": dataset_id,
        "batch_id": batch_id,
        "study_id": study_id,
        "instructions_mode": mode,
        "total_task_groups": batch.get("total_task_groups"),
        "cost": cost.model_dump(),
        "published": False,
        "outputs": {},
        "names": names,
    }
    if not cost.within_budget:
        _finish(summary, job_key, connection, destination, work_dir)
        raise BudgetExceeded(
            f"study {study_id} would cost {cost.total_cents} cents ({cost.currency_code}), over max_budget "
            f"{job.max_budget} cents: it stays unpublished. Raise max_budget in the job spec or lower reward, "
            "annotators_per_task or the number of datapoints."
        )
    if not job.publish:
        logger.info("publish is false: study %s stays UNPUBLISHED (set publish: true to spend money)", study_id)
        return _finish(summary, job_key, connection, destination, work_dir)
    if job.require_approval:
        from flows.approval import request_publish_approval

        approval = request_publish_approval(study_id, cost)
        if not approval.approve:
            summary["notes"] = [f"publishing rejected by {approval.reviewer}: {approval.comment}"]
            _finish(summary, job_key, connection, destination, work_dir)
            raise PublishRejected(f"publishing study {study_id} was rejected by {approval.reviewer}: it stays unpublished")

    publish_study(connection, job_key, study_id)
    summary["published"] = True
    if not wait:
        logger.info("Study %s published; not waiting (wait_for_completion is false)", study_id)
        return _finish(summary, job_key, connection, destination, work_dir)

    wait_for_study(connection, study_id, polling)
    report_path = fetch_report(connection, batch_id, work_dir / "report.csv")
    summary["outputs"] = keep_raw_report(report_path, destination)
    responses, result = aggregate_results(job, report_path, summary["outputs"]["report.csv"], list(report.columns))
    submissions = list_submissions(connection, study_id)
    if job.approve_submissions:
        approved = approve_submissions(connection, study_id, select_submissions_to_approve(submissions, result.participants))
        summary["approved_submissions"] = len(approved)
        submissions = list_submissions(connection, study_id)
    summary["outputs"].update(write_results(responses, result, submissions, destination))
    return _finish(summary, job_key, connection, destination, work_dir)


def _finish(summary: dict[str, Any], job_key: str, connection: ProlificConnection, destination: str, work_dir: Path) -> dict[str, Any]:
    """Sweep for late duplicates, read the final statuses, store the job record and write ``run.json``;
    return the summary."""
    names = summary.pop("names")
    summary.setdefault("notes", [])
    summary["notes"] += sweep_duplicates(
        connection, names["workspace_id"], names["batch_name"], names["internal_name"], summary["batch_id"], summary["study_id"]
    )
    with open_client(connection) as client:
        summary["statuses"] = {
            "dataset": str(client.get_dataset_status(summary["dataset_id"])),
            "batch": str(client.get_batch_status(summary["batch_id"])),
            "study": str(client.get_study(summary["study_id"]).status),
        }
    done = {"published": summary["published"], **({"collected_at": now_iso()} if "labels.csv" in summary["outputs"] else {})}
    record = update_job_record(job_key, connection.base_url, statuses=summary["statuses"], notes=summary.pop("notes", []), **done)
    summary["notes"] = record.get("notes", [])
    summary["outputs"]["run.json"] = _location(destination, "run.json")
    run_json = work_dir / "run.json"
    run_json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    write_outputs(destination, files={"run.json": run_json})
    run_logger().info("Wrote %s", summary["outputs"]["run.json"])
    return summary


def _dataset_in_use(job_key: str, connection: ProlificConnection, batch: dict[str, Any], dataset_id: str) -> str:
    """The dataset the job's batch uses (``batch`` as :func:`wait_for_batch` returns it): ``dataset_id``,
    unless the batch names another, which then becomes the job's (recorded, with a note)."""
    used = batch.get("dataset_id") or next((d.get("id") for d in batch.get("datasets") or [] if d.get("id")), None)
    if not used or used == dataset_id:
        return dataset_id
    note = f"dataset {dataset_id} is not the one the job's batch uses ({used}); the job's dataset is {used}"
    run_logger().warning("%s", note)
    update_job_record(job_key, connection.base_url, dataset_id=used, notes=[note])
    return used


def _location(destination: str, name: str) -> str:
    """Where ``name`` lands under ``destination`` (a folder or an ``s3://`` prefix)."""
    if destination.startswith("s3://"):
        return f"{destination.rstrip('/')}/{name}"
    return str(Path(destination).resolve() / name)


class JobChanged(InputInvalid):
    """A job key that already has resources was re-run with a different CSV or different work fields."""


def _refuse_changed_job(job_key: str, connection: ProlificConnection, fingerprint: str) -> None:
    """Raise :class:`JobChanged` when the job's record was made from other work (CSV bytes, dataset,
    batch or study fields): re-running would reuse resources that do not match the spec. Run-control
    fields (publish, budget, output, ...) may change between runs."""
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


def _upload_filename(job: AnnotationJob) -> str:
    """The file name given to ``upload-url/{filename}``: the CSV's name, always ending in ``.csv``."""
    name = Path(job.dataset.csv.rsplit("/", 1)[-1]).stem or "dataset"
    return f"{name}.csv"

