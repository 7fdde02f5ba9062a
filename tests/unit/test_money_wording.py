"""Money is shown in one unit, the study's currency, everywhere a run talks about bonuses (not cents beside GBP)."""

from __future__ import annotations

import re

from flows.cli import closing_lines
from tasks.payments import _changed_after_paying


def test_the_bonus_closing_line_uses_the_study_s_currency_for_the_amount_and_its_cost():
    summary = {"published": True, "cost": {"quote": {}, "checked": None},       # no currency in the cost part
               "payments": {"spent": {"rewards_cents": 600, "fees_cents": 200, "tax_cents": 0, "bonuses_cents": 133, "currency": "GBP"},
                            "bonus": {"participants": 4, "amount_cents": 100, "total_amount_cents": 133, "state": "paid"}}}
    bonus = next(line for line in closing_lines(summary) if line.startswith("bonus:"))
    assert bonus == "bonus: 4 participant(s), 1.00 GBP (1.33 GBP with fees and VAT), paid"


def test_the_note_of_a_bonus_changed_after_paying_speaks_the_currency_not_cents():
    payment = {"id": "bp1", "amount_cents": 100, "participants": 4, "currency": "GBP",
               "plan": {"a": 25, "b": 25, "c": 25, "d": 25}}
    note = _changed_after_paying(payment, {"a": 40, "b": 40, "c": 40, "d": 40})
    assert "1.60 GBP for 4 participant(s)" in note and "(1.00 GBP, 4 participant(s))" in note and "0.60 GBP more" in note
    assert not re.search(r"\d cents", note)
