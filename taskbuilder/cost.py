"""The cost estimate of a study, checked against the job's budget before anything is published.

Formula (an assumption: Prolific documents no fee formula, API doc §10.7): rewards = reward ×
places; fee = rewards × ``fee_rate`` (default 1/3, to be checked against the account); VAT =
fee × ``vat_rate``; total = rewards + fee + VAT. All amounts are integers in minor units (cents or
pence) of the account's currency (``GET /api/v1/users/me/`` → ``currency_code``), rounded up.
"""

from __future__ import annotations

import math

from pydantic import BaseModel


class CostEstimate(BaseModel):
    """A study's estimated cost, in minor units (cents) of ``currency_code``."""

    reward_cents: int
    places: int
    rewards_cents: int
    fee_cents: int
    vat_cents: int
    total_cents: int
    currency_code: str
    max_budget_cents: int | None
    fee_rate: float
    vat_rate: float

    @property
    def within_budget(self) -> bool:
        """True when there is no budget or the total does not exceed it."""
        return self.max_budget_cents is None or self.total_cents <= self.max_budget_cents

    def to_markdown(self) -> str:
        """A small markdown table of the estimate, for a Prefect artifact or the approval form."""
        def money(cents: int) -> str:
            return f"{cents / 100:,.2f} {self.currency_code}"

        budget = "none" if self.max_budget_cents is None else money(self.max_budget_cents)
        verdict = "within budget" if self.within_budget else "**OVER BUDGET: will not publish**"
        return "\n".join(
            [
                "| item | amount |",
                "|---|---|",
                f"| reward per place | {money(self.reward_cents)} |",
                f"| places | {self.places} |",
                f"| rewards | {money(self.rewards_cents)} |",
                f"| service fee ({self.fee_rate:.2%}, assumed) | {money(self.fee_cents)} |",
                f"| VAT on fee ({self.vat_rate:.2%}) | {money(self.vat_cents)} |",
                f"| **total** | **{money(self.total_cents)}** |",
                f"| budget | {budget} ({verdict}) |",
            ]
        )


def estimate_cost(
    *, reward_cents: int, places: int, fee_rate: float, vat_rate: float, currency_code: str, max_budget_cents: int | None
) -> CostEstimate:
    """Compute the estimate (see the module docstring for the formula). Pure; raises nothing."""
    rewards = reward_cents * places
    fee = math.ceil(rewards * fee_rate)
    vat = math.ceil(fee * vat_rate)
    return CostEstimate(
        reward_cents=reward_cents,
        places=places,
        rewards_cents=rewards,
        fee_cents=fee,
        vat_cents=vat,
        total_cents=rewards + fee + vat,
        currency_code=currency_code,
        max_budget_cents=max_budget_cents,
        fee_rate=fee_rate,
        vat_rate=vat_rate,
    )
