"""A running study's figures from its answers so far: progress, partial summary, and the alert rule (issue 20).

The answers so far come from the batch report (``GET /api/v1/data-collection/batches/{id}/report/``, §2.7 of
../shared/docs/prolific-api-current.md), parsed and aggregated exactly like the final one
(:func:`taskbuilder.report.read_report`, :func:`taskbuilder.aggregate.aggregate`): it carries the datapoint
(its id, task group and original columns) beside every answer, which the responses endpoint (§2.8: ``task_id``,
``response.instruction_id``) does not. No I/O here: the callers (``tasks/live_results.py``) read and write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from taskbuilder.aggregate import AggregateResult
from taskbuilder.jobspec.live import AlertSpec


@dataclass(frozen=True)
class StudyProgress:
    """Where a running study stands, from its answers so far.

    ``task_groups_done``: task groups answered by ``annotators_per_task`` participants, of
    ``task_groups_total``; ``submissions_done``: completed (participant, task group) pairs, of ``places_total``;
    ``answers``: responses to every instruction; ``choice_answers``: responses to the first choice instruction,
    whose Krippendorff's α is ``agreement`` (``None`` while undefined) and percent agreement
    ``percent_agreement``; ``flagged_participants``: below ``min_agreement`` / ``min_gold_accuracy`` so far;
    ``seconds_left``: the places left at the pace since publishing (``None`` before the first submission);
    ``as_of``: ISO-8601 UTC; ``status``: the study's status then.
    """

    as_of: str
    status: str
    task_groups_done: int
    task_groups_total: int
    submissions_done: int
    places_total: int
    answers: int
    choice_answers: int
    agreement: float | None
    percent_agreement: float | None
    flagged_participants: int
    seconds_left: float | None

    def percent(self) -> float:
        """Submissions done as a share of the places, 0–100."""
        if self.places_total <= 0:
            return 0.0
        return max(0.0, min(100.0, 100.0 * self.submissions_done / self.places_total))

    def counts(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (``summary.json``'s ``counts`` of a partial result)."""
        return asdict(self)

    def describe(self) -> str:
        """One line: task groups, answers, agreement, flagged, time left (the progress artifact's description)."""
        alpha = "n/a" if self.agreement is None else f"{self.agreement:.2f}"
        left = "unknown" if self.seconds_left is None else _duration(self.seconds_left)
        return (f"{self.status}: {self.task_groups_done}/{self.task_groups_total} task groups done, "
                f"{self.submissions_done}/{self.places_total} submissions, {self.answers} answers, α so far {alpha}, "
                f"{self.flagged_participants} flagged, about {left} left at the current pace")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 0)} min" if minutes else f"{round(seconds)} s"


def first_choice_stats(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The summary figures of the first single-select choice instruction (``summary["instructions"]``), or None."""
    return next((s for s in summary.get("instructions") or [] if s.get("answer_limit", 1) == 1 and "label_distribution" in s), None)


def study_progress(
    responses: pd.DataFrame, result: AggregateResult, *, status: str, places_total: int, task_groups_total: int,
    annotators_per_task: int, published_at: dt.datetime | None, now: dt.datetime | None = None,
) -> StudyProgress:
    """The :class:`StudyProgress` of ``responses`` (the tidy table of :func:`taskbuilder.report.read_report`) and
    their aggregation ``result``; ``published_at`` (the study's, aware) sets the pace."""
    now = now or dt.datetime.now(dt.timezone.utc)
    pairs = responses[["participant_id", "task_group_id"]].drop_duplicates()
    per_group = pairs.groupby("task_group_id")["participant_id"].nunique()
    submissions = int(len(pairs))
    stats = first_choice_stats(result.summary) or {}
    seconds_left = None
    if submissions and published_at is not None:
        elapsed = max((now - published_at).total_seconds(), 1e-3)
        seconds_left = max(places_total - submissions, 0) * elapsed / submissions
    return StudyProgress(
        as_of=now.isoformat(), status=status, task_groups_done=int((per_group >= annotators_per_task).sum()),
        task_groups_total=int(task_groups_total), submissions_done=submissions, places_total=int(places_total),
        answers=int(len(responses)), choice_answers=int(stats.get("responses") or 0),
        agreement=stats.get("krippendorff_alpha"), percent_agreement=stats.get("percent_agreement"),
        flagged_participants=int(result.summary.get("flagged_participants") or 0), seconds_left=seconds_left,
    )


def partial_summary(summary: dict[str, Any], progress: StudyProgress) -> dict[str, Any]:
    """``summary.json`` of a partial result: the aggregation's summary with ``"partial": true``, the time
    (``as_of``) and the counts so far (:meth:`StudyProgress.counts`)."""
    return {"partial": True, "as_of": progress.as_of, "counts": progress.counts(), **summary}


def alert_message(alerts: AlertSpec | None, summary: dict[str, Any]) -> str | None:
    """The alert to raise now, or None: once ``alerts.after_answers`` answers to the first choice instruction are
    in (``summary`` of :func:`taskbuilder.aggregate.aggregate`), its α so far below ``alerts.min_agreement`` (an
    undefined α raises nothing)."""
    stats = first_choice_stats(summary) or {}
    answers, alpha = int(stats.get("responses") or 0), stats.get("krippendorff_alpha")
    if alerts is None or answers < alerts.after_answers or alpha is None or alpha >= alerts.min_agreement:
        return None
    return (f"agreement so far is {alpha:.2f} (Krippendorff's α) after {answers} answers, below alerts.min_agreement "
            f"{alerts.min_agreement}: the instructions may confuse participants, or many answer carelessly "
            f"({int(summary.get('flagged_participants') or 0)} participants flagged so far)")
