"""Who is rejected and who gets which bonus (taskbuilder/payments.py), from hand-made results."""

from __future__ import annotations

import math

import pandas as pd

from taskbuilder.jobspec.payments import BonusSpec, RejectSpec
from taskbuilder.payments import (attention_failures, bonus_budget_problem, csv_bonuses, flagged_for_rejection,
                                  plan_bonuses, plan_rejections)

CHOICE = {"type": "multiple_choice", "description": "Sentiment?", "options": [{"label": "P", "value": "pos"}, {"label": "N", "value": "neg"}]}
MESSAGE = "m" * 100
PARTICIPANTS = pd.DataFrame({"participant_id": ["a", "b", "c"], "agreement": [0.9, 0.4, math.nan],
                             "gold_accuracy": [1.0, 0.5, 0.2]})
SUBMISSIONS = [{"id": "s1", "participant_id": "a", "status": "AWAITING REVIEW"},
               {"id": "s2", "participant_id": "a", "status": "APPROVED"},
               {"id": "s3", "participant_id": "b", "status": "AWAITING REVIEW"},
               {"id": "s4", "participant_id": "c", "status": "RETURNED"},
               {"id": "s5", "participant_id": "c", "status": "AWAITING REVIEW"}]


def test_attention_failures_count_wrong_answers_on_marked_rows_only():
    responses = pd.DataFrame({
        "participant_id": ["a", "a", "b", "b", "b"], "instruction": ["Sentiment?"] * 5, "instruction_type": ["multiple_choice"] * 5,
        "answer": ["pos", "neg", "neg", "neg", "pos"], "META_check": ["1", "", "yes", "1", "0"],
        "META_gold": ["pos", "pos", "pos", "pos", "neg"]})
    assert attention_failures(responses, CHOICE, "META_check", "META_gold") == {"b": 2}
    assert attention_failures(responses, CHOICE, None, "META_gold") == {}


def test_any_reject_rule_flags_and_a_missing_figure_flags_nobody():
    reject = RejectSpec(below_agreement=0.5, failed_attention_checks=2, category="LOW_EFFORT", message=MESSAGE)
    flagged = flagged_for_rejection(reject, PARTICIPANTS, {"c": 2, "a": 1})
    assert set(flagged) == {"b", "c"} and "agreement 0.40" in flagged["b"] and "2 attention checks" in flagged["c"]
    assert plan_rejections(flagged, SUBMISSIONS) == ["s3", "s5"]          # awaiting review only


def test_per_submission_bonus_pays_each_kept_submission_of_who_qualifies():
    plan, notes = plan_bonuses(BonusSpec(per_submission_cents=30), PARTICIPANTS, SUBMISSIONS)
    assert plan == {"a": 60, "b": 30, "c": 30} and notes == []              # the RETURNED one earns nothing
    strict = BonusSpec(per_submission_cents=30, when={"min_agreement": 0.5})
    assert plan_bonuses(strict, PARTICIPANTS, SUBMISSIONS)[0] == {"a": 60}  # c has no agreement figure


def test_bonus_file_pays_its_lines_for_participants_of_the_study(tmp_path):
    (tmp_path / "b.csv").write_text("participant_id,bonus_cents\na,125\nzz,50\n")
    plan, notes = plan_bonuses(BonusSpec(csv=str(tmp_path / "b.csv")), PARTICIPANTS, SUBMISSIONS)
    assert plan == {"a": 125} and "zz" in notes[0]


def test_amounts_become_major_unit_decimals_exactly():
    assert csv_bonuses({"a": 150, "b": 5, "c": 1000}) == "a,1.50\nb,0.05\nc,10.00\n"


def test_budget_counts_what_was_spent_and_the_priced_plan():
    assert bonus_budget_problem(plan_cents=100, plan_price_cents=133, spent_cents=800, max_budget_cents=933, currency="GBP") is None
    problem = bonus_budget_problem(plan_cents=100, plan_price_cents=133, spent_cents=800, max_budget_cents=932, currency="GBP")
    assert "none of them were paid" in problem and "9.33 GBP" in problem and "9.32 GBP" in problem
