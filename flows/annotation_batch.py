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
from taskbuilder.cost import BudgetExceeded, CostRefused, CostUnknown, JobPrice, PublishCost, check_before_publish, task_group_count
from taskbuilder.dataset_schema import displayed_columns, field_types, schema_body
from taskbuilder.errors import ProlificError
from taskbuilder.models import StudyStatus
from taskbuilder.jsonl import column_values, is_jsonl
from taskbuilder.jobkey import sha256_file, storage_slug, tag_name
from taskbuilder.outputs import write_outputs
from taskbuilder.polling import PollSettings
from taskbuilder.jobspec import AnnotationJob

from flows.form_launch import launch_parameters
from tasks.batches import add_instructions, create_batch, set_up_batch, wait_for_batch
from tasks.caching import create_once
from tasks.connection import ProlificConnection, open_client
from tasks.costs import price_job, read_study_cost
from tasks.datasets import create_dataset, upload_dataset_file, upload_dataset_import, wait_for_dataset, wait_for_import
from tasks.inputs import InputInvalid, prepare_upload_file, stage_csv, validate_input
from tasks.live_results import LiveResults, raise_alert_once
from tasks.quality import quality_filters, update_blocklist_group, with_filters
from tasks.payments import pay_job_bonuses, reject_flagged
from tasks.preflight import preflight
from tasks.logs import run_logger
from tasks.reconcile import sweep_duplicates
from tasks.records import known_job_record, load_job_record, now_iso, update_job_record
from tasks.reports import fetch_report
from tasks.results import aggregate_results, keep_raw_report, write_results
from tasks.studies import (
    approve_submissions,
    create_study,
    list_submissions,
    publish_study,
    wait_for_study,
)
from tasks.workdir import work_folder

DEFAULT_DATASET_VERSION = 4
"""The dataset path of a spec that does not say (``dataset.version``)."""
LOCK_DIR = Path(os.environ.get("TASKBUILDER_LOCK_DIR", Path(tempfile.gettempdir()) / "taskbuilder-locks"))
"""Folder of the per-job lock files (one host; several hosts need a shared lock, see NOTES.md)."""


__all__ = ["BudgetExceeded", "CostRefused", "JobChanged", "PublishRejected", "annotation_batch"]


class PublishRejected(RuntimeError):
    """A reviewer rejected publishing the study: it stays unpublished."""


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
    logger = run_logger()
    job, connection, polling, output_dir = launch_parameters(job, connection, polling, output_dir)
    connection = connection or ProlificConnection(token_secret_block=job.token_secret_block)
    polling = polling or PollSettings(study_timeout_seconds=job.study_deadline_minutes * 60)
    wait = job.wait_for_completion if wait_for_completion is None else wait_for_completion
    destination = output_dir or job.output_dir
    preflight(connection.base_url, destination, [job.dataset.csv])
    with work_folder("taskbuilder-", discard_on=(InputInvalid, CostRefused, PublishRejected)) as work_dir:
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
    group_filters = quality_filters(connection, workspace_id, job.quality)  # live: groups found before anything is created

    version = dataset_version(job)
    types = _schema_types(job, report) if version == 4 else None
    price = _price(job, connection, report, upload_path, _published_before(job_key, connection))
    batch_name = tag_name(job.batch.name, job_key)
    dataset_id, import_id, batch_items = _dataset(job, job_key, connection, workspace_id, batch_name, upload_path, types, polling)
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
    mode = add_instructions(connection, batch_id, payloads.instructions_payload(job.batch)) if batch_items is None else "batch_items"
    update_job_record(job_key, connection.base_url, instructions_mode=mode)
    set_up_batch(connection, batch_id, dataset_id, job.batch.tasks_per_group)
    batch = wait_for_batch(connection, batch_id, polling)
    dataset_id = _dataset_in_use(job_key, connection, batch, dataset_id)

    internal_name = tag_name(job.study.internal_name or job.study.name, job_key)
    names = {"batch_name": batch_name, "internal_name": internal_name, "workspace_id": workspace_id}
    study_payload = with_filters(payloads.study_payload(job.study, batch_id, internal_name), group_filters)  # live
    project_id = job.project_id or os.environ.get("PROLIFIC_PROJECT_ID")
    if project_id:
        study_payload.setdefault("project", project_id)  # bills the workspace's funds (API doc §6.1)
    study_id = create_once(create_study, "study", connection, job_key, study_payload)

    summary: dict[str, Any] = {
        "job_key": job_key,
        "dataset_id": dataset_id,
        "dataset_version": version,
        "import_id": import_id,
        "batch_id": batch_id,
        "study_id": study_id,
        "instructions_mode": mode,
        "total_task_groups": batch.get("total_task_groups"),
        "cost": {"quote": price.model_dump()},
        "published": False,
        "outputs": {},
        "names": names,
    }

    def checked_cost() -> PublishCost | None:
        try:
            return _checked_cost(connection, study_id, price, workspace_id, project_id)
        except CostRefused as refusal:
            summary["notes"] = [str(refusal)]
            _finish(summary, job_key, connection, destination, work_dir)
            raise

    cost = checked_cost()
    summary["cost"]["checked"] = cost.model_dump() if cost else None
    update_job_record(job_key, connection.base_url, cost=summary["cost"])  # the results summary's estimate vs spent
    if not job.publish:
        logger.info("publish is false: study %s stays UNPUBLISHED (set publish: true to spend money)", study_id)
        return _finish(summary, job_key, connection, destination, work_dir)
    if job.require_approval and cost is not None:
        from flows.approval import record_decision, request_publish_approval

        approval = request_publish_approval(study_id, cost)
        summary["approval"] = record_decision(approval, study_id, cost, job_key, connection.base_url)
        if not approval.approve:
            summary["notes"] = [f"publishing rejected by {approval.reviewer}: {approval.comment}"]
            _finish(summary, job_key, connection, destination, work_dir)
            raise PublishRejected(f"publishing study {study_id} was rejected by {approval.reviewer}: it stays unpublished")
        checked_cost()  # the approval may have waited for days: the account's figures again, just before PUBLISH

    publish_study(connection, job_key, study_id)
    summary["published"] = True
    if not wait:
        logger.info("Study %s published; not waiting (wait_for_completion is false)", study_id)
        return _finish(summary, job_key, connection, destination, work_dir)

    wait_for_study(connection, study_id, polling, LiveResults(job, connection, job_key, batch_id, destination, list(report.columns), work_dir))  # live
    report_path = fetch_report(connection, batch_id, work_dir / "report.csv")
    summary["outputs"] = keep_raw_report(report_path, destination)
    responses, result = aggregate_results(job, report_path, summary["outputs"]["report.csv"], list(report.columns))
    raise_alert_once(job, connection, job_key, study_id, result.summary, pause=False)  # live
    update_blocklist_group(connection, job_key, workspace_id, job.quality, result.participants)  # live
    submissions = list_submissions(connection, study_id)
    submissions = reject_flagged(connection, job, job_key, study_id, responses, result, submissions)  # pay (issue 21): before approval
    if job.approve_submissions:
        approved = approve_submissions(connection, study_id, select_submissions_to_approve(submissions, result.participants))
        summary["approved_submissions"] = len(approved)
        submissions = list_submissions(connection, study_id)
    summary["payments"] = pay_job_bonuses(connection, job, job_key, study_id, workspace_id, result, submissions)  # pay (issue 21)
    summary["outputs"].update(write_results(responses, result, submissions, destination, job, summary["cost"]))
    return _finish(summary, job_key, connection, destination, work_dir)


