"""A job's whole spending against ``max_budget``, for a change made while it runs (add places): every study of
the job (all rounds), the bonuses paid and the bonuses planned (no API calls, no Prefect).

Figures come from the caller (``tasks/study_control.py``): the study's new places priced by the account's
calculator (§5.6 of ../shared/docs/prolific-api-current.md), each other study's cost (§5.5: rewards, fees, tax and
bonuses paid), the bonuses paid for the study changed (§5.5's ``bonuses``) and the bonuses planned, priced like
the bonus step prices them (reward = their cents, one place). All amounts in cents of the study's currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taskbuilder.cost import cents, money


@dataclass(frozen=True)
class JobSpending:
    """What the job would cost after the change: ``places_cents`` (the changed study's places, priced),
    ``bonuses_paid_cents`` (paid for it so far, with fees and VAT), ``other_studies_cents`` (study id → its cost,
    the job's other rounds), ``bonuses_planned_cents`` (not paid yet, with fees and VAT) and ``planned_from``
    (what the planned figure is: a recorded payment, the spec's rule at the new places, a bonus file)."""

    places_cents: int
    bonuses_paid_cents: int = 0
    other_studies_cents: dict[str, int] = field(default_factory=dict)
    bonuses_planned_cents: int = 0
    planned_from: str = ""

    @property
    def total_cents(self) -> int:
        return self.places_cents + self.bonuses_paid_cents + sum(self.other_studies_cents.values()) + self.bonuses_planned_cents

    def parts(self, currency: str) -> str:
        """The parts in words, for a message: ``"places 12.00 GBP, study abc (round) 8.00 GBP, ..."``."""
        words = [f"the places {money(self.places_cents, currency)}"]
        if self.bonuses_paid_cents:
            words.append(f"bonuses paid {money(self.bonuses_paid_cents, currency)}")
        words += [f"study {study_id} {money(cents, currency)}" for study_id, cents in self.other_studies_cents.items()]
        if self.bonuses_planned_cents:
            words.append(f"bonuses planned {money(self.bonuses_planned_cents, currency)} ({self.planned_from})")
        return ", ".join(words)


def places_budget_problem(spending: JobSpending, *, study_id: str, places: int, max_budget_cents: int, currency: str) -> str | None:
    """Why ``places`` places on ``study_id`` would take the job over ``max_budget_cents`` (``None`` when they fit)."""
    total = spending.total_cents
    if total <= max_budget_cents:
        return None
    return (f"{places} places on study {study_id} would bring the job to {money(total, currency)} "
            f"({spending.parts(currency)}), over max_budget {money(max_budget_cents, currency)}: raise max_budget in the "
            "job spec to add them. Nothing was changed.")


def part_cents(part: object, name: str) -> int:
    """One amount of a study cost part (§5.5: ``rewards`` or ``bonuses``, each ``{rewards, fees, tax}``) in whole
    cents, rounded up; 0 when the part or the amount is absent."""
    amount = getattr(part, name, None) if part is not None else None
    return cents(amount.amount) if amount is not None else 0


def study_cost_cents(cost: object) -> tuple[int, int]:
    """``(rewards with fees and tax, bonuses with fees and tax)`` of a study's cost (§5.5), in cents."""
    parts = ("rewards", "fees", "tax")
    return (sum(part_cents(getattr(cost, "rewards", None), name) for name in parts),
            sum(part_cents(getattr(cost, "bonuses", None), name) for name in parts))
