"""One round of a job: price → dataset (upload, import) → batch (instructions, set up) → study → the study's
own cost and the paying balance → publish once → wait → the report, kept raw before anything parses it.

A job without rounds is one round (number 1) under the job key itself, with the names and cache keys it
always had, so older records resume. Round ``n`` > 1 runs under the round key ``<job key>-round-<n>``
(:func:`taskbuilder.rounds.round_key`): its dataset, batch and study are tagged and cached with it, found again
on a re-run, and its study is published only while UNPUBLISHED (:mod:`tasks.studies`). The steps' order and
checks are those of ``NOTES.md`` "Exactly-once effects"; the flows decide which rounds run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact

from taskbuilder import payloads
from taskbuilder.cost import CostRefused, CostUnknown, JobPrice, PublishCost, check_before_publish, task_group_count
from taskbuilder.dataset_schema import displayed_columns, field_types, schema_body
from taskbuilder.errors import ProlificError
from taskbuilder.jobkey import tag_name
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.jsonl import column_values, is_jsonl
from taskbuilder.models import StudyStatus
from taskbuilder.polling import PollSettings
from taskbuilder.rounds import blocklist_filter, round_key

from tasks.batches import add_instructions, create_batch, set_up_batch, wait_for_batch
from tasks.caching import create_once
from tasks.connection import ProlificConnection
from tasks.costs import price_job, read_study_cost
from tasks.datasets import create_dataset, upload_dataset_file, upload_dataset_import, wait_for_dataset, wait_for_import
from tasks.inputs import InputInvalid
from tasks.live_results import LiveResults
from tasks.logs import run_logger
from tasks.quality import with_filters
from tasks.records import known_job_record, update_job_record
from tasks.reports import fetch_report
from tasks.results import keep_raw_report
from tasks.studies import create_study, publish_study, wait_for_study

DEFAULT_DATASET_VERSION = 4
"""The dataset path of a spec that does not say (``dataset.version``)."""


@dataclass(frozen=True)
class JobRun:
    """What every round of one job shares: the spec, the job key and work fingerprint, the API, where outputs go, the validated
    input (``report``: columns, rows, task-group column) and the dataset path (``version``, V4 ``types``)."""

    job: AnnotationJob
    job_key: str
    fingerprint: str
    """The job's work fingerprint (``AnnotationJob.work_fingerprint``); every round's tags carry it."""
    connection: ProlificConnection
    polling: PollSettings
    destination: str
    work_dir: Path
    workspace_id: str
    report: Any
    version: int
    types: dict[str, str] | None
    project_id: str | None
    study_filters: tuple[dict[str, Any], ...] = ()
    """Filters every round's study adds (the spec's ``quality`` groups, :func:`tasks.quality.quality_filters`)."""


@dataclass(frozen=True)
class RoundPlan:
    """One round: ``number`` (1 = the job's first, under the job key), ``kind`` (``pilot`` | ``main`` |
    ``followup``), the file of its datapoints (``upload_path``, ``rows`` records), ``annotators_per_task``,
    and the studies whose participants it keeps out (``previous_studies_blocklist``, §12)."""

    job_key: str
    number: int
    kind: str
    upload_path: Path
    rows: int
    annotators_per_task: int
    blocked_study_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The key its resources are tagged, cached and recorded under."""
        return round_key(self.job_key, self.number)

    @property
    def report_name(self) -> str:
        """The name its raw report is kept under at the output location."""
        return "report.csv" if self.number == 1 else f"report-round-{self.number}.csv"


@dataclass
class RoundDraft:
    """A round's resources, made or found (the study not published yet)."""

    dataset_id: str
    import_id: str | None
    batch_id: str
    study_id: str
    instructions_mode: str
    total_task_groups: int | None
    names: dict[str, str] = field(default_factory=dict)