def _dataset(
    job: AnnotationJob, job_key: str, connection: ProlificConnection, workspace_id: str, batch_name: str,
    upload_path: Path, types: dict[str, str] | None, polling: PollSettings,
) -> tuple[str, str | None, list[dict[str, Any]] | None]:
    """Create the dataset, upload the file and wait until it can be set up; return ``(dataset_id, import_id,
    batch_items)``. With schema ``types`` (V4): the import job is waited for, and a spec in the seed's layout
    gets its instructions as one ``batch_items`` page. Without (V3): READY, and ``batch_items`` only when the
    spec wrote them (else ``None``: the legacy endpoint gives the instructions)."""
    filename = _upload_filename(job)
    if types is None:
        dataset_id = create_once(create_dataset, "dataset", connection, job_key, job.dataset.name, workspace_id, None, batch_name)
        upload_dataset_file(connection, dataset_id, upload_path, filename)
        wait_for_dataset(connection, dataset_id, polling)
        return dataset_id, None, payloads.batch_items_payload(job.batch)
    dataset_id = create_once(
        create_dataset, "dataset", connection, job_key, job.dataset.name, workspace_id, schema_body(types), batch_name
    )
    import_id = upload_dataset_import(connection, job_key, dataset_id, upload_path, filename)
    wait_for_import(connection, dataset_id, import_id, polling)
    layout = payloads.batch_items_payload(job.batch)
    return dataset_id, import_id, layout or payloads.instructions_as_batch_items(job.batch, displayed_columns(types))


def dataset_version(job: AnnotationJob) -> int:
    """The dataset path the spec asks for: 4 (the default: a schema, import jobs, ``batch_items``) or 3 (the
    seed's path: ``dataset.version: 3``, V3 dataset + the legacy instructions endpoint)."""
    return job.dataset.version or DEFAULT_DATASET_VERSION


def _schema_types(job: AnnotationJob, report: Any) -> dict[str, str]:
    """The V4 schema's field types (:func:`taskbuilder.dataset_schema.field_types`); a bad
    ``dataset.column_types`` is :class:`InputInvalid` before anything is created."""
    try:
        return field_types(report.columns, id_column=job.dataset.id_column, column_types=job.dataset.column_types)
    except ValueError as error:
        raise InputInvalid(f"{error}. Fix the job spec.") from None


