"""Who is rejected and who gets which bonus, decided from the results (no API calls, no Prefect).

- :func:`attention_failures`: per participant, the attention-check rows answered wrong (the first choice
  instruction's answer against the gold cell of a marked row).
- :func:`plan_rejections`: the submissions AWAITING REVIEW of participants the spec's ``reject`` rules flag.
- :func:`plan_bonuses`: participant id → bonus cents, from ``bonus.per_submission_cents`` and ``when`` (per
  submission not rejected, returned or timed out) or from the bonus file; rejected participants get none.
- :func:`csv_bonuses`: the ``csv_bonuses`` body of ``POST /api/v1/submissions/bonus-payments/`` (§7 of
  ../shared/docs/prolific-api-current.md): amounts as decimals in major units, converted from whole cents
  exactly (``150`` → ``1.50``; no rounding happens).
- :func:`bonus_budget_problem`: whether paying a plan keeps the job within ``max_budget`` (rewards, fees, tax and
  bonuses already paid, as the study's cost §5.5 shows them, plus the plan priced by the account's calculator §5.6).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from taskbuilder.cost import money
from taskbuilder.jobspec.payments import BonusSpec, RejectSpec, read_bonus_csv
from taskbuilder.report import split_joined

BONUSED_STATUSES = ("AWAITING REVIEW", "APPROVED", "PARTIALLY APPROVED")
"""Submission statuses a per-submission bonus is paid for (work done, not rejected)."""


def attention_failures(responses: pd.DataFrame, instruction: dict, attention_column: str | None,
                       gold_column: str | None) -> dict[str, int]:
    """Participant id → attention-check rows (a non-empty cell in ``attention_column`` other than 0/false/no)
    whose answer to ``instruction`` (the first choice instruction's payload) is not the row's gold. Empty when
    either column is missing from ``responses`` (the tidy table of :mod:`taskbuilder.report`)."""
    if not attention_column or not gold_column or attention_column not in responses or gold_column not in responses:
        return {}
    cells = responses[attention_column].astype(str)
    marked = (cells.str.strip() != "") & ~cells.str.strip().str.lower().isin(["0", "false", "no"])
    rows = responses[marked & (responses["instruction"] == instruction["description"])
                     & (responses["instruction_type"] == instruction["type"]) & (responses[gold_column] != "")]
    values = [option["value"] for option in instruction.get("options") or []]
    failed: dict[str, int] = {}
    for participant, answer, gold in zip(rows["participant_id"], rows["answer"], rows[gold_column]):
        if split_joined(str(answer), values) != split_joined(str(gold), values):
            failed[participant] = failed.get(participant, 0) + 1
    return failed


def _figure(participants: pd.DataFrame, participant_id: str, column: str) -> float | None:
    values = participants.loc[participants["participant_id"] == participant_id, column]
    value = float(values.iloc[0]) if len(values) else math.nan
    return None if math.isnan(value) else value


def flagged_for_rejection(reject: RejectSpec, participants: pd.DataFrame, failed_checks: dict[str, int]) -> dict[str, str]:
    """Participant id → why the ``reject`` rules flag them (any rule; a missing figure flags nobody)."""
    reasons: dict[str, str] = {}
    for participant_id in participants["participant_id"]:
        agreement = _figure(participants, participant_id, "agreement")
        gold = _figure(participants, participant_id, "gold_accuracy")
        why = []
        if reject.below_agreement is not None and agreement is not None and agreement < reject.below_agreement:
            why.append(f"agreement {agreement:.2f} < {reject.below_agreement}")
        if reject.below_gold_accuracy is not None and gold is not None and gold < reject.below_gold_accuracy:
            why.append(f"gold accuracy {gold:.2f} < {reject.below_gold_accuracy}")
        failed = failed_checks.get(participant_id, 0)
        if reject.failed_attention_checks is not None and failed >= reject.failed_attention_checks:
            why.append(f"{failed} attention checks failed")
        if why:
            reasons[participant_id] = ", ".join(why)
    return reasons


def plan_rejections(flagged: dict[str, str], submissions: list[dict[str, Any]]) -> list[str]:
    """Ids of the submissions AWAITING REVIEW of the ``flagged`` participants, in the order given."""
    return [s["id"] for s in submissions if s.get("status") == "AWAITING REVIEW" and s.get("participant_id") in flagged]


def plan_bonuses(bonus: BonusSpec, participants: pd.DataFrame, submissions: list[dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    """``(participant id → bonus cents, notes)``. A rule pays ``per_submission_cents`` for each submission in
    :data:`BONUSED_STATUSES` of a participant meeting every ``when`` threshold given; a bonus file pays its lines
    for participants with such a submission; anyone else in the file is left out, named in the notes.
    Raises :class:`taskbuilder.jobspec.payments.BonusCsvError` when the bonus file cannot be read."""
    bonused: dict[str, int] = {}
    for submission in submissions:
        if submission.get("status") in BONUSED_STATUSES:
            bonused[submission["participant_id"]] = bonused.get(submission["participant_id"], 0) + 1
    if bonus.csv is not None:
        lines = read_bonus_csv(bonus.csv)
        left_out = [participant for participant, _ in lines if participant not in bonused]
        notes = [f"bonus file {bonus.csv}: {len(left_out)} participant(s) have no accepted or pending submission in "
                 f"the study and are not paid: {', '.join(left_out[:20])}"] if left_out else []
        return {participant: cents for participant, cents in lines if participant in bonused}, notes
    when = bonus.when
    plan = {}
    for participant_id, count in bonused.items():
        agreement = _figure(participants, participant_id, "agreement") if participant_id in set(participants["participant_id"]) else None
        gold = _figure(participants, participant_id, "gold_accuracy") if participant_id in set(participants["participant_id"]) else None
        if when is not None and when.min_agreement is not None and (agreement is None or agreement < when.min_agreement):
            continue
        if when is not None and when.min_gold_accuracy is not None and (gold is None or gold < when.min_gold_accuracy):
            continue
        plan[participant_id] = bonus.per_submission_cents * count  # type: ignore[operator]
    return dict(sorted(plan.items())), []


def csv_bonuses(plan: dict[str, int]) -> str:
    """``<participant_id>,<amount>`` lines (§7), the amount a decimal in major units: ``150`` cents → ``1.50``."""
    return "".join(f"{participant},{cents // 100}.{cents % 100:02d}\n" for participant, cents in plan.items())


def bonus_budget_problem(*, plan_cents: int, plan_price_cents: int, spent_cents: int, max_budget_cents: int,
                         currency: str) -> str | None:
    """Why paying the plan would pass ``max_budget`` (``None`` when it fits): ``spent_cents`` (the study's cost so
    far: rewards, fees, tax and bonuses paid) plus ``plan_price_cents`` (the plan with fees and VAT, the account's
    calculator) against ``max_budget_cents``."""
    total = spent_cents + plan_price_cents
    if total <= max_budget_cents:
        return None
    return (f"bonuses of {money(plan_cents, currency)} ({money(plan_price_cents, currency)} with fees and VAT) would "
            f"bring the job to {money(total, currency)}, over max_budget {money(max_budget_cents, currency)} "
            f"({money(spent_cents, currency)} spent): none of them were paid. Raise max_budget and run the job again "
            "to pay them (it resumes; nobody is paid twice).")