def job_run(job: AnnotationJob, job_key: str, fingerprint: str, connection: ProlificConnection, polling: PollSettings,
            destination: str, work_dir: Path, workspace_id: str, report: Any, project_id: str | None,
            study_filters: list[dict[str, Any]] | None = None) -> JobRun:
    """The :class:`JobRun` of a validated job (dataset path and V4 schema types from the spec and ``report``)."""
    version = job.dataset.version or DEFAULT_DATASET_VERSION
    types = _schema_types(job, report) if version == 4 else None
    return JobRun(job, job_key, fingerprint, connection, polling, destination, work_dir, workspace_id, report, version, types,
                  project_id, tuple(study_filters or ()))


def published_before(key: str, connection: ProlificConnection) -> bool:
    """True when the job record of ``key`` (a job or round key) says its study is past UNPUBLISHED (a re-run
    that resumes it)."""
    record = known_job_record(key, connection.base_url) or {}
    status = (record.get("statuses") or {}).get("study")
    return bool(record.get("study_id")) and status not in (None, StudyStatus.UNPUBLISHED)


def price_round(run: JobRun, plan: RoundPlan, budget_cents: int, published: bool) -> JobPrice:
    """The account's quote of the round's places (task groups × ``annotators_per_task``), checked against
    ``budget_cents`` (what is left of ``max_budget``) before anything of the round is created; raises
    :class:`~taskbuilder.cost.BudgetExceeded` or :class:`CostUnknown`. A round whose study was published before
    is only priced (logged), not refused: its money is spent already."""
    job = run.job
    column = run.report.task_group_column
    group_ids = _task_group_ids(plan.upload_path, column) if column else None
    task_groups = task_group_count(plan.rows, job.batch.tasks_per_group, group_ids)
    places = _places_in_spec(job, task_groups * plan.annotators_per_task) if plan.number == 1 else None
    try:
        price = price_job(run.connection, job.study.reward, task_groups, plan.annotators_per_task, budget_cents, places)
    except ProlificError as error:
        raise CostUnknown(
            f"cannot price the job with the account's cost calculator (POST /api/v1/study-cost-calculator/): {error}. "
            "Nothing was created; run the job again when the API answers."
        ) from error
    if not published:
        price.refuse_over_budget()
    return price


def draft_round(run: JobRun, plan: RoundPlan) -> RoundDraft:
    """Create (or find) the round's dataset, batch and study; return them (the study UNPUBLISHED unless a
    run before published it). Every create is ``create_once`` under the round key."""
    job, connection, key = run.job, run.connection, plan.key
    if plan.number > 1:  # first: a round's record is part of the job, never a job of its own (tasks.records)
        update_job_record(key, connection.base_url, round_of=run.job_key, round=plan.number, kind=plan.kind)
    batch_name = tag_name(job.batch.name, key, run.fingerprint)  # a round's subset file: still the job's work
    dataset_id, import_id, batch_items = _dataset(run, plan, batch_name)
    task_details = job.batch.task_details.model_dump(mode="json") if job.batch.task_details else None
    batch_id = create_once(create_batch, "batch", connection, key, run.workspace_id, batch_name, dataset_id, task_details,
                           batch_items)
    mode = add_instructions(connection, batch_id, payloads.instructions_payload(job.batch)) if batch_items is None else "batch_items"
    update_job_record(key, connection.base_url, instructions_mode=mode)
    set_up_batch(connection, batch_id, dataset_id, job.batch.tasks_per_group)
    batch = wait_for_batch(connection, batch_id, run.polling)
    dataset_id = _dataset_in_use(key, connection, batch, dataset_id)

    internal_name = tag_name(job.study.internal_name or job.study.name, key, run.fingerprint)
    same = plan.annotators_per_task == job.study.annotators_per_task
    study = job.study if same else job.study.model_copy(update={"annotators_per_task": plan.annotators_per_task})
    study_payload = with_filters(payloads.study_payload(study, batch_id, internal_name), list(run.study_filters))  # live
    if plan.number > 1:
        study_payload.pop("total_available_places", None)  # the spec's places are the first round's
    if plan.blocked_study_ids:
        study_payload["filters"] = [*(study_payload.get("filters") or []), blocklist_filter(plan.blocked_study_ids)]
    if run.project_id:
        study_payload.setdefault("project", run.project_id)  # bills the workspace's funds (API doc §6.1)
    study_id = create_once(create_study, "study", connection, key, study_payload)
    names = {"batch_name": batch_name, "internal_name": internal_name, "workspace_id": run.workspace_id}
    return RoundDraft(dataset_id, import_id, batch_id, study_id, mode, batch.get("total_task_groups"), names)


