"""Bonus and review endpoints (``../shared/docs/prolific-api-current.md`` §7, §5.7): set up a bulk bonus
payment, pay it, and move one submission (APPROVE, REJECT with its reason).

Paying is **not idempotent** (§7: "Sending multiple requests with the same bulk bonus payment ID will result
in participants being paid multiple times"): :meth:`BonusEndpoints.pay_bonus_payments` sends exactly one
request and never retries; the caller (``tasks/payments.py``) checks the study's cost before any repeat.
"""

from __future__ import annotations

from taskbuilder.client.base import ClientBase
from taskbuilder.models import (
    BonusPayment,
    CreateBonusPaymentsRequest,
    Submission,
    TransitionSubmissionRequest,
)


class BonusEndpoints(ClientBase):
    """``/api/v1/submissions/bonus-payments/``, ``/api/v1/bulk-bonus-payments/{id}/pay/`` (§7) and
    ``/api/v1/submissions/{id}/transition/`` (§5.7)."""

    def create_bonus_payments(self, study_id: str, csv_bonuses: str) -> BonusPayment:
        """``POST /api/v1/submissions/bonus-payments/`` ``{study_id, csv_bonuses}`` (§7, operation
        ``create-bonus-payments``) → 201, the bulk bonus payment (``id`` to pay it; ``amount``, ``fees``, ``vat``,
        ``total_amount`` in minor units). ``csv_bonuses``: one ``<participant_id>,<amount>`` line each, the amount
        a decimal in the study's currency, major units (``1.50`` = £1.50). Pays nothing. A 400 names the ids that
        did not take part (:class:`taskbuilder.errors.BadRequest`)."""
        body = CreateBonusPaymentsRequest(study_id=study_id, csv_bonuses=csv_bonuses).body()
        return self._call(BonusPayment, "POST", "/api/v1/submissions/bonus-payments/", json=body)

    def pay_bonus_payments(self, bonus_payment_id: str) -> None:
        """``POST /api/v1/bulk-bonus-payments/{bonus_payment_id}/pay/`` (§7, operation ``pay-bonus-payments``) →
        202; the answer's body is ignored. **Pays every line of the bulk payment each time it is called**: send it
        once per bulk payment; an attempt whose answer was lost must be checked (the study's cost, §5.5), never
        repeated blindly."""
        self._request("POST", "/api/v1/bulk-bonus-payments/{bonus_payment_id}/pay/",
                      path_params={"bonus_payment_id": bonus_payment_id})

    def transition_submission(
        self, submission_id: str, action: str, *, message: str | None = None, rejection_category: str | None = None
    ) -> Submission:
        """``POST /api/v1/submissions/{submission_id}/transition/`` ``{action, message?, rejection_category?}``
        (§5.7, operation ``transition-submission``) → the submission. ``REJECT`` needs ``message`` (at least 100
        characters, shown to the participant) and ``rejection_category`` (§5.7's list). The API ignores a
        second identical request; changes are irreversible."""
        body = TransitionSubmissionRequest(action=action, message=message, rejection_category=rejection_category).body()
        return self._call(Submission, "POST", "/api/v1/submissions/{submission_id}/transition/",
                          path_params={"submission_id": submission_id}, json=body)
