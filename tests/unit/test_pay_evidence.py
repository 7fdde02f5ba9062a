"""Was a bonus payment paid? Only evidence of this payment counts (taskbuilder/pay_evidence.py)."""

from __future__ import annotations

from taskbuilder.pay_evidence import payment_evidence

PAYMENT = {"id": "bp1", "study_id": "st1", "amount_cents": 100, "total_amount_cents": 133}


def _figures(bonus_rewards_cents: int, balance_cents: int | None) -> dict:
    return {"bonus_rewards_cents": bonus_rewards_cents, "balance_cents": balance_cents, "currency": "GBP"}


def test_the_study_s_bonuses_growing_by_the_amount_is_paid():
    verdict, why = payment_evidence(_figures(50, 10_000), _figures(150, 9_867), PAYMENT)
    assert verdict == "paid" and "1.00 GBP" in why


def test_nothing_moved_is_unpaid_even_when_other_spending_moved_the_balance_a_little():
    assert payment_evidence(_figures(0, 10_000), _figures(0, 10_000), PAYMENT)[0] == "unpaid"
    assert payment_evidence(_figures(0, 10_000), _figures(0, 9_900), PAYMENT)[0] == "unpaid"   # fell less than 1.33


def test_without_the_balance_an_unmoved_study_is_unknown_not_unpaid():
    """The study's cost may lag the payment (§7 pays asynchronously): with no balance to say nothing was spent,
    a second pay call could pay twice."""
    for before, now in ((None, None), (10_000, None), (None, 10_000)):
        verdict, why = payment_evidence(_figures(0, before), _figures(0, now), PAYMENT)
        assert verdict == "unknown" and "could not be read" in why and "No pay call was sent" in why


def test_a_balance_that_fell_by_the_total_is_not_proof_of_this_payment():
    """Other spending (another job publishing) can move the balance by as much: unknown, never paid again."""
    verdict, why = payment_evidence(_figures(0, 10_000), _figures(0, 9_000), PAYMENT)
    assert verdict == "unknown"
    assert "st1" in why and "bp1" in why and "No pay call was sent" in why and "10.00 GBP" in why


def test_the_study_s_bonuses_growing_by_another_amount_is_unknown():
    for grown in (40, 200, 130):                      # in part, twice, or another bonus of the study beside it
        verdict, why = payment_evidence(_figures(0, 10_000), _figures(grown, 10_000 - 2 * 133), PAYMENT)
        assert verdict == "unknown" and "not by its amount" in why, grown