def checked_cost(run: JobRun, draft: RoundDraft, price: JobPrice) -> PublishCost | None:
    """The draft study's own cost and the paying balance, checked (:func:`check_before_publish`); the figures
    go to the ``cost`` artifact. A cost that cannot be read raises :class:`CostUnknown`. ``None`` when the
    study is published already (a re-run that resumes: there is nothing left to pay for)."""
    study_id = draft.study_id
    try:
        figures = read_study_cost(run.connection, study_id, run.workspace_id, run.project_id)
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
        "Study %s: %.2f %s checked (%s) against max_budget %.2f %s; %s has %.2f %s", study_id,
        cost.checked_cents / 100, cost.currency_code, cost.checked_source, cost.max_budget_cents / 100,
        cost.currency_code, cost.payer, cost.balance_cents / 100, cost.currency_code,
    )
    return cost


def publish_round(run: JobRun, plan: RoundPlan, draft: RoundDraft) -> str:
    """PUBLISH the round's study while, and only while, it is UNPUBLISHED; return its status after."""
    return publish_study(run.connection, plan.key, draft.study_id)


def collect_round(run: JobRun, plan: RoundPlan, draft: RoundDraft, earlier: list[tuple[int, Any]] | None = None) -> tuple[Path, str]:
    """Wait for the round's study (writing live partial results, merged with ``earlier``: the parsed reports of
    the rounds before), download its batch report and keep it raw at the output location (as
    :attr:`RoundPlan.report_name`) before anything parses it; return ``(local path, kept location)``."""
    observer = LiveResults(run.job, run.connection, run.job_key, draft.batch_id, run.destination,
                           list(run.report.columns), run.work_dir, earlier=earlier, round_number=plan.number)
    wait_for_study(run.connection, draft.study_id, run.polling, observer)
    local = fetch_report(run.connection, draft.batch_id, run.work_dir / plan.report_name)
    kept = keep_raw_report(local, run.destination, plan.report_name)
    return local, kept[plan.report_name]


def _dataset(run: JobRun, plan: RoundPlan, batch_name: str) -> tuple[str, str | None, list[dict[str, Any]] | None]:
    """Create the round's dataset, upload its file and wait until it can be set up; return ``(dataset_id,
    import_id, batch_items)``. With schema types (V4): the import job is waited for, and a spec in the seed's
    layout gets its instructions as one ``batch_items`` page. Without (V3): READY, and ``batch_items`` only when
    the spec wrote them (else ``None``: the legacy endpoint gives the instructions)."""
    job, connection, key, types = run.job, run.connection, plan.key, run.types
    filename = _upload_filename(job)
    name = job.dataset.name if plan.number == 1 else f"{job.dataset.name} (round {plan.number})"
    schema = schema_body(types) if types is not None else None
    dataset_id = create_once(create_dataset, "dataset", connection, key, name, run.workspace_id, schema, batch_name)
    if types is None:
        upload_dataset_file(connection, dataset_id, plan.upload_path, filename)
        wait_for_dataset(connection, dataset_id, run.polling)
        return dataset_id, None, payloads.batch_items_payload(job.batch)
    import_id = upload_dataset_import(connection, key, dataset_id, plan.upload_path, filename)
    wait_for_import(connection, dataset_id, import_id, run.polling)
    layout = payloads.batch_items_payload(job.batch)
    return dataset_id, import_id, layout or payloads.instructions_as_batch_items(job.batch, displayed_columns(types))


