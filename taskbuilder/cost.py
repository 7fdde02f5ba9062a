"""The job's cost as the account prices it, checked against ``max_budget`` and the paying balance, failing closed.

Two checks (``../shared/docs/prolific-api-current.md`` §5.5, §5.6):

1. **Before anything is created**, the account's cost calculator (``POST /api/v1/study-cost-calculator/``)
   prices the job's places (task groups × ``annotators_per_task``) at its reward: the *quote*. Over
   ``max_budget`` → :class:`BudgetExceeded`, and nothing is created.
2. **Before PUBLISH**, the draft study's own cost (``GET /api/v1/studies/{id}/cost/``) is read. It must be
   complete (rewards, fees and tax all present), its rewards must be reward × the planned places, and the
   study must have exactly the planned places; otherwise :class:`CostUnknown`. The figure checked is the
   largest of the quote, the study's cost and the study's own ``total_cost`` when it has one (each named);
   over ``max_budget`` → :class:`BudgetExceeded`; more than the paying balance → :class:`BalanceTooLow`.

Every amount is in minor units (cents or pence) of the account's currency; fractional amounts from the
API are rounded up. Nothing here talks to the API: the task layer (``tasks/costs.py``) reads the figures.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from taskbuilder.errors import Refusal
from taskbuilder.models import Study, StudyCost


class CostRefused(Refusal):
    """The job is not published (or not started) because of its cost; the message says why and what to do."""


class BudgetExceeded(CostRefused):
    """The account's figure for the job is above ``max_budget``."""


class CostUnknown(CostRefused):
    """The cost could not be read, was incomplete, or disagrees with the job's places: never published."""


class BalanceTooLow(CostRefused):
    """The balance that pays for the study does not cover its cost."""


def task_group_count(rows: int, tasks_per_group: int, group_ids: list[str] | None = None) -> int:
    """Task groups of a dataset: the distinct values of the task-group column when it has one (``group_ids``),
    else ``ceil(rows / tasks_per_group)`` (§2.6: groups of ``tasks_per_group``, the last may be smaller)."""
    if group_ids is not None:
        return len(set(group_ids))
    return math.ceil(rows / tasks_per_group)


def cents(amount: float) -> int:
    """An API amount in minor units as a whole number of cents, rounded up (never under-counted)."""
    return math.ceil(round(amount, 6))


class JobPrice(BaseModel):
    """The calculator's quote of the job (§5.6), before anything is created.

    ``places`` = ``task_groups`` × ``annotators_per_task``; ``quote_cents`` = the calculator's
    ``total_cost`` (fees and VAT included at the account's rates), rounded up; amounts in cents.
    """

    reward_cents: int
    task_groups: int
    annotators_per_task: int
    places: int
    quote_cents: int
    currency_code: str
    max_budget_cents: int

    @property
    def within_budget(self) -> bool:
        """True when the quote does not exceed ``max_budget_cents``."""
        return self.quote_cents <= self.max_budget_cents

    def refuse_over_budget(self) -> None:
        """Raise :class:`BudgetExceeded` (nothing is created yet) when the quote is over budget."""
        if not self.within_budget:
            raise BudgetExceeded(
                f"the account's cost calculator prices this job at {money(self.quote_cents, self.currency_code)} "
                f"({counted(self.places, 'place')} = {counted(self.task_groups, 'task group')} × "
                f"{counted(self.annotators_per_task, 'annotator')}, "
                f"reward {self.reward_cents} cents each, fees and VAT included), over max_budget "
                f"{money(self.max_budget_cents, self.currency_code)}: nothing was created. Raise max_budget in the "
                "job spec, or lower reward, annotators_per_task or the number of task groups."
            )


class PublishCost(BaseModel):
    """The figures checked before PUBLISH: the quote, the study's own cost (§5.5) and ``total_cost``,
    the largest of them (``checked_cents``, from ``checked_source``) and the paying balance."""

    study_id: str
    places: int
    quote_cents: int
    study_cost_cents: int
    study_total_cost_cents: int | None
    checked_cents: int
    checked_source: str
    max_budget_cents: int
    balance_cents: int
    payer: str
    currency_code: str

    def to_markdown(self) -> str:
        """A markdown table of the account's figures, for the cost artifact and the approval form."""
        rows = [
            ("places", str(self.places)),
            ("cost calculator quote (before anything was created)", money(self.quote_cents, self.currency_code)),
            ("the draft study's cost (rewards + fees + tax)", money(self.study_cost_cents, self.currency_code)),
        ]
        if self.study_total_cost_cents is not None:
            rows.append(("the study's total_cost", money(self.study_total_cost_cents, self.currency_code)))
        rows += [
            (f"**checked: {self.checked_source}**", f"**{money(self.checked_cents, self.currency_code)}**"),
            ("max_budget", money(self.max_budget_cents, self.currency_code)),
            (f"available balance ({self.payer})", money(self.balance_cents, self.currency_code)),
        ]
        return "\n".join(["| item | amount |", "|---|---|", *(f"| {item} | {amount} |" for item, amount in rows)])


