"""The running study's figures, the alert rule and the spec fields of issue 20 (no API, no Prefect server)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from taskbuilder.aggregate import aggregate
from taskbuilder.jobspec import AnnotationJob, SpecError
from taskbuilder.jobspec.live import AlertSpec
from taskbuilder.live_progress import alert_message, partial_summary, study_progress
from tasks.study_control import _places_fields

from tests.unit.test_job import spec  # noqa: F401  (the fixture)

CHOICE = {"type": "multiple_choice", "description": "Sentiment?", "answer_limit": 1,
          "options": [{"label": "Positive", "value": "pos"}, {"label": "Negative", "value": "neg"}]}


def responses(votes: dict[tuple[str, str], str]) -> pd.DataFrame:
    """A tidy responses table: (datapoint, participant) → answer; datapoint dN is in task group g(N // 2)."""
    rows = [{"datapoint_id": d, "task_group_id": f"g{int(d[1:]) // 2}", "instruction": CHOICE["description"],
             "instruction_type": "multiple_choice", "participant_id": p, "answer": a, "answered_at": ""}
            for (d, p), a in votes.items()]
    return pd.DataFrame(rows, columns=["datapoint_id", "task_group_id", "instruction", "instruction_type", "participant_id",
                                       "answer", "answered_at"])


def test_progress_counts_groups_submissions_answers_and_the_time_left():
    table = responses({("d0", "p1"): "pos", ("d1", "p1"): "pos", ("d0", "p2"): "pos", ("d1", "p2"): "pos",
                       ("d2", "p1"): "neg", ("d3", "p1"): "neg"})
    result = aggregate(table, [CHOICE])
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
    progress = study_progress(table, result, status="ACTIVE", places_total=8, task_groups_total=4, annotators_per_task=2,
                              published_at=now - dt.timedelta(minutes=30), now=now)
    assert (progress.task_groups_done, progress.submissions_done, progress.answers, progress.choice_answers) == (1, 3, 6, 6)
    assert progress.seconds_left == pytest.approx(5 * 1800 / 3)  # 5 places left at 3 per 30 minutes
    assert progress.percent() == pytest.approx(37.5)
    assert "1/4 task groups done" in progress.describe() and "50 min left" in progress.describe()
    summary = partial_summary(result.summary, progress)
    assert summary["partial"] is True and summary["counts"]["submissions_done"] == 3 and summary["responses"] == 6


def test_no_time_left_is_guessed_before_the_first_submission():
    table = responses({})
    progress = study_progress(table, aggregate(table, [CHOICE]), status="ACTIVE", places_total=4, task_groups_total=2,
                              annotators_per_task=2, published_at=dt.datetime.now(dt.timezone.utc))
    assert progress.seconds_left is None and progress.agreement is None and "unknown left" in progress.describe()


def _summary(agreeing: bool, datapoints: int = 6) -> dict:
    votes = {}
    for n in range(datapoints):
        votes[(f"d{n}", "p1")] = "pos"
        votes[(f"d{n}", "p2")] = "pos" if agreeing else "neg"
    return aggregate(responses(votes), [CHOICE]).summary


def test_the_alert_waits_for_enough_answers_and_fires_below_the_threshold():
    alerts = AlertSpec(min_agreement=0.5, after_answers=12)
    assert alert_message(alerts, _summary(agreeing=False)) is not None  # 12 answers, α far below 0.5
    assert alert_message(AlertSpec(min_agreement=0.5, after_answers=13), _summary(agreeing=False)) is None  # too few yet
    assert alert_message(alerts, _summary(agreeing=True)) is None  # α undefined (one answer value): no alert
    assert alert_message(None, _summary(agreeing=False)) is None


def test_places_beyond_the_task_groups_raise_the_annotators_per_task():
    assert _places_fields({"total_task_groups": 6, "annotators_per_task": 3}, 18) == {"total_available_places": 18}
    assert _places_fields({"total_task_groups": 6, "annotators_per_task": 3}, 21) == {
        "total_available_places": 21, "data_collection_metadata": {"annotators_per_task": 4}}


def test_the_live_fields_load_and_keep_the_work_fingerprint(spec):  # noqa: F811
    plain = AnnotationJob.from_dict(spec)
    live = AnnotationJob.from_dict({**spec, "partial_results_every_seconds": 30,
                                    "alerts": {"min_agreement": 0.4, "pause_on_alert": True},
                                    "quality": {"blocklist_group": "careless"}})
    assert plain.partial_results_every_seconds == 600 and live.alerts.after_answers == 20
    assert live.work_fingerprint("a" * 64) == plain.work_fingerprint("a" * 64)
    excluding = AnnotationJob.from_dict({**spec, "quality": {"exclude_groups": ["careless"]}})
    assert excluding.work_fingerprint("a" * 64) != plain.work_fingerprint("a" * 64)  # it changes who takes the study


@pytest.mark.parametrize("changes, path", [
    ({"alerts": {"min_agreement": 0.4}, "partial_results_every_seconds": 0}, "alerts"),
    ({"alerts": {"after_answers": 3}}, "alerts.min_agreement"),
    ({"quality": {"exclude_groups": ["a"], "allow_groups": ["a"]}}, "quality.exclude_groups"),
    ({"quality": {"blocklist": "a"}}, "quality.blocklist"),
    ({"partial_results_every_seconds": -1}, "partial_results_every_seconds"),
])
def test_bad_live_fields_are_refused_naming_the_field(spec, changes, path):  # noqa: F811
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_dict({**spec, **changes})
    assert path in {problem.path for problem in caught.value.problems}
