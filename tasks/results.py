"""The steps that turn the downloaded report into the job's outputs and artifacts.

``report.csv`` (as downloaded, kept first) → ``responses.csv`` (tidy) → ``labels.csv``, ``participants.csv``,
``summary.json`` (see :mod:`taskbuilder.report`, :mod:`taskbuilder.aggregate`), written to a folder or
an ``s3://`` prefix (:mod:`taskbuilder.outputs`), with Prefect table and markdown artifacts.

Plain functions called by the flows, not Prefect tasks: they call no API and are not retried, and a task run
costs the Prefect server ~30-60 ms of CPU and several requests and events (issue 18, NOTES.md "Lean runs"). Their
logs and artifacts belong to the flow run.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from taskbuilder.aggregate import AggregateResult
from taskbuilder.outputs import write_outputs
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.job_results import aggregate_parsed, participants_with_status
from taskbuilder.payloads import instruction_payloads
from taskbuilder.report import read_report
from taskbuilder.result_views import labels_view, participants_view, summary_markdown

from tasks.logs import run_logger

ARTIFACT_ROWS = 20
"""Rows of labels and participants shown in the table artifacts."""


class ReportNotParsed(RuntimeError):
    """The downloaded report could not be turned into tables; the raw report is kept at the output
    location (the message says where)."""


def keep_raw_report(report_path: Path, destination: str, name: str = "report.csv") -> dict[str, str]:
    """Write the downloaded report, byte for byte, to ``destination`` (folder or ``s3://`` prefix) as
    ``name`` (``report.csv``; a later round's ``report-round-<n>.csv``) before anything parses it; return
    ``{name: location}``."""
    locations = write_outputs(destination, files={name: report_path})
    run_logger().info("Kept the raw report at %s", locations[name])
    return locations


def aggregate_results(
    job: AnnotationJob, report_path: Path, kept_at: str | None = None, dataset_columns: list[str] | None = None
) -> tuple[Any, AggregateResult]:
    """Parse the report and aggregate it; return ``(responses DataFrame, AggregateResult)``.

    ``kept_at``: where the raw report was kept (named in the error); ``dataset_columns``: the uploaded
    CSV's column names when known (see :func:`taskbuilder.report.read_report`). Warnings of the parser
    and of the aggregation (unmapped answers, datapoints without answers) are logged. Raises
    :class:`ReportNotParsed` (one line, naming ``kept_at``) when either fails.
    """
    logger = run_logger()
    instructions = instruction_payloads(job)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parsed = read_report(report_path, instructions, dataset_columns)
            result = aggregate_parsed(job, parsed, instructions)
    except Exception as error:
        raise not_parsed(error, kept_at or report_path) from error
    for warning in caught:
        logger.warning("%s", warning.message)
    logger.info(
        "%d responses from %d participants → %d labels", len(parsed.responses), len(result.participants), len(result.labels)
    )
    return parsed.responses, result


def not_parsed(error: Exception, kept_at: Any) -> ReportNotParsed:
    """The one-line :class:`ReportNotParsed` for ``error``, naming where the raw report is kept."""
    reason = " ".join(str(error).split()) or type(error).__name__
    return ReportNotParsed(
        f"the report could not be turned into tables ({reason}); the raw report, as downloaded, is kept at {kept_at}"
    )


def write_results(
    responses: Any, result: AggregateResult, submissions: list[dict[str, Any]], destination: str,
    job: AnnotationJob | None = None, cost: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Write ``responses.csv``, ``labels.csv``, ``participants.csv``, ``summary.json`` to ``destination``
    (``report.csv`` is written before, by :func:`keep_raw_report`); publish artifacts; return name → location.

    ``submissions``: the study's submissions (dicts with ``participant_id`` and ``status``), used to fill
    ``participants.submission_status``. ``job`` (its instructions and id column) and ``cost`` (the run
    summary's ``cost``: ``quote``, ``checked``) make the artifacts readable (:mod:`taskbuilder.result_views`):
    ``labels`` (keyed on the id column, displayed text first, 3 decimals), ``participants`` and the Markdown
    ``results-summary``.
    """
    participants = participants_with_status(result.participants, submissions)
    locations = write_outputs(
        destination,
        files={
            "responses.csv": responses,
            "labels.csv": result.labels,
            "participants.csv": participants,
            "summary.json": result.summary,
        },
    )
    instructions = instruction_payloads(job) if job is not None else []
    id_column = job.dataset.id_column if job is not None else None
    create_table_artifact(
        key="labels", table=labels_view(result.labels.head(ARTIFACT_ROWS), instructions, id_column),
        description=f"First {ARTIFACT_ROWS} labels (all in labels.csv), keyed on {id_column or 'datapoint_id'}",
    )
    create_table_artifact(
        key="participants", table=participants_view(participants.head(ARTIFACT_ROWS)),
        description=f"First {ARTIFACT_ROWS} participants (all in participants.csv)",
    )
    create_markdown_artifact(
        key="results-summary",
        markdown=summary_markdown(result.summary, result.labels, participants, instructions, id_column, cost, locations),
        description="Counts, label distribution, agreement, gold accuracy, cost, flagged participants",
    )
    run_logger().info("Wrote %s", ", ".join(sorted(locations)))
    return locations
