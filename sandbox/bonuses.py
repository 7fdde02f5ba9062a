"""Bonuses (now §7 of ../shared/docs/prolific-api-current.md): set up a bulk bonus payment from a CSV of
participant or submission ids and amounts, and pay it, with a ledger that shows every payment made.

``POST /submissions/bonus-payments/`` ``{study_id, csv_bonuses}`` checks the lines and stores a bulk bonus
payment (nothing is paid yet). ``POST /bulk-bonus-payments/{id}/pay/`` pays it **each time it is called**, as
§7 warns ("not idempotent ... participants being paid multiple times"): the balance falls by its
``total_amount`` every call, the ledger gets one entry per line per call, and the study's cost
(``GET /studies/{id}/cost/``, ``costs.py``) counts every payment in its ``bonuses`` part. The ledger is on the
control plane: ``GET /_sandbox/bonus-ledger``.

Amounts in the CSV are decimals in the study's currency, major units (``4.25`` = £4.25); the answers are in
minor units, fees and VAT as a study's rewards (``costs.parts_cents``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field

from sandbox.costs import parts_cents
from sandbox.ids import iso, object_id
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, bad_request, json_response, not_found, validate

AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")
"""A bonus amount as the CSV carries it: a decimal in major units, at most two decimals (sandbox's rule)."""


class BonusPaymentsCreate(BaseModel):
    """Body of ``POST /submissions/bonus-payments/`` (§7): both fields (the docs mark them optional; the sandbox
    needs both, see ASSUMPTIONS.md)."""

    model_config = ConfigDict(strict=True)
    study_id: str = Field(min_length=1)
    csv_bonuses: str = Field(min_length=1)


def _lines(sb: State, study: dict, csv_bonuses: str) -> list[dict]:
    """The CSV's lines as ``{participant_id, submission_id, amount_cents}``; 400 listing every bad line."""
    submissions = sb.store.list("submission", study_id=study["id"])
    by_id = {s["id"]: s for s in submissions}
    by_participant = {s["participant_id"]: s for s in submissions}
    lines, unknown, bad = [], [], []
    for number, raw in enumerate(csv_bonuses.splitlines(), start=1):
        if not raw.strip():
            continue
        parts = [part.strip() for part in raw.split(",")]
        if len(parts) != 2 or not AMOUNT.match(parts[1]):
            bad.append(f"line {number}: expected '<participant_id or submission_id>,<amount>' with the amount a "
                       f"decimal in {study['currency_code']} such as 1.50, got {raw!r}")
            continue
        try:
            cents = int(Decimal(parts[1]) * 100)
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            bad.append(f"line {number}: bad amount {parts[1]!r}")
            continue
        if cents <= 0:
            bad.append(f"line {number}: the amount must be above 0")
            continue
        submission = by_id.get(parts[0]) or by_participant.get(parts[0])
        if submission is None:
            unknown.append(parts[0])
            continue
        lines.append({"participant_id": submission["participant_id"],
                      "submission_id": submission["id"] if parts[0] in by_id else None, "amount_cents": cents})
    if unknown:
        bad.append(f"these ids did not take part in study {study['id']}: {', '.join(unknown)}")
    if bad:
        raise ApiError(400, {"csv_bonuses": bad})
    if not lines:
        raise bad_request("csv_bonuses", "no bonus lines")
    return lines


def create(sb: State, req: Request) -> Response:
    """``POST /submissions/bonus-payments/`` ``{study_id, csv_bonuses}`` (§7) → 201 ``{id, study, amount, fees,
    vat, total_amount}`` (minor units; ``total_amount`` is what paying deducts from the balance). 400 naming
    ``study_id`` (unknown study) or ``csv_bonuses`` (bad lines; ids that did not take part, all named)."""
    body = validate(BonusPaymentsCreate, req.json_object())
    study = sb.store.get("study", body.study_id)
    if study is None:
        raise bad_request("study_id", f"no study with id {body.study_id!r}")
    lines = _lines(sb, study, body.csv_bonuses)
    parts = parts_cents(sb.settings, sum(line["amount_cents"] for line in lines), 1)
    payment = {"id": object_id(), "study": study["id"], "amount": parts["rewards"], "fees": parts["fees"],
               "vat": parts["tax"], "total_amount": parts["total"], "currency_code": study["currency_code"],
               "lines": lines, "times_paid": 0, "created_at": iso()}
    sb.store.put("bonus_payment", payment)
    return json_response(201, public(payment))


def public(payment: dict) -> dict:
    """The bulk bonus payment as §7's "Bonus created" answer shows it."""
    return {name: payment[name] for name in ("id", "study", "amount", "fees", "vat", "total_amount")}


def pay(sb: State, req: Request) -> Response:
    """``POST /bulk-bonus-payments/{id}/pay/`` (§7) → 202. Pays every line again on every call (not idempotent):
    debits ``total_amount`` from the balance, adds one ledger entry per line and each amount to its submission's
    ``bonus_payments``. 404 for an unknown id; 400 naming ``total_amount`` when the balance is short."""
    payment = sb.store.get("bonus_payment", req.params["bonus_payment_id"])
    if payment is None:
        raise not_found("bulk bonus payment", req.params["bonus_payment_id"])
    balance = sb.settings.account_balance_cents
    if balance < payment["total_amount"]:
        raise ApiError(400, {"total_amount": [f"insufficient balance: {payment['total_amount']} minor units needed, "
                                              f"the balance is {balance}"]})
    sb.settings.account_balance_cents = balance - payment["total_amount"]
    payment["times_paid"] += 1
    sb.store.put("bonus_payment", payment)
    now = iso()
    for line in payment["lines"]:
        sb.store.put("bonus_ledger", {"id": object_id(), "bonus_payment_id": payment["id"], "study_id": payment["study"],
                                      "call": payment["times_paid"], "paid_at": now, **line})
        submission = sb.store.get("submission", line["submission_id"]) if line["submission_id"] else next(
            iter(sb.store.list("submission", study_id=payment["study"], participant_id=line["participant_id"])), None)
        if submission is not None:
            submission["bonus_payments"] = [*(submission.get("bonus_payments") or []), line["amount_cents"]]
            sb.store.put("submission", submission)
    return json_response(202, "Successfully received bonus payments request.")


def ledger(sb: State, req: Request) -> Response:
    """``GET /_sandbox/bonus-ledger[?study_id=]`` (control plane) → ``{"entries": [...], "paid_cents_by_participant":
    {participant_id: cents}, "pay_calls": {bonus_payment_id: times paid}}``; an entry is ``{id, bonus_payment_id,
    study_id, participant_id, submission_id, amount_cents, call, paid_at}``."""
    study_id = req.query_value("study_id")
    with sb.lock:
        entries = sb.store.list("bonus_ledger", **({"study_id": study_id} if study_id else {}))
        payments = sb.store.list("bonus_payment", **({"study": study_id} if study_id else {}))
    by_participant: dict[str, int] = {}
    for entry in entries:
        by_participant[entry["participant_id"]] = by_participant.get(entry["participant_id"], 0) + entry["amount_cents"]
    return json_response(200, {"entries": entries, "paid_cents_by_participant": by_participant,
                               "pay_calls": {p["id"]: p["times_paid"] for p in payments}})
