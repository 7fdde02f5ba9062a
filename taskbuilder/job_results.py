"""A job's results from its parsed report: the aggregation with the job's columns and thresholds, and the
participants table with each participant's submission status from the API.

Both are the local work of every path that turns a report into outputs (the flow's tasks, the live partial
results, the rounds, the benchmarks' plain script); nothing here talks to the API or to Prefect.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from taskbuilder.aggregate import AggregateResult, aggregate
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.report import ParsedReport


def aggregate_parsed(job: AnnotationJob, parsed: ParsedReport, instructions: list[dict[str, Any]]) -> AggregateResult:
    """:func:`taskbuilder.aggregate.aggregate` of ``parsed`` (:func:`taskbuilder.report.read_report`) against
    ``instructions`` (:func:`taskbuilder.payloads.instruction_payloads`) with the job's id, gold (the spec's, else
    ``META_gold`` when the report has it) and attention-check columns and its ``min_agreement`` and
    ``min_gold_accuracy``. Raises what the aggregation raises (``ValueError`` on unusable input)."""
    return aggregate(
        parsed,
        instructions,
        id_column=job.dataset.id_column,
        gold_column=job.dataset.gold_column_in(list(parsed.column_names)),
        attention_check_column=job.dataset.attention_check_column,
        min_agreement=job.min_agreement,
        min_gold_accuracy=job.min_gold_accuracy,
    )


def participants_with_status(participants: pd.DataFrame, submissions: list[dict[str, Any]]) -> pd.DataFrame:
    """A copy of the aggregation's ``participants`` table with ``submission_status`` filled from ``submissions``
    (dicts with ``participant_id`` and ``status``, as ``GET /api/v1/studies/{id}/submissions/`` lists them, §5.7);
    empty for a participant without a submission. ``participants`` is not changed."""
    table = participants.copy()
    status_of = {s.get("participant_id"): s.get("status") for s in submissions}
    table["submission_status"] = table["participant_id"].map(status_of).fillna("")
    return table
