"""What `taskbuilder run` prints at the end of a job: its cost, rounds and payments; refusals are not bugs."""

from __future__ import annotations

from flows.cli import closing_lines
from taskbuilder.cost import BudgetExceeded
from taskbuilder.failures import classify
from tasks.previews import PreviewRefused
from tasks.study_control import StudyControlRefused


def _checked(cents: int) -> dict:
    return {"checked_cents": cents, "currency_code": "GBP"}


def test_a_published_job_says_what_it_cost_and_spent():
    summary = {"published": True, "cost": {"quote": {"quote_cents": 7000, "currency_code": "GBP"}, "checked": _checked(7200)},
               "payments": {"spent": {"rewards_cents": 5400, "fees_cents": 1800, "tax_cents": 0, "bonuses_cents": 550,
                                      "currency": "GBP"},
                            "bonus": {"participants": 11, "amount_cents": 550, "state": "paid"},
                            "rejected_submissions": ["s1", "s2"]}}
    lines = closing_lines(summary)
    assert lines[0].startswith("cost: 72.00 GBP (the study's own cost")
    assert "spent: rewards 54.00 GBP, fees 18.00 GBP, tax 0.00 GBP, bonuses 5.50 GBP" in lines
    assert "bonus: 11 participant(s), 5.50 GBP, paid" in lines and "rejected: 2 submission(s)" in lines


def test_a_re_run_of_a_published_job_says_it_resumed_first():
    lines = closing_lines({"published": True, "resumed": True, "cost": {"quote": {}, "checked": _checked(7200)}})
    assert lines[0] == "resumed: the job's study was published by an earlier run; this run created and published nothing"
    assert lines[1].startswith("cost: 72.00 GBP (the study's own cost")
    assert not any(line.startswith("resumed") for line in closing_lines({"published": True, "resumed": False,
                                                                          "cost": {"checked": _checked(7200)}}))


def test_an_unpublished_job_shows_the_quote_and_that_nothing_was_spent():
    [line] = closing_lines({"published": False, "cost": {"quote": {"quote_cents": 1234, "currency_code": "USD"}, "checked": None}})
    assert line == "cost: 12.34 USD quoted by the account's calculator; nothing spent (not published)"


def test_a_job_in_rounds_names_every_study_and_the_total():
    summary = {"published": True, "cost": {"checked": _checked(400)}, "total_cost_cents": 8400, "below_target": ["r1", "r7"],
               "rounds": [{"kind": "pilot", "study_id": "a"}, {"kind": "main", "study_id": "b"}, {"kind": "followup", "study_id": "c"}]}
    lines = closing_lines(summary)
    assert "rounds: 3 (pilot a, main b, followup c); total 84.00 GBP" in lines
    assert any(line.startswith("below the target confidence: 2 datapoint(s)") for line in lines)


def test_a_job_that_stopped_early_says_so_first_and_rounds_show_their_spending():
    summary = {"published": True, "cost": {"checked": _checked(400)}, "total_cost_cents": 400, "below_target": [],
               "stopped": "ended after the pilot: thresholds not met (time ratio 0.0011 > 0.0001); 20 datapoints not asked",
               "rounds": [{"kind": "pilot", "study_id": "a"}],
               "payments": {"bonus": None, "rejected_submissions": [],
                            "spent": {"rewards_cents": 300, "fees_cents": 100, "tax_cents": 0, "bonuses_cents": 0, "currency": "GBP"}}}
    lines = closing_lines(summary)
    assert lines[0] == "stopped: ended after the pilot: thresholds not met (time ratio 0.0011 > 0.0001); 20 datapoints not asked"
    assert lines[1].startswith("cost of round 1: 4.00 GBP")
    assert "spent: rewards 3.00 GBP, fees 1.00 GBP, tax 0.00 GBP, bonuses 0.00 GBP" in lines
    assert not any(line.startswith("stopped") for line in closing_lines({**summary, "stopped": None}))


def test_refusals_stop_without_being_called_a_bug():
    from tasks.inputs import InputInvalid
    from tasks.pay_lock import PayLockUnavailable
    from tasks.payments import PayEvidenceUnclear, PayOutcomeUnknown

    bad_group = InputInvalid("quality: the workspace w1 has no participant group named 'x'")
    for refusal in (StudyControlRefused("cannot pause: it is COMPLETED"), PreviewRefused("no"), BudgetExceeded("over"), bad_group,
                    PayLockUnavailable("lock"), PayOutcomeUnknown("no answer"), PayEvidenceUnclear("unclear")):
        decision = classify(refusal)
        assert decision.action == "stop" and "a bug?" not in decision.reason
    assert "a bug?" in classify(KeyError("x")).reason
