"""Results while the study runs (issue 20): partial outputs, a progress artifact, and the job's one alert.

Every ``partial_results_every_seconds`` while the study is ACTIVE, the answers so far are read from the batch
report (``GET /api/v1/data-collection/batches/{id}/report/``, §2.7; why the report and not the responses
endpoint: :mod:`taskbuilder.live_progress`) and written to the job's output location as partial
``responses.csv``, ``labels.csv`` and ``summary.json`` (``"partial": true``, ``as_of``, ``counts``); the final
files of :func:`tasks.results.write_results` replace them. A Prefect progress artifact (key
``study-<id>-partial``) is updated in place with the figures of :class:`taskbuilder.live_progress.StudyProgress`.

Two callers: the flow's wait (:class:`LiveResults` is the ``observer`` of :func:`tasks.studies.wait_for_study`)
and the study monitor (:func:`monitor_partial_results`, for jobs launched with ``wait_for_completion: false``).
In a later round of a job in rounds the answers so far are merged with the earlier rounds' (the partial files
hold every round; the counts are the running round's study).
A partial read that fails is logged and skipped: it never fails the job.

The alert (``alerts:``): logged, a markdown artifact (key ``job-alert``) and the Prefect event
``prolific.job.alert`` (resource ``prolific.study.<id>``, named by the job key; payload ``{job_key,
study_id, message, agreement, answers, flagged_participants, paused}``), once per job: the job record's
``alert`` is written first and checked every time. With ``pause_on_alert`` the study is paused
(:func:`tasks.study_control.control_study`, itself once).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.events import emit_event

from taskbuilder.aggregate import AggregateResult
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.live_progress import alert_message, partial_summary, study_progress
from taskbuilder.models import Study, StudyStatus
from taskbuilder.outputs import write_outputs
from taskbuilder.report import ParsedReport, read_report

from tasks.connection import ProlificConnection, open_client
from tasks.logs import run_logger
from tasks.records import load_job_record, now_iso, update_job_record
from tasks.reports import fetch_report
from tasks.results import aggregate_parsed, instruction_payloads
from tasks.round_results import merge_rounds
from tasks.study_control import control_study

JOB_ALERT = "prolific.job.alert"
PARTIAL_FILES = ("responses.csv", "labels.csv", "summary.json")


def read_answers_so_far(job: AnnotationJob, report_path: Path, dataset_columns: list[str] | None,
                        earlier: list[tuple[int, ParsedReport]] | None = None, round_number: int = 1) -> tuple[Any, AggregateResult]:
    """The tidy responses and their aggregation from a report downloaded while the study runs (the same parse
    and aggregation as the final results; their warnings, e.g. datapoints without answers yet, are dropped).
    ``earlier``: the parsed reports of the job's earlier rounds (a later round, ``round_number``): the answers
    so far are merged with theirs (:func:`tasks.round_results.merge_rounds`; ``responses`` gains ``round``)."""
    instructions = instruction_payloads(job)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = read_report(report_path, instructions, dataset_columns)
        if earlier:
            parsed = merge_rounds(job, [*earlier, (round_number, parsed)])
        result = aggregate_parsed(job, parsed, instructions)
    return parsed.responses, result


class LiveResults:
    """The wait's observer: ``observer(study, elapsed_seconds)`` after each poll writes the partial results when
    ``job.partial_results_every_seconds`` have passed since the last ones (the first that long after the first
    ACTIVE poll: a study done sooner gets its final files only).

    ``destination``: the job's output location; ``dataset_columns``: the uploaded file's columns;
    ``work_dir``: where the report is downloaded.
    """

    def __init__(self, job: AnnotationJob, connection: ProlificConnection, job_key: str, batch_id: str,
                 destination: str, dataset_columns: list[str] | None, work_dir: Path,
                 clock: Callable[[], float] = time.monotonic, earlier: list[tuple[int, ParsedReport]] | None = None,
                 round_number: int = 1) -> None:
        self.job, self.connection, self.job_key, self.batch_id = job, connection, job_key, batch_id
        self.destination, self.dataset_columns, self.work_dir, self.clock = destination, dataset_columns, work_dir, clock
        self.earlier, self.round_number = list(earlier or []), round_number
        self.last_at: float | None = None
        self.artifact_id: Any = None

    def __call__(self, study: Study, elapsed_seconds: float) -> None:
        every = self.job.partial_results_every_seconds
        if not every or str(study.status) != StudyStatus.ACTIVE:
            return
        if self.last_at is None:  # the first ACTIVE poll starts the clock: the first partial comes `every` later
            self.last_at = self.clock()
            return
        if self.clock() - self.last_at < every:
            return
        self.last_at = self.clock()
        try:
            self.write_partial(study)
        except Exception as error:  # noqa: BLE001 - a partial result must never fail the job
            run_logger().warning("Partial results of study %s skipped this time: %s", study.id, error)

    def write_partial(self, study: Study) -> dict[str, Any]:
        """Read the answers so far, write the partial files and the progress artifact, check the alert;
        return the counts (:meth:`StudyProgress.counts`)."""
        report_path = fetch_report.fn(self.connection, self.batch_id, self.work_dir / "partial-report.csv")
        responses, result = read_answers_so_far(self.job, report_path, self.dataset_columns, self.earlier, self.round_number)
        this_round = responses.loc[responses["round"] == self.round_number] if self.earlier else responses
        metadata = study.data_collection_metadata or {}
        progress = study_progress(
            this_round, result, status=str(study.status), places_total=int(study.total_available_places or 0),
            task_groups_total=int(metadata.get("total_task_groups") or 0),
            annotators_per_task=int(metadata.get("annotators_per_task") or self.job.study.annotators_per_task),
            published_at=study.published_at,
        )
        write_outputs(self.destination, files={"responses.csv": responses, "labels.csv": result.labels,
                                               "summary.json": partial_summary(result.summary, progress)})
        description = f"Study {study.id} so far: {progress.describe()}"
        if self.artifact_id is None:
            self.artifact_id = create_progress_artifact(progress.percent(), key=f"study-{study.id}-partial".lower(),
                                                        description=description)
        else:
            update_progress_artifact(self.artifact_id, progress.percent(), description=description)
        run_logger().info("Partial results written to %s: %s", self.destination, progress.describe())
        update_job_record(self.job_key, self.connection.base_url, partial_results=progress.counts())
        raise_alert_once(self.job, self.connection, self.job_key, study.id, result.summary, pause=True)
        return progress.counts()


def raise_alert_once(job: AnnotationJob, connection: ProlificConnection, job_key: str, study_id: str,
                     summary: dict[str, Any], *, pause: bool) -> dict[str, Any] | None:
    """Alert when :func:`taskbuilder.live_progress.alert_message` says so and the job has not alerted yet
    (the record's ``alert``); with ``pause`` and ``alerts.pause_on_alert`` also pause the study. Returns the
    alert written, or None."""
    message = alert_message(job.alerts, summary)
    if message is None or (load_job_record(job_key, connection.base_url) or {}).get("alert"):
        return None
    figures = {"job_key": job_key, "study_id": study_id, "message": message, "at": now_iso(),
               "flagged_participants": int(summary.get("flagged_participants") or 0)}
    will_pause = bool(pause and job.alerts and job.alerts.pause_on_alert)
    alert = {**figures, "paused": will_pause}
    update_job_record(job_key, connection.base_url, alert=alert)  # first: the alert happens once per job
    run_logger().warning("ALERT for job %r (study %s): %s", job_key, study_id, message)
    create_markdown_artifact(key="job-alert", description=f"Alert of job {job_key}",
                             markdown=f"# Alert: job {job_key}\n\nStudy `{study_id}`: {message}.\n\n"
                                      + ("The study was paused (`taskbuilder study resume JOB.yaml` resumes it)."
                                         if will_pause else "The study keeps running."))
    emit_event(event=JOB_ALERT, resource={"prefect.resource.id": f"prolific.study.{study_id}",
                                          "prefect.resource.name": job_key}, payload=alert)
    if will_pause:
        control_study(connection, job_key, study_id, "pause")
    return alert


def monitor_partial_results(record: dict[str, Any], status: str) -> dict[str, Any] | None:
    """The monitor's hook for a job it watches (``wait_for_completion: false``): when its study is ACTIVE and
    ``partial_results_every_seconds`` have passed since the record's ``partial_results.as_of``, write the
    partial results as the flow's wait does; return the counts, or None when nothing was due (or it failed). The
    first time it sees the job ACTIVE it only marks the time (``partial_results.as_of``), like the wait."""
    if status != StudyStatus.ACTIVE or not record.get("batch_id") or not record.get("output_location"):
        return None
    try:
        job = AnnotationJob.model_validate(record.get("spec") or {})
    except ValueError as error:  # a record this version cannot read as a job: the monitor goes on without partials
        run_logger().warning("Partial results of job %r skipped: its stored spec does not read as a job (%s)",
                             record.get("job_key"), str(error).splitlines()[0])
        return None
    every = job.partial_results_every_seconds
    if not every:
        return None
    last = (record.get("partial_results") or {}).get("as_of")
    if not last:  # first seen ACTIVE: start the clock, the first partial comes `every` later
        update_job_record(record["job_key"], record["base_url"], partial_results={"as_of": now_iso(), "answers": 0})
        return None
    if _age_seconds(last) < every:
        return None
    connection = ProlificConnection(base_url=record["base_url"], token_secret_block=job.token_secret_block)
    try:
        with open_client(connection) as client:
            study = client.get_study(record["study_id"])
        with tempfile.TemporaryDirectory(prefix="taskbuilder-partial-") as scratch:
            number = int(record.get("watching_round") or 1)
            earlier = _earlier_rounds(job, connection, record, Path(scratch)) if number > 1 else None
            live = LiveResults(job, connection, record["job_key"], record["batch_id"], record["output_location"],
                               record.get("dataset_columns"), Path(scratch), earlier=earlier, round_number=number)
            return live.write_partial(study)
    except Exception as error:  # noqa: BLE001 - never fail the monitor for a partial result
        run_logger().warning("Partial results of job %r skipped this time: %s", record["job_key"], error)
        return None


def _earlier_rounds(job: AnnotationJob, connection: ProlificConnection, record: dict[str, Any], scratch: Path) -> list[tuple[int, ParsedReport]]:
    """The parsed final reports of the rounds before the one the monitor watches (``current_round.earlier_batches``,
    each ``GET /api/v1/data-collection/batches/{id}/report/``, §2.7)."""
    earlier = []
    for number, batch_id in (record.get("current_round") or {}).get("earlier_batches") or []:
        path = fetch_report.fn(connection, batch_id, scratch / f"report-round-{number}.csv")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            earlier.append((int(number), read_report(path, instruction_payloads(job), record.get("dataset_columns"))))
    return earlier


def _age_seconds(iso_time: str) -> float:
    import datetime as dt

    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(iso_time)).total_seconds()
