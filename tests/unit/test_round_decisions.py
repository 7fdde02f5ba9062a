"""The rounds' decisions said in plain sentences, and the warning of a pilot that costs more than the plain job
(issue 19)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from taskbuilder.cost import JobPrice
from taskbuilder.pilot import PilotReport

import flows.pilot as pilot
from flows.job_round import RoundPlan
from flows.pilot import pilot_cost_warning, pilot_sentence
from flows.rounds import round_sentence

JOB = SimpleNamespace(adaptive=SimpleNamespace(target_confidence=0.85))


def _price(quote_cents: int, places: int = 1054) -> JobPrice:
    return JobPrice(reward_cents=10, task_groups=places, annotators_per_task=1, places=places, quote_cents=quote_cents,
                    currency_code="GBP", max_budget_cents=100_000)


def _plan(number: int, kind: str, rows: int, annotators: int, blocked: tuple[str, ...] = ()) -> RoundPlan:
    return RoundPlan("job", number, kind, Path("rows.csv"), rows, annotators, blocked)


def test_a_follow_up_round_is_said_with_its_rows_price_and_what_is_left():
    sentence = round_sentence(JOB, _plan(2, "followup", 1054, 1), _price(12_340), 100_000)
    assert sentence == ("Round 2: 1,054 datapoints below 0.85 get 1 more answer each; priced 123.40 GBP, "
                        "876.60 GBP left of max_budget")


@pytest.mark.parametrize("plan, said", [
    (_plan(1, "main", 3000, 2), "Round 1: 3,000 datapoints get 2 answers each (main)"),
    (_plan(1, "pilot", 40, 3), "Round 1: 40 datapoints get 3 answers each (pilot)"),
    (_plan(2, "main", 2960, 2), "Round 2: the 2,960 datapoints not in the pilot get 2 answers each"),
    (_plan(3, "main", 40, 1, ("pilot-study",)), "Round 3: the pilot's 40 datapoints get the 1 answer each they lack"),
])
def test_every_kind_of_round_says_which_datapoints_get_what(plan, said):
    assert round_sentence(JOB, plan, _price(500), 1000).startswith(said)
    assert round_sentence(JOB, plan, _price(500), 1000).endswith("priced 5.00 GBP, 5.00 GBP left of max_budget")


def test_the_pilot_decision_is_one_sentence_with_its_figures():
    report = PilotReport(datapoints=40, annotators_per_task=3, krippendorff_alpha={"Sentiment?": 0.71}, min_agreement=0.6,
                         median_minutes=6.0, estimated_minutes=5.0, time_ratio=1.2, max_time_ratio=1.5, reward_cents=100,
                         hourly_reward_cents=1000.0, recommended_hourly_cents=900, min_hourly_cents=600,
                         reward_at_pilot_timing_cents=90, full_job_places=600, full_job_cost_cents=72_000, passed=True,
                         decision="then: auto, going on")
    assert pilot_sentence(report) == (
        "Pilot (round 1): 40 datapoints × 3 answers; α of 'Sentiment?' 0.71 (goes on at ≥ 0.6); 1.20 times the "
        "estimated minutes (goes on at ≤ 1.5); thresholds met; then: auto, going on.")


def _run(rows: int, tasks_per_group: int, main_answers: int):
    job = SimpleNamespace(batch=SimpleNamespace(tasks_per_group=tasks_per_group), adaptive=None,
                          study=SimpleNamespace(annotators_per_task=main_answers, reward=100))
    return SimpleNamespace(job=job, report=SimpleNamespace(rows=rows), connection=None)


def test_a_pilot_split_badly_into_task_groups_is_warned_with_both_prices(monkeypatch):
    priced = []
    monkeypatch.setattr(pilot, "price_places", lambda connection, reward, places: priced.append(places) or places * 133)
    # 12 rows in groups of 3, main 2 answers: 8 places plain; a pilot of 4 rows (2 groups, one of 1 row) × 1,
    # the 8 others (3 groups) × 2 and the pilot's top-up (2 groups) × 1 need 2 + 6 + 2 = 10
    warning = pilot_cost_warning(_run(12, 3, 2), _plan(1, "pilot", 4, 1), "GBP")
    assert priced == [10, 8]
    assert "10 places (13.30 GBP)" in warning and "8 places (10.64 GBP)" in warning
    assert "multiple of 3" in warning


def test_a_pilot_in_whole_task_groups_costs_no_more_and_is_not_warned(monkeypatch):
    monkeypatch.setattr(pilot, "price_places", lambda *args: pytest.fail("priced though nothing to warn"))
    assert pilot_cost_warning(_run(12, 3, 2), _plan(1, "pilot", 6, 1), "GBP") is None
