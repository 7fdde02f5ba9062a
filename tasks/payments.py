"""Prefect tasks that pay people right: reject flagged submissions once, pay the job's bonuses exactly once.

Endpoints (``../shared/docs/prolific-api-current.md``): ``GET /api/v1/studies/{id}/submissions/`` and
``POST /api/v1/submissions/{id}/transition/`` (§5.7), ``POST /api/v1/submissions/bonus-payments/`` and
``POST /api/v1/bulk-bonus-payments/{id}/pay/`` (§7), ``GET /api/v1/studies/{id}/cost/`` (§5.5),
``POST /api/v1/study-cost-calculator/`` (§5.6), the balance (``prolific-api.md`` §7).

**Exactly-once pay.** §7's pay call is not idempotent, so the job record's ``bonus_payment`` keeps the bulk bonus
payment's id, its plan and its ``state`` (``created`` → ``paying`` → ``paid``; ``refused`` when over budget), and,
written *before* each pay call, the study's bonuses (§5.5) and the balance as they were. A retry or a re-run reads
that first: ``paid`` is never paid again; ``paying`` (a call sent, its answer unknown: lost, 500, time-out, a crash
right after) is checked after a settle wait against evidence of *this* payment
(:mod:`taskbuilder.pay_evidence`): the study's bonuses grew by exactly its amount means paid; only when they did
not move (and the balance did not fall by its total) is the call sent again, and in the same run only after an
error *answer* (a status): a call that got no answer (time-out, connection lost) may still be running at Prolific,
which pays asynchronously, so the run stops with :class:`PayOutcomeUnknown` instead and a later re-run checks
again. Anything else is unclear and stops the run (:class:`PayEvidenceUnclear`, saying what to check), never paid
again. The pay task has no Prefect retries of its own.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.client import normalise_base_url
from taskbuilder.cost import cents, money
from taskbuilder.errors import ConnectError, ProlificError, TransportError, Refusal
from taskbuilder.job_spending import part_cents, study_cost_cents
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.pay_evidence import payment_evidence
from taskbuilder.payments import (attention_failures, bonus_budget_problem, csv_bonuses, flagged_for_rejection,
                                  plan_bonuses, plan_rejections)

from tasks.connection import ProlificConnection, open_client
from tasks.logs import run_logger
from tasks.pay_lock import PayLockBusy, pay_lock
from tasks.records import load_job_record, now_iso, update_job_record
from tasks.results import instruction_payloads
from tasks.retry import API_TASK_OPTIONS
from tasks.studies import list_submissions

SETTLE_LOCK_WAIT_SECONDS = 5.0
"""How long ``settle`` waits for the pay lock: a holder is a pay step (or add-places) running now, and a pay step
may send or check a pay call after the hand check, so settle does not wait it out (the pay step's wait is 900 s)."""
PAY_ATTEMPTS = 3
"""Pay calls sent at most in one run, each only after the check says the earlier one did not pay."""


class PayOutcomeUnknown(Refusal):
    """A pay call got no answer and the check after the settle wait shows no payment yet: the call may still be
    running (§7 pays asynchronously), so it is not sent again in this run; the record stays ``paying``."""


class PayEvidenceUnclear(PayOutcomeUnknown):
    """The figures after a pay call neither show this payment paid nor show it unpaid
    (:func:`taskbuilder.pay_evidence.payment_evidence`): nothing more is sent, by this run or a re-run, until
    someone checks; the message says what to check. The record stays ``paying``."""


@task(name="reject-submissions", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def reject_submissions(connection: ProlificConnection, study_id: str, submission_ids: list[str], category: str,
                       message: str) -> list[str]:
    """REJECT each of ``submission_ids`` still AWAITING REVIEW (``POST /api/v1/submissions/{id}/transition/``
    ``{action: REJECT, message, rejection_category}``, §5.7); return those the server shows REJECTED after.
    Statuses are read first, so a retry or a re-run never sends a second REJECT for a submission."""
    with open_client(connection) as client:
        awaiting = {s.id for s in client.list_submissions(study_id) if str(s.status) == "AWAITING REVIEW"}
        sent = [sid for sid in submission_ids if sid in awaiting]
        for submission_id in sent:
            client.transition_submission(submission_id, "REJECT", message=message, rejection_category=category)
        rejected = {s.id for s in client.list_submissions(study_id) if str(s.status) == "REJECTED"}
    run_logger().info("%d of %d flagged submissions are REJECTED (%d sent now)",
                      len(rejected & set(submission_ids)), len(submission_ids), len(sent))
    return [sid for sid in submission_ids if sid in rejected]


def reject_flagged(connection: ProlificConnection, job: AnnotationJob, job_key: str, study_id: str, responses: Any,
                   result: Any, submissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reject the submissions awaiting review of the participants ``job.reject`` flags (before any approval);
    return the study's submissions as they are after (unchanged without ``reject``). The rejected ids and the
    reasons go to the job record (``rejected_submissions``)."""
    if job.reject is None:
        return submissions
    first_choice = next((i for i in instruction_payloads(job) if i.get("type") in ("multiple_choice", "multiple_choice_with_free_text")), None)
    failed = attention_failures(responses, first_choice, job.dataset.attention_check_column,
                                job.dataset.gold_column_in(list(responses.columns))) if first_choice else {}
    flagged = flagged_for_rejection(job.reject, result.participants, failed)
    chosen = plan_rejections(flagged, submissions)
    rejected = reject_submissions(connection, study_id, chosen, job.reject.category, job.reject.message) if chosen else []
    record = load_job_record(job_key, connection.base_url) or {}
    done = sorted({*record.get("rejected_submissions", []), *rejected})
    update_job_record(job_key, connection.base_url, rejected_submissions=done,
                      rejection_reasons={**record.get("rejection_reasons", {}), **flagged})
    return list_submissions(connection, study_id) if chosen else submissions


@task(name="create-bonus-payment", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def create_bonus_payment(connection: ProlificConnection, study_id: str, plan: dict[str, int]) -> dict[str, Any]:
    """``POST /api/v1/submissions/bonus-payments/`` with the plan as ``csv_bonuses`` (§7); return ``{id,
    amount_cents, total_amount_cents}``. Pays nothing: a retry after a lost answer leaves an unpaid payment
    behind (free), and only the id this returns is ever paid."""
    with open_client(connection) as client:
        payment = client.create_bonus_payments(study_id, csv_bonuses(plan))
    return {"id": payment.id, "amount_cents": cents(payment.amount or 0), "total_amount_cents": cents(payment.total_amount or 0)}


@task(name="read-spending", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def read_spending(connection: ProlificConnection, study_id: str, workspace_id: str, plan_cents: int = 0) -> dict[str, Any]:
    """The study's cost so far and the paying balance: ``{rewards_cents, fees_cents, tax_cents, bonuses_cents
    (with their fees and tax), bonus_rewards_cents, balance_cents, currency, plan_price_cents}``; the plan priced
    by the account's calculator (``reward`` = the plan's cents, one place, §5.6) when ``plan_cents`` > 0."""
    with open_client(connection) as client:
        return _spending(client, study_id, workspace_id, plan_cents)


def _spending(client: Any, study_id: str, workspace_id: str, plan_cents: int = 0) -> dict[str, Any]:
    study = client.get_study(study_id)
    cost = client.get_study_cost(study_id)
    parts, bonuses = cost.rewards, cost.bonuses
    balance = (client.get_workspace_balance(workspace_id).available_balance if study.project
               else client.get_me().available_balance)
    figures = {"rewards_cents": part_cents(parts, "rewards"), "fees_cents": part_cents(parts, "fees"), "tax_cents": part_cents(parts, "tax"),
               "bonus_rewards_cents": part_cents(bonuses, "rewards"), "bonuses_cents": study_cost_cents(cost)[1],
               "balance_cents": balance, "currency": study.currency_code or "GBP"}
    if plan_cents > 0:
        figures["plan_price_cents"] = cents(client.calculate_study_cost(reward_cents=plan_cents, places=1).total_cost)
    return figures


@task(name="pay-bonus-payment", retries=0, cache_policy=NO_CACHE)
def pay_bonus_payment(connection: ProlificConnection, job_key: str, workspace_id: str, payment: dict[str, Any]) -> dict[str, Any]:
    """Pay the recorded bulk bonus ``payment`` exactly once (module docstring); return it with ``state`` ``paid``.

    ``POST /api/v1/bulk-bonus-payments/{id}/pay/`` (§7) is sent only after the record holds ``state: paying`` and
    the figures before; a payment found ``paying`` is checked first. Raises the last API error when the payment
    is still unpaid after :data:`PAY_ATTEMPTS` checked calls (the record stays ``paying``: a re-run checks it)."""
    logger = run_logger()
    settle_seconds = 2 * connection.timeouts.read_seconds
    calls, last_error, unanswered = 0, None, False
    with open_client(connection) as client:
        while True:
            if payment["state"] == "paying":
                time.sleep(settle_seconds)  # an unanswered call may still be running on the server
                verdict, why = payment_evidence(payment["before"], _spending(client, payment["study_id"], workspace_id), payment)
                if verdict == "paid":
                    logger.info("Bonus payment %s was paid by an earlier call (%s): not paying again", payment["id"], why)
                    break
                if verdict == "unknown":
                    raise PayEvidenceUnclear(why)
                if unanswered:
                    raise PayOutcomeUnknown(
                        f"the pay call of bonus payment {payment['id']} got no answer ({last_error}) and the study's bonuses "
                        f"and the balance have not moved after {settle_seconds:g} s; Prolific pays asynchronously, so it is "
                        "not sent again now: re-run the job later (it checks first and pays only if still unpaid)")
                if calls >= PAY_ATTEMPTS:
                    raise last_error or RuntimeError(f"bonus payment {payment['id']} is unpaid")
            payment = {**payment, "state": "paying", "before": _spending(client, payment["study_id"], workspace_id),
                       "pay_calls": payment.get("pay_calls", 0) + 1}
            update_job_record(job_key, connection.base_url, bonus_payment=payment)
            calls += 1
            try:
                client.pay_bonus_payments(payment["id"])
            except ProlificError as error:
                last_error = error
                unanswered = isinstance(error, TransportError) and not isinstance(error, ConnectError)  # maybe sent
                logger.warning("The pay call of bonus payment %s failed (%s): checking before any other call", payment["id"], error)
                continue
            logger.info("Paid bonus payment %s (%s, %s with fees and VAT)", payment["id"],
                        money(payment["amount_cents"], _currency(payment)), money(payment["total_amount_cents"], _currency(payment)))
            break
    payment = {**payment, "state": "paid"}
    update_job_record(job_key, connection.base_url, bonus_payment=payment)
    return payment


def pay_job_bonuses(connection: ProlificConnection, job: AnnotationJob, job_key: str, study_id: str, workspace_id: str,
                    result: Any, submissions: list[dict[str, Any]]) -> dict[str, Any]:
    """Pay ``job.bonus`` once (over ``max_budget``: nothing, and said so) and read what the job spent; return the
    run summary's ``payments``: ``{bonus: {state, id, participants, amount_cents, total_amount_cents, plan} | None,
    rejected_submissions: [...], spent: {rewards_cents, fees_cents, tax_cents, bonuses_cents, currency}}``, also
    kept for collect-report's ``run.json`` (:func:`last_payments`).

    With a bonus, everything from reading the record to recording the payment runs under the job's pay lock
    (:func:`tasks.pay_lock.pay_lock`, one payer across machines); raises
    :class:`tasks.pay_lock.PayLockUnavailable` (nothing paid) when it cannot be taken."""
    if job.bonus is None:
        return _pay_job_bonuses(connection, job, job_key, study_id, workspace_id, result, submissions)
    with pay_lock(job_key, connection.base_url):
        return _pay_job_bonuses(connection, job, job_key, study_id, workspace_id, result, submissions)


_last_payments: dict[tuple[str, str], dict[str, Any]] = {}
"""(job key, API root) → what this process's last pay step of the job answered (no Prefect request to keep it)."""


