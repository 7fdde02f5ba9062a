"""Was a bulk bonus payment paid? Judged from evidence about *this* payment only (no API calls, no Prefect).

§7 of ../shared/docs/prolific-api-current.md offers no call that reads a bulk bonus payment's status, and its pay
call is not idempotent. What the API does show is the study's cost (§5.5, ``GET /api/v1/studies/{id}/cost/``):
its ``bonuses`` part counts the bonuses paid *for that study*. A job's bonuses go to its one study, so the study's
bonus rewards growing by exactly the payment's amount since the figures recorded before the pay call is evidence
of this payment. The paying balance is not: any other spending of the workspace (another job publishing,
an approval, a bonus paid by hand) moves it too, so a fallen balance never counts as "paid"; it only makes an
unmoved study ambiguous (§7 pays asynchronously: the balance may move before the study's cost shows it).

:func:`payment_evidence` answers ``paid``, ``unpaid`` (nothing moved: a new pay call is safe) or ``unknown``
(anything else: no pay call may be sent; the reason says what to check by hand).
"""

from __future__ import annotations

from typing import Any, Literal

from taskbuilder.cost import money

Evidence = Literal["paid", "unpaid", "unknown"]


def payment_evidence(before: dict[str, Any], now: dict[str, Any], payment: dict[str, Any]) -> tuple[Evidence, str]:
    """``(verdict, why)`` for bulk bonus ``payment`` (``{id, study_id, amount_cents, total_amount_cents}``) from
    the study's figures recorded ``before`` its pay call and read ``now`` (each ``{bonus_rewards_cents,
    balance_cents (None when unknown), currency}``, as :func:`tasks.payments.read_spending` returns them).

    - ``paid``: the study's bonus rewards grew by exactly ``amount_cents``;
    - ``unpaid``: they did not move and the balance, read before and after, did not fall by the payment's total or
      more (a balance that could not be read is no evidence: ``unknown``);
    - ``unknown``: they grew by another amount (another bonus for this study, or a payment counted in part or
      twice), or did not move while the balance fell by at least the total (paid but not counted yet, or
      other spending): the caller must not pay; ``why`` names the figures and what to check.
    """
    currency = now.get("currency") or before.get("currency") or ""
    grew = int(now["bonus_rewards_cents"]) - int(before["bonus_rewards_cents"])
    amount, total = int(payment["amount_cents"]), int(payment["total_amount_cents"])
    fell = (None if now.get("balance_cents") is None or before.get("balance_cents") is None
            else int(before["balance_cents"]) - int(now["balance_cents"]))
    what = f"bonus payment {payment['id']} ({money(amount, currency)}, {money(total, currency)} with fees and VAT)"
    check = (f"Check study {payment['study_id']}'s bonuses in Prolific's app: if {what} was paid, nothing is left to do "
             "(this job will not pay it again); if it was not, pay it there. Then `taskbuilder pay settle JOB.yaml` records "
             "it as settled so the job goes on. No pay call was sent now.")
    if grew == amount:
        return "paid", f"the study's bonuses grew by {money(grew, currency)}, the amount of {what}"
    if grew == 0 and fell is None:
        return "unknown", (f"the study's bonuses have not moved since the pay call of {what}, and the paying balance could "
                           f"not be read before and after it (the study's cost may not show a payment yet). {check}")
    if grew == 0 and fell < total:
        return "unpaid", f"the study's bonuses have not moved since the pay call of {what} was sent"
    if grew == 0:
        return "unknown", (f"the study's bonuses have not moved since the pay call of {what}, but the balance fell by "
                           f"{money(fell or 0, currency)}: Prolific may not have counted the payment in the study yet, or "
                           f"the money went elsewhere. {check}")
    return "unknown", (f"the study's bonuses grew by {money(grew, currency)} since the pay call of {what}, not by its "
                       f"amount: another bonus was paid for this study, or this one was counted in part or more than once. "
                       f"{check}")