def _schema_types(job: AnnotationJob, report: Any) -> dict[str, str]:
    """The V4 schema's field types (:func:`taskbuilder.dataset_schema.field_types`); a bad
    ``dataset.column_types`` is :class:`InputInvalid` before anything is created."""
    try:
        return field_types(report.columns, id_column=job.dataset.id_column, column_types=job.dataset.column_types)
    except ValueError as error:
        raise InputInvalid(f"{error}. Fix the job spec.") from None


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


def _dataset_in_use(key: str, connection: ProlificConnection, batch: dict[str, Any], dataset_id: str) -> str:
    """The dataset the round's batch uses (``batch`` as :func:`wait_for_batch` returns it): ``dataset_id``,
    unless the batch names another, which then becomes the round's (recorded, with a note)."""
    used = batch.get("dataset_id") or next((d.get("id") for d in batch.get("datasets") or [] if d.get("id")), None)
    if not used or used == dataset_id:
        return dataset_id
    note = f"dataset {dataset_id} is not the one the job's batch uses ({used}); the job's dataset is {used}"
    run_logger().warning("%s", note)
    update_job_record(key, connection.base_url, dataset_id=used, notes=[note])
    return used


def _upload_filename(job: AnnotationJob) -> str:
    """The file name given to ``upload-url/{filename}`` (§1.4): the file's name, ending in ``.jsonl`` for a
    JSONL file and ``.csv`` otherwise (a TSV or another encoding is uploaded as its CSV rewrite)."""
    name = Path(job.dataset.csv.rsplit("/", 1)[-1]).stem or "dataset"
    return f"{name}.jsonl" if is_jsonl(job.dataset.csv) else f"{name}.csv"


class PublishRejected(RuntimeError):
    """A reviewer rejected publishing the study: it stays unpublished."""


def publish_gate(run: JobRun, plan: RoundPlan, draft: RoundDraft, price: JobPrice, summary: dict[str, Any],
                 refuse: Callable[[str], None]) -> bool:
    """Check the draft's cost (into ``summary["cost"]["checked"]``), ask the reviewer when the spec wants it,
    then PUBLISH once; return True when the study is published (now or before), False when ``publish`` is
    off. A refusal calls ``refuse(note)`` (the flow writes what it has) and raises: a
    :class:`~taskbuilder.cost.CostRefused`, or :class:`PublishRejected`."""
    def checked() -> PublishCost | None:
        try:
            return checked_cost(run, draft, price)
        except CostRefused as refusal:
            refuse(str(refusal))
            raise

    cost = checked()
    summary["resumed"] = cost is None  # the study was published by an earlier run: this one publishes nothing
    # published before (a re-run that resumes): keep the figures checked by the run that published it
    summary["cost"]["checked"] = (cost.model_dump() if cost else
                                  ((known_job_record(plan.key, run.connection.base_url) or {}).get("cost") or {}).get("checked"))
    update_job_record(plan.key, run.connection.base_url, cost=summary["cost"])  # the results summary's estimate vs spent
    if not run.job.publish:
        run_logger().info("publish is false: study %s stays UNPUBLISHED (set publish: true to spend money)", draft.study_id)
        return False
    if run.job.require_approval and cost is not None:
        from flows.approval import mark_awaiting_review, record_decision, request_publish_approval

        mark_awaiting_review(run.job_key, run.connection.base_url, f"publishing round {plan.number} (study {draft.study_id})")
        approval = request_publish_approval(draft.study_id, cost)
        mark_awaiting_review(run.job_key, run.connection.base_url, None)
        summary["approval"] = record_decision(approval, draft.study_id, cost, plan.key, run.connection.base_url)
        if not approval.approve:
            refuse(f"publishing rejected by {approval.reviewer}: {approval.comment}")
            raise PublishRejected(f"publishing study {draft.study_id} was rejected by {approval.reviewer}: it stays unpublished")
        checked()  # the approval may have waited for days: the account's figures again, just before PUBLISH
    publish_round(run, plan, draft)
    return True