def last_payments(job_key: str, base_url: str) -> dict[str, Any] | None:
    """The ``payments`` of this process's last pay step of the job (:func:`pay_job_bonuses`' answer: the run
    summary's shape, for collect-report's ``run.json``); ``None`` when this process ran none."""
    return _last_payments.get((job_key, base_url))


def _pay_job_bonuses(connection: ProlificConnection, job: AnnotationJob, job_key: str, study_id: str, workspace_id: str,
                     result: Any, submissions: list[dict[str, Any]]) -> dict[str, Any]:
    record = load_job_record(job_key, connection.base_url) or {}
    rejected_ids = set(record.get("rejected_submissions", []))
    payment, notes = record.get("bonus_payment"), []
    if job.bonus is not None and (payment is None or payment.get("state") in ("refused", "created")):
        # "created": no pay call was sent, so this run's plan and max_budget decide (a changed spec is honoured)
        kept = [s for s in submissions if s["id"] not in rejected_ids]
        plan, notes = plan_bonuses(job.bonus, result.participants, kept)
        unsent = payment if payment is not None and payment.get("state") == "created" and payment.get("plan") == plan else None
        payment = _create_within_budget(connection, job, job_key, study_id, workspace_id, plan, notes, unsent) if plan else None
    elif payment is not None and job.bonus is not None and payment.get("state") == "paid":
        run_logger().info("Bonus payment %s of this job was paid before: nothing to pay", payment["id"])
        plan, _ = plan_bonuses(job.bonus, result.participants, [s for s in submissions if s["id"] not in rejected_ids])
        if plan != payment.get("plan"):
            notes = [_changed_after_paying(payment, plan)]
            run_logger().warning("%s", notes[0])
    if job.bonus is not None and payment is not None and payment.get("state") in ("created", "paying"):
        payment = pay_bonus_payment(connection, job_key, workspace_id, payment)
    spent = read_spending(connection, study_id, workspace_id)
    payments = {"bonus": payment and {k: v for k, v in payment.items() if k != "before"},
                "rejected_submissions": sorted(rejected_ids),
                "spent": {k: spent[k] for k in ("rewards_cents", "fees_cents", "tax_cents", "bonuses_cents", "currency")}}
    if notes:
        update_job_record(job_key, connection.base_url, notes=notes)
    _last_payments[(job_key, connection.base_url)] = payments
    return payments