def _published_before(job_key: str, connection: ProlificConnection) -> bool:
    """True when the job record says the job's study is past UNPUBLISHED (a re-run that resumes it)."""
    record = known_job_record(job_key, connection.base_url) or {}
    status = (record.get("statuses") or {}).get("study")
    return bool(record.get("study_id")) and status not in (None, StudyStatus.UNPUBLISHED)


def _price(job: AnnotationJob, connection: ProlificConnection, report: Any, upload_path: Path, published: bool) -> JobPrice:
    """The account's quote of the job's places (task groups × annotators_per_task), checked against
    ``max_budget`` before anything is created; raises :class:`BudgetExceeded` or :class:`CostUnknown`. A job
    whose study was published before is only priced (logged), not refused: its money is spent already."""
    group_ids = _task_group_ids(upload_path, report.task_group_column) if report.task_group_column else None
    task_groups = task_group_count(report.rows, job.batch.tasks_per_group, group_ids)
    try:
        price = price_job(connection, job.study.reward, task_groups, job.study.annotators_per_task, job.max_budget,
                          _places_in_spec(job, task_groups * job.study.annotators_per_task))
    except ProlificError as error:
        raise CostUnknown(
            f"cannot price the job with the account's cost calculator (POST /api/v1/study-cost-calculator/): {error}. "
            "Nothing was created; run the job again when the API answers."
        ) from error
    if not published:
        price.refuse_over_budget()
    return price


def _places_in_spec(job: AnnotationJob, batch_places: int) -> int | None:
    """The study's ``total_available_places`` when the spec sets it (a pass-through study field), else ``None``
    (the places then follow the batch: ``batch_places`` = task groups × annotators_per_task). Raises
    :class:`InputInvalid`, before anything is created, for a value that is not a whole number from 1 to
    ``batch_places`` (Prolific refuses more places than the batch has, after the dataset and batch exist)."""
    places = (job.study.model_extra or {}).get("total_available_places")
    if places is None:
        return None
    try:
        places = int(places)
    except (TypeError, ValueError):
        raise InputInvalid(f"study.total_available_places must be a whole number, not {places!r}. Fix the job spec.") from None
    if not 1 <= places <= batch_places:
        raise InputInvalid(
            f"study.total_available_places is {places}, but the batch has {batch_places} places (task groups × "
            "annotators_per_task). Set it from 1 to that, or leave it out to use them all. Nothing was created."
        )
    return places


def _task_group_ids(upload_path: Path, column: str) -> list[str]:
    """The task-group column of the upload file (JSONL, or UTF-8 CSV), as text."""
    import pandas as pd

    if is_jsonl(upload_path):
        return column_values(upload_path, column)

    frame = pd.read_csv(upload_path, usecols=[column], dtype=str, keep_default_na=False, encoding="utf-8")
    return frame[column].tolist()


def _checked_cost(
    connection: ProlificConnection, study_id: str, price: JobPrice, workspace_id: str, project_id: str | None
) -> PublishCost | None:
    """The draft study's own cost and the paying balance, checked (:func:`check_before_publish`); the figures
    go to the ``cost`` artifact. A cost that cannot be read raises :class:`CostUnknown`. ``None`` when the
    study is published already (a re-run that resumes: there is nothing left to pay for)."""
    try:
        figures = read_study_cost(connection, study_id, workspace_id, project_id)
    except ProlificError as error:
        raise CostUnknown(f"cannot read the cost of study {study_id} (GET /api/v1/studies/{{id}}/cost/): {error}. "
                          "Not publishing; run the job again when the API answers (it resumes).") from error
    if str(figures["study"].status) != StudyStatus.UNPUBLISHED:
        run_logger().info("Study %s is %s: published before, no cost to check", study_id, figures["study"].status)
        return None
    cost = check_before_publish(price, **figures)
    create_markdown_artifact(
        key="cost", markdown=f"# The account's cost of study {study_id}\n\n{cost.to_markdown()}", description="Before publishing"
    )
    run_logger().info(
        "Study %s: %.2f %s checked (%s), budget %.2f, %s has %.2f", study_id, cost.checked_cents / 100,
        cost.currency_code, cost.checked_source, cost.max_budget_cents / 100, cost.payer, cost.balance_cents / 100,
    )
    return cost


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
            "dataset": str(
                client.get_import_job(summary["dataset_id"], summary["import_id"]).status
                if summary.get("import_id") else client.get_dataset_status(summary["dataset_id"])
            ),
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
    """The file name given to ``upload-url/{filename}`` (§1.4): the file's name, ending in ``.jsonl`` for a
    JSONL file and ``.csv`` otherwise (a TSV or another encoding is uploaded as its CSV rewrite)."""
    name = Path(job.dataset.csv.rsplit("/", 1)[-1]).stem or "dataset"
    return f"{name}.jsonl" if is_jsonl(job.dataset.csv) else f"{name}.csv"

