"""Prefect tasks that merge the reports of a job's rounds (issue 19): each round's report parsed on its own,
the answers of every round joined under one datapoint id per row (the first round's), then aggregated once.

A follow-up round's dataset is new (its datapoints get new ids on Prolific), so rounds are matched by the
spec's ``dataset.id_column``; ``responses`` gains ``round`` (1, 2, ...).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.aggregate import AggregateResult
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.report import ParsedReport, read_report

from tasks.logs import run_logger
from tasks.results import aggregate_parsed, instruction_payloads, not_parsed


@task(name="read-round-report", cache_policy=NO_CACHE)
def read_round_report(job: AnnotationJob, report_path: Path, kept_at: str, dataset_columns: list[str]) -> ParsedReport:
    """Parse one round's report (:func:`taskbuilder.report.read_report`); raises
    :class:`tasks.results.ReportNotParsed` naming ``kept_at`` (where the raw report is kept)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parsed = read_report(report_path, instruction_payloads(job), dataset_columns)
    except Exception as error:
        raise not_parsed(error, kept_at) from error
    for warning in caught:
        run_logger().warning("%s", warning.message)
    return parsed


def merge_rounds(job: AnnotationJob, rounds: list[tuple[int, ParsedReport]]) -> ParsedReport:
    """One :class:`ParsedReport` of every round's answers: a row's datapoint id is the one of the first round
    that had the row (matched by ``dataset.id_column``); ``responses`` gains ``round`` as its last column."""
    first = rounds[0][1]
    id_column = first.column_names.get(job.dataset.id_column, job.dataset.id_column)
    canonical: dict[str, str] = {}
    responses, datapoints = [], []
    for number, parsed in rounds:
        rows = parsed.datapoints
        for row_id, datapoint_id in zip(rows[id_column].astype(str), rows["datapoint_id"].astype(str)):
            canonical.setdefault(row_id, datapoint_id)
        mapped = parsed.responses.copy()
        mapped["datapoint_id"] = mapped[id_column].astype(str).map(canonical)
        mapped["round"] = number
        responses.append(mapped)
        own = rows.copy()
        own["datapoint_id"] = own[id_column].astype(str).map(canonical)
        datapoints.append(own)
    merged_datapoints = pd.concat(datapoints, ignore_index=True).drop_duplicates("datapoint_id").reset_index(drop=True)
    return ParsedReport(pd.concat(responses, ignore_index=True), merged_datapoints, first.column_names)


@task(name="aggregate-rounds", cache_policy=NO_CACHE)
def aggregate_rounds(job: AnnotationJob, rounds: list[tuple[int, ParsedReport]], kept_at: str) -> tuple[Any, AggregateResult]:
    """Merge the rounds (:func:`merge_rounds`) and aggregate all their answers; return ``(responses with
    round, AggregateResult)``. Raises :class:`tasks.results.ReportNotParsed` naming ``kept_at``."""
    merged = merge_rounds(job, rounds)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = aggregate_parsed(job, merged, instruction_payloads(job))
    except Exception as error:
        raise not_parsed(error, kept_at) from error
    for warning in caught:
        run_logger().warning("%s", warning.message)
    return merged.responses, result