class NothingToSettle(Refusal):
    """``taskbuilder pay settle``: the job has no bonus payment whose pay call's outcome is open (``paying``)."""


def settle_bonus_payment(job_key: str, base_url: str) -> str:
    """Mark the job's bonus payment settled by hand: someone checked the study's bonuses in Prolific's app after
    the run stopped with :class:`PayEvidenceUnclear` / :class:`PayOutcomeUnknown`, and paid it there if it was not
    paid. The record's ``bonus_payment`` goes from ``paying`` to ``paid`` with ``settled_by_hand_at`` (ISO-8601),
    under the job's pay lock (:func:`tasks.pay_lock.pay_lock`, so no pay step runs meanwhile); the job never sends
    its pay call again, and a re-run goes on past the pay step. No Prolific request. Returns the sentence to show.

    Raises :class:`NothingToSettle` when the job has no record, no bonus payment, or one in another state
    (``created``/``refused``: no pay call was sent, the job's next run decides; ``paid``: nothing left to settle),
    :class:`tasks.pay_lock.PayLockUnavailable` when the lock cannot be taken (:class:`~tasks.pay_lock.PayLockBusy`
    within :data:`SETTLE_LOCK_WAIT_SECONDS`: a pay step runs now, and waiting it out would record a check made before it)."""
    stored_under = next((url for url in _spellings(base_url) if load_job_record(job_key, url) is not None), None)
    if stored_under is None:  # looked at before the lock, which keeps its name in the record
        raise NothingToSettle(f"no job record for job key {job_key!r} on this Prefect server (the one the job ran "
                              "with: PREFECT_API_URL, or the local server `taskbuilder run` keeps)")
    base_url = stored_under
    try:
        with pay_lock(job_key, base_url, wait_seconds=SETTLE_LOCK_WAIT_SECONDS):
            return _settle_locked(job_key, base_url)
    except PayLockBusy:
        raise PayLockBusy(
            f"a pay step of this job is running now (or an add-places of it): job {job_key!r}'s pay lock is held. Nothing "
            "was recorded: a pay step may send or check a pay call after your check. Wait for that run to end; if it "
            "stops at the pay step again, check the study's bonuses in Prolific's app again, then run settle") from None


