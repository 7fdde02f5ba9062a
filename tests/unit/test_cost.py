"""Unit tests of the money rules (taskbuilder.cost): the quote before anything is created, and the
draft study's own cost before PUBLISH, both failing closed (cases C02, C03)."""

from __future__ import annotations

import pytest

from taskbuilder.cost import (
    BalanceTooLow,
    BudgetExceeded,
    CostUnknown,
    JobPrice,
    check_before_publish,
    task_group_count,
)
from taskbuilder.models import Study, StudyCost


def price(quote_cents=4000, max_budget_cents=10_000, places=10) -> JobPrice:
    return JobPrice(reward_cents=300, task_groups=places, annotators_per_task=1, places=places, quote_cents=quote_cents,
                    currency_code="GBP", max_budget_cents=max_budget_cents)


def study(places=10, total_cost=None) -> Study:
    return Study.model_validate({"id": "s1", "status": "UNPUBLISHED", "reward": 300, "total_available_places": places,
                                 "total_cost": total_cost})


def cost(rewards=3000, fees=1000, tax=0, bonuses=None) -> StudyCost:
    parts = {"rewards": {"amount": rewards, "currency": "GBP"}, "fees": {"amount": fees, "currency": "GBP"}}
    if tax is not None:
        parts["tax"] = {"amount": tax, "currency": "GBP"}
    return StudyCost.model_validate({"rewards": parts, "bonuses": bonuses})


def test_task_groups_from_tasks_per_group_or_the_group_column():
    assert task_group_count(10, 1) == 10
    assert task_group_count(10, 3) == 4
    assert task_group_count(10, 5, ["a", "b", "a", "c"]) == 3


def test_quote_over_budget_is_refused_before_anything_is_created():
    with pytest.raises(BudgetExceeded, match="nothing was created"):
        price(quote_cents=6000, max_budget_cents=4100).refuse_over_budget()
    price(quote_cents=4100, max_budget_cents=4100).refuse_over_budget()


def test_the_largest_figure_is_checked_and_named():
    checked = check_before_publish(price(quote_cents=3500), study(total_cost=3900), cost(fees=1200),
                                   balance_cents=100_000, payer="workspace w")
    assert (checked.checked_cents, checked.checked_source) == (4200, "the study's cost")
    assert "the study's cost" in checked.to_markdown() and "42.00 GBP" in checked.to_markdown()


def test_c02_the_study_cost_over_budget_never_publishes():
    # the account's fee is 100%: the server's figure (6000) is above max_budget, whatever the quote said
    with pytest.raises(BudgetExceeded, match="60.00 GBP"):
        check_before_publish(price(quote_cents=4000, max_budget_cents=4100), study(total_cost=6000), cost(fees=3000),
                             balance_cents=100_000, payer="workspace w")


def test_c03_a_study_without_places_is_not_priced_at_zero():
    with pytest.raises(CostUnknown, match="total_available_places"):
        check_before_publish(price(), study(places=None), cost(), balance_cents=100_000, payer="w")


def test_places_that_disagree_with_the_plan_never_publish():
    with pytest.raises(CostUnknown, match="20 places"):
        check_before_publish(price(), study(places=20), cost(rewards=6000), balance_cents=100_000, payer="w")
    with pytest.raises(CostUnknown, match="disagree"):
        check_before_publish(price(), study(), cost(rewards=1500), balance_cents=100_000, payer="w")


def test_incomplete_or_missing_cost_never_publishes():
    with pytest.raises(CostUnknown, match="incomplete"):
        check_before_publish(price(), study(), cost(tax=None), balance_cents=100_000, payer="w")
    with pytest.raises(CostUnknown, match="incomplete"):
        check_before_publish(price(), study(), StudyCost.model_validate({"rewards": None}), balance_cents=100_000, payer="w")
    with pytest.raises(CostUnknown, match="bonuses"):
        check_before_publish(price(), study(), cost(bonuses={"rewards": {"amount": 1}}), balance_cents=100_000, payer="w")


def test_the_paying_balance_must_cover_the_cost_and_is_named():
    with pytest.raises(BalanceTooLow, match="workspace w1 \\(project p1\\)"):
        check_before_publish(price(), study(), cost(), balance_cents=3999, payer="workspace w1 (project p1)")
    with pytest.raises(CostUnknown, match="balance"):
        check_before_publish(price(), study(), cost(), balance_cents=None, payer="w")
    assert check_before_publish(price(), study(), cost(), balance_cents=4000, payer="w").checked_cents == 4000


def test_fractional_amounts_round_up():
    checked = check_before_publish(price(quote_cents=1), study(), cost(fees=1000.2), balance_cents=10_000, payer="w")
    assert checked.checked_cents == 4001