def counted(number: int, noun: str) -> str:
    """``1, "place"`` → ``"1 place"``; ``4, "place"`` → ``"4 places"`` (the plural adds an ``s``)."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def money(amount_cents: int, currency_code: str) -> str:
    """``4100`` → ``"41.00 GBP"``."""
    return f"{amount_cents / 100:,.2f} {currency_code}"


def check_before_publish(
    price: JobPrice, study: Study, study_cost: StudyCost, *, balance_cents: int | None, payer: str
) -> PublishCost:
    """Check the draft study's own cost before PUBLISH (see the module docstring); return the figures.

    Raises :class:`CostUnknown` when the study has no place count or another one than planned, when its cost
    has no complete rewards part (rewards, fees, tax) or its rewards are not reward × places, or when the
    balance is unknown; :class:`BudgetExceeded` when the largest figure is over ``max_budget``;
    :class:`BalanceTooLow` when it is more than ``balance_cents``.
    """
    where = f"study {study.id}"
    if study.total_available_places is None:
        raise CostUnknown(f"cannot check the cost of {where}: it reports no total_available_places. Not publishing.")
    if study.total_available_places != price.places:
        raise CostUnknown(
            f"{where} has {study.total_available_places} places, the job planned {price.places} "
            f"({price.task_groups} task groups × {price.annotators_per_task} annotators): its cost does not match "
            "the quote. Not publishing; check the batch's task groups and the study in Prolific."
        )
    part = study_cost.rewards
    total = part.total() if part is not None else None
    if part is None or total is None:
        raise CostUnknown(f"the cost of {where} (GET /api/v1/studies/{{id}}/cost/) is incomplete: rewards, fees "
                          "and tax are not all given. Not publishing.")
    rewards_cents = cents(part.rewards.amount)  # type: ignore[union-attr]
    if rewards_cents != price.reward_cents * price.places:
        raise CostUnknown(
            f"the cost of {where} counts {money(rewards_cents, price.currency_code)} of rewards, the job's places "
            f"need {money(price.reward_cents * price.places, price.currency_code)} ({price.places} × "
            f"{price.reward_cents} cents): the figures disagree. Not publishing."
        )
    bonuses = study_cost.bonuses.total() if study_cost.bonuses is not None else 0
    if bonuses is None:
        raise CostUnknown(f"the bonuses part of the cost of {where} is incomplete. Not publishing.")
    study_cost_cents = cents(total + bonuses)
    study_total = cents(study.total_cost) if study.total_cost is not None else None
    figures = {"the cost calculator's quote": price.quote_cents, "the study's cost": study_cost_cents}
    if study_total is not None:
        figures["the study's total_cost"] = study_total
    source, checked = max(figures.items(), key=lambda item: item[1])
    if balance_cents is None:
        raise CostUnknown(f"cannot read the available balance of {payer}. Not publishing {where}.")
    result = PublishCost(
        study_id=study.id, places=price.places, quote_cents=price.quote_cents, study_cost_cents=study_cost_cents,
        study_total_cost_cents=study_total, checked_cents=checked, checked_source=source,
        max_budget_cents=price.max_budget_cents, balance_cents=balance_cents, payer=payer,
        currency_code=price.currency_code,
    )
    if checked > price.max_budget_cents:
        raise BudgetExceeded(
            f"{where} would cost {money(checked, price.currency_code)} ({source}; the largest of the account's "
            f"figures), over max_budget {money(price.max_budget_cents, price.currency_code)}: it stays unpublished. "
            "Raise max_budget in the job spec or lower reward, annotators_per_task or the number of task groups."
        )
    if checked > balance_cents:
        raise BalanceTooLow(
            f"{where} would cost {money(checked, price.currency_code)} ({source}), more than the available balance "
            f"of {payer}, {money(balance_cents, price.currency_code)}: it stays unpublished. Top up that balance "
            "and run the job again (it resumes)."
        )
    return result