def _spellings(base_url: str) -> list[str]:
    """``base_url`` as the run most likely stored it (normalised: no trailing ``/`` or ``/api/v1``), then as given."""
    try:
        return list(dict.fromkeys((normalise_base_url(base_url), base_url)))
    except ValueError:
        return [base_url]


def _settle_locked(job_key: str, base_url: str) -> str:
    """:func:`settle_bonus_payment` under the job's pay lock."""
    payment = (load_job_record(job_key, base_url) or {}).get("bonus_payment")
    if not payment:
        raise NothingToSettle(f"job {job_key!r} has no bonus payment: nothing to settle")
    state, unit = payment.get("state"), _currency(payment)
    what = f"bonus payment {payment.get('id')} ({money(int(payment.get('amount_cents') or 0), unit)})"
    if state == "paid":
        raise NothingToSettle(f"{what} is recorded as paid" + (
            f" (settled by hand at {payment['settled_by_hand_at']})" if payment.get("settled_by_hand_at") else "")
            + ": nothing to settle")
    if state != "paying":
        raise NothingToSettle(f"{what} is {state}: no pay call was sent, so there is nothing to settle (the job's "
                              "next run decides it from the spec and max_budget)")
    update_job_record(job_key, base_url, bonus_payment={**payment, "state": "paid", "settled_by_hand_at": now_iso()})
    return (f"{what} of study {payment.get('study_id')} is now recorded as paid, settled by hand: this job will never send "
            "its pay call again. Run the job again to write its outputs.")


