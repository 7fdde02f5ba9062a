"""A hand on a running study: pause, resume, stop, add places — each once, through the documented transitions.

Endpoints (../shared/docs/prolific-api-current.md): ``GET /api/v1/studies/{id}/`` (§5.2) first, always; then
``POST /api/v1/studies/{id}/transition/`` (§5.4: PAUSE from ACTIVE, START from PAUSED, STOP from ACTIVE or
PAUSED) or ``PATCH /api/v1/studies/{id}/`` (§5.3: ``total_available_places``, and
``data_collection_metadata.annotators_per_task`` when the places need more annotators per task group than the
study has: places may not exceed task groups × annotators per task) priced first with
``POST /api/v1/study-cost-calculator/`` (§5.6), against ``max_budget`` with the whole job's spending (every
round's study, §5.5, and the bonuses paid and planned).

Exactly once: the study's status is read before acting, so a repeated command (or a retry after a lost answer)
finds the study paused/active/stopped already and does nothing; a transition answered 400 is read again (an
earlier attempt may have won). Adding places writes its target (``places_request``) to the job record before
the PATCH, which sets the places to that absolute number: a retry or a re-run after a crash completes the same
request instead of adding again, and the same ``add-places N`` again is refused unless asked for (``again``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.errors import BadRequest, Refusal
from taskbuilder.cost import cents, counted, money
from taskbuilder.job_spending import places_budget_problem
from taskbuilder.models import StudyAction, StudyStatus

from tasks.connection import ProlificConnection, open_client
from tasks.job_spending import SpendingUnknown, read_job_spending
from tasks.pay_lock import pay_lock
from tasks.logs import run_logger
from tasks.records import load_job_record, now_iso, update_job_record
from tasks.retry import API_TASK_OPTIONS

Command = Literal["pause", "resume", "stop"]

# command → (transition, statuses it is taken from, statuses meaning "done already", the word for them)
TRANSITIONS: dict[str, tuple[StudyAction, tuple[str, ...], tuple[str, ...], str]] = {
    "pause": (StudyAction.PAUSE, (StudyStatus.ACTIVE,), (StudyStatus.PAUSED,), "already paused"),
    "resume": (StudyAction.START, (StudyStatus.PAUSED,), (StudyStatus.ACTIVE,), "already active (not paused)"),
    "stop": (StudyAction.STOP, (StudyStatus.ACTIVE, StudyStatus.PAUSED),
             (StudyStatus.AWAITING_REVIEW, StudyStatus.COMPLETED), "already stopped or finished"),
}


class StudyControlRefused(Refusal):
    """The command cannot apply to the study as it is (e.g. pausing an UNPUBLISHED study, places over budget);
    nothing was changed. The message says why and what to do."""


@dataclass(frozen=True)
class ControlOutcome:
    """What a command did: ``changed`` False when the study was in the wanted state already (``message`` says
    so); ``status_before``/``status_after`` as read from the API; ``places`` the study's places after."""

    command: str
    study_id: str
    changed: bool
    status_before: str
    status_after: str
    places: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@task(name="control-study", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def control_study(connection: ProlificConnection, job_key: str, study_id: str, command: Command) -> ControlOutcome:
    """``pause`` | ``resume`` | ``stop`` the study once (see the module docstring); return the outcome.

    Raises :class:`StudyControlRefused` when the study's status allows neither the transition nor "done
    already" (e.g. pause an UNPUBLISHED or finished study), and the typed API errors after retries.
    """
    action, allowed, done, already = TRANSITIONS[command]
    with open_client(connection) as client:
        study = client.get_study(study_id)
        before = str(study.status)
        if before in done:
            outcome = ControlOutcome(command, study_id, False, before, before, study.total_available_places,
                                     f"study {study_id} is {already} ({before}): nothing done")
        elif before not in allowed:
            raise StudyControlRefused(f"cannot {command} study {study_id}: it is {before}; {command} applies to a study "
                                      f"that is {' or '.join(allowed)}. Nothing was changed.")
        else:
            try:
                after = str(client.transition_study(study_id, action).status)
            except BadRequest:
                after = str(client.get_study(study_id).status)  # an earlier attempt may have won the race
                if after not in done:
                    raise
            outcome = ControlOutcome(command, study_id, True, before, after, study.total_available_places,
                                     f"study {study_id}: {action} sent, {before} → {after}")
    run_logger().info("%s", outcome.message)
    update_job_record(job_key, connection.base_url, statuses={"study": outcome.status_after},
                      **({"last_control": {"command": command, "at": now_iso(), "status_after": outcome.status_after}}
                         if outcome.changed else {}))
    return outcome


@task(name="add-study-places", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def add_places(
    connection: ProlificConnection, job_key: str, study_id: str, places: int, max_budget_cents: int, again: bool = False,
) -> ControlOutcome:
    """Add ``places`` places to the ACTIVE or PAUSED study, once (see the module docstring); return the outcome.

    The new total is priced with the account's calculator (reward × places, fees and VAT) and, with the rest of
    the job's spending (its other rounds' studies, bonuses paid and planned: :mod:`tasks.job_spending`), refused
    over ``max_budget_cents`` (the spec's ``max_budget``), under the job's money lock (:mod:`tasks.pay_lock`: one
    add-places or pay step of a job at a time, across machines). Raises :class:`StudyControlRefused` (not running,
    over budget, ``places`` below 1, the same request done already without ``again``) or
    :class:`~tasks.pay_lock.PayLockUnavailable` before anything changes.
    """
    if places < 1:
        raise StudyControlRefused(f"add-places needs a number of places of 1 or more, not {places}")
    # The job's money lock, across machines (the pay step holds it too): two add-places at once would each price
    # against spending that leaves out the other's places, and on one study both would set the same new total.
    with pay_lock(job_key, connection.base_url):
        return _add_places_locked(connection, job_key, study_id, places, max_budget_cents, again)


def _add_places_locked(connection: ProlificConnection, job_key: str, study_id: str, places: int, max_budget_cents: int,
                       again: bool) -> ControlOutcome:
    record = load_job_record(job_key, connection.base_url) or {}
    pending = record.get("places_request") or {}
    with open_client(connection) as client:
        study = client.get_study(study_id)
        status, current = str(study.status), int(study.total_available_places or 0)
        resuming = pending.get("study_id") == study_id and not pending.get("done")
        if resuming:
            target = int(pending["to_places"])  # an earlier attempt recorded it: finish that one, never add twice
        elif (pending.get("study_id") == study_id and pending.get("added") == places and not again
              and current == pending.get("to_places")):
            return _outcome(study_id, False, status, current,
                            f"study {study_id} has {counted(current, 'place')}: {'this' if places == 1 else 'these'} "
                            f"{counted(places, 'place')} {'was' if places == 1 else 'were'} added already "
                            f"(at {pending.get('at')}); nothing done. Give --again to add {places} more.")
        else:
            target = current + places
        if current >= target:
            _record_places(job_key, connection, {**pending, "done": True} if pending else None)
            return _outcome(study_id, False, status, current, f"study {study_id} has {counted(current, 'place')} already; nothing done")
        if status not in (StudyStatus.ACTIVE, StudyStatus.PAUSED):
            raise StudyControlRefused(f"cannot add places to study {study_id}: it is {status}; places are added to an "
                                      "ACTIVE or PAUSED study (change the spec of an unpublished one). Nothing was changed.")
        try:
            spending = read_job_spending(client, job_key, connection.base_url, record, study, target)
        except SpendingUnknown as error:
            raise StudyControlRefused(str(error)) from None
        problem = places_budget_problem(spending, study_id=study_id, places=target, max_budget_cents=max_budget_cents,
                                        currency=study.currency_code or "")
        if problem:
            raise StudyControlRefused(problem)
        request = {"study_id": study_id, "added": pending["added"] if resuming else places,
                   "from_places": pending["from_places"] if resuming else current, "to_places": target, "at": now_iso(),
                   "done": False}
        _record_places(job_key, connection, request)
        added_cents = cents(client.calculate_study_cost(reward_cents=int(study.reward or 0), places=target - current).total_cost)
        fields = _places_fields(study.data_collection_metadata or {}, target)
        updated = client.update_study(study_id, **fields)
    _record_places(job_key, connection, {**request, "done": True})
    currency = study.currency_code or ""
    return _outcome(study_id, True, status, int(updated.total_available_places or target),
                    f"study {study_id}: places {current} → {updated.total_available_places}"
                    + (f" (annotators per task {fields['data_collection_metadata']['annotators_per_task']})"
                       if "data_collection_metadata" in fields else "")
                    + f"; the {counted(target - current, 'place')} added cost {money(added_cents, currency)} (fees and VAT "
                    f"included), the study's places now {money(spending.places_cents, currency)}, the job "
                    f"{money(spending.total_cents, currency)} of max_budget {money(max_budget_cents, currency)}")


def _places_fields(metadata: dict[str, Any], target: int) -> dict[str, Any]:
    """The PATCH body for ``target`` places: the places, and more annotators per task group when the task
    groups × annotators per task (the study's ``data_collection_metadata``) hold fewer places than that."""
    groups = int(metadata.get("total_task_groups") or 0)
    annotators = int(metadata.get("annotators_per_task") or 1)
    fields: dict[str, Any] = {"total_available_places": target}
    if groups and target > groups * annotators:
        fields["data_collection_metadata"] = {"annotators_per_task": math.ceil(target / groups)}
    return fields


def _record_places(job_key: str, connection: ProlificConnection, request: dict[str, Any] | None) -> None:
    if request is not None:
        update_job_record(job_key, connection.base_url, places_request=request)


def _outcome(study_id: str, changed: bool, status: str, places: int, message: str) -> ControlOutcome:
    run_logger().info("%s", message)
    return ControlOutcome("add-places", study_id, changed, status, status, places, message)
