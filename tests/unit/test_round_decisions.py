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
        "Pilot (round 1): 40 datapoints × 3 answers; α of 'Sentiment?' 0.71 (goes on at ≥ 0.6); median 6.00 minutes "
        "per submission against 5.0 estimated, a time ratio of 1.20 (goes on at ≤ 1.5); hourly reward 1000 cents an hour; "
        "the full job (600 places) at the pilot's timing 72000 cents; thresholds met; then: auto, going on.")


def test_the_pilot_shows_money_in_the_accounts_currency():
    report = _failing(currency_code="USD", hourly_reward_cents=1234.6, full_job_cost_cents=72_000, recommended_hourly_cents=900)
    sentence, markdown = pilot_sentence(report), report.to_markdown()
    assert "hourly reward 12.35 USD an hour" in sentence and "at the pilot's timing 720.00 USD;" in sentence
    assert "cents" not in sentence and "cents" not in markdown
    assert "Prolific recommends 9.00 USD" in markdown and "at that reward: 720.00 USD" in markdown
    assert "(ratio 0.0011, continue at ≤ 0.0001)" in markdown and "0.00," not in markdown  # the digits that matter


def _failing(**figures) -> PilotReport:
    values = dict(datapoints=10, annotators_per_task=1, krippendorff_alpha={"Sentiment?": 0.9}, min_agreement=0.6,
                  median_minutes=0.055, estimated_minutes=50.0, time_ratio=0.0011, max_time_ratio=0.0001, reward_cents=100,
                  hourly_reward_cents=109090.9, recommended_hourly_cents=900, min_hourly_cents=600,
                  reward_at_pilot_timing_cents=1, full_job_places=30, full_job_cost_cents=42, passed=False,
                  decision="then: auto, the job ends after the pilot")
    return PilotReport(**{**values, **figures})


def test_a_failed_pilot_names_the_threshold_with_the_digits_that_matter():
    sentence = pilot_sentence(_failing())
    assert "0.00 " not in sentence and "a time ratio of 0.0011 (goes on at ≤ 0.0001)" in sentence
    assert "thresholds not met: time ratio 0.0011 > 0.0001;" in sentence
    assert "median 0.055 minutes" in sentence and "hourly reward 109091 cents an hour" in sentence
    assert "the full job (30 places) at the pilot's timing 42 cents" in sentence
    low = _failing(krippendorff_alpha={"Sentiment?": 0.123}, time_ratio=None, median_minutes=None)
    assert low.unmet() == ["α of 'Sentiment?' 0.12 < 0.6", "time ratio unknown (no finished submission reports its time)"]


@pytest.mark.parametrize("then, decision, said", [
    ("auto", "then: auto, the job ends after the pilot", "ended after the pilot: thresholds not met (time ratio 0.0011 > 0.0001)"),
    ("stop", "then: stop, the job ends after the pilot", "ended after the pilot: ended by the spec (pilot.then: stop)"),
    ("approval", "then: approval, ana declined: too slow",
     "ended after the pilot: the reviewer did not approve (then: approval, ana declined: too slow)"),
])
def test_a_job_ended_after_its_pilot_says_why_and_what_was_never_asked(then, decision, said):
    assert pilot.pilot_stop(then, _failing(decision=decision), 20) == f"{said}; 20 datapoints not asked"
    assert pilot.pilot_stop(then, _failing(decision=decision), 1).endswith("; 1 datapoint not asked")


def test_a_round_over_what_is_left_quotes_the_spec_max_budget_and_the_spending_before():
    from taskbuilder.cost import BudgetExceeded
    from flows.rounds import refuse_round_over_budget

    with pytest.raises(BudgetExceeded) as refused:
        refuse_round_over_budget(_plan(2, "followup", 7, 1), _price(400, places=4), 5000, 200)
    assert str(refused.value).startswith("round 2 costs 4.00 GBP (4 places, fees and VAT included); 2.00 GBP of "
                                         "max_budget 50.00 GBP is left (48.00 GBP spent by earlier rounds)")
    refuse_round_over_budget(_plan(2, "followup", 7, 1), _price(200, places=1), 5000, 200)  # exactly what is left: launched


def test_the_last_adaptive_decision_is_said():
    from flows.rounds import last_round_sentence

    job = SimpleNamespace(adaptive=SimpleNamespace(target_confidence=0.85, max_annotators=5))
    assert last_round_sentence(job, 3, 0) == "Round 3: no datapoint below 0.85 with fewer than 5 answers; done"
    assert last_round_sentence(job, 3, 1).startswith("Round 3: 1 datapoint stays below 0.85 with 5 answers")
    assert last_round_sentence(job, 4, 2).startswith("Round 4: 2 datapoints stay below 0.85")


def test_one_place_one_task_group_is_said_in_the_singular():
    from taskbuilder.cost import BudgetExceeded, counted

    assert (counted(1, "place"), counted(1_054, "task group")) == ("1 place", "1,054 task groups")
    one = JobPrice(reward_cents=10, task_groups=1, annotators_per_task=1, places=1, quote_cents=500, currency_code="GBP",
                   max_budget_cents=100)
    with pytest.raises(BudgetExceeded, match=r"\(1 place = 1 task group × 1 annotator, "):
        one.refuse_over_budget()


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