def _changed_after_paying(payment: dict[str, Any], plan: dict[str, int]) -> str:
    """The note of a bonus that differs from the one paid (bulk bonus payments are paid once per job)."""
    paid, unit = payment.get("plan") or {}, _currency(payment)
    more = {p: cents - paid.get(p, 0) for p, cents in plan.items() if cents > paid.get(p, 0)}
    return (f"the bonus in the spec now plans {money(sum(plan.values()), unit)} for {len(plan)} participant(s), but bonus "
            f"payment {payment['id']} ({money(payment['amount_cents'], unit)}, {payment['participants']} participant(s)) was "
            f"paid before and a job pays its bonuses once: nothing more was paid ({money(sum(more.values()), unit)} more "
            f"for {len(more)} participant(s) would match the spec; pay them from Prolific's app if you mean to)")


def _currency(payment: dict[str, Any]) -> str:
    """The study's currency of a recorded payment (older records: the figures read before its pay call)."""
    return payment.get("currency") or (payment.get("before") or {}).get("currency") or ""


def _create_within_budget(connection: ProlificConnection, job: AnnotationJob, job_key: str, study_id: str, workspace_id: str,
                          plan: dict[str, int], notes: list[str], unsent: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The recorded bulk bonus payment of ``plan`` (``state: created``; ``unsent``, a recorded one of the same plan
    never paid, is reused), or a ``refused`` record (and a note) when paying it would pass ``max_budget``."""
    plan_cents = sum(plan.values())
    figures = read_spending(connection, study_id, workspace_id, plan_cents)
    spent = figures["rewards_cents"] + figures["fees_cents"] + figures["tax_cents"] + figures["bonuses_cents"]
    problem = bonus_budget_problem(plan_cents=plan_cents, plan_price_cents=figures["plan_price_cents"], spent_cents=spent,
                                   max_budget_cents=job.max_budget, currency=figures["currency"])
    base = {"study_id": study_id, "plan": plan, "participants": len(plan), "amount_cents": plan_cents, "currency": figures["currency"]}
    if problem:
        run_logger().warning("%s", problem)
        notes.append(problem)
        payment = {**base, "id": None, "state": "refused", "total_amount_cents": figures["plan_price_cents"], "reason": problem}
        update_job_record(job_key, connection.base_url, bonus_payment=payment)
        return payment
    if unsent is not None:
        return unsent
    created = create_bonus_payment(connection, study_id, plan)
    payment = {**base, **created, "state": "created", "pay_calls": 0}
    update_job_record(job_key, connection.base_url, bonus_payment=payment)
    return payment
