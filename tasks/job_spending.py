"""Read a job's whole spending for a change made while it runs (add places): the figures of
:class:`taskbuilder.job_spending.JobSpending`, from the API and the job's records.

Endpoints (../shared/docs/prolific-api-current.md): ``GET /api/v1/studies/{id}/cost/`` (§5.5; ``is_projected``
for the job's other studies, so a round still running counts in full) and ``POST /api/v1/study-cost-calculator/``
(§5.6). The job's studies are those its records name: the job record's ``study_id`` and ``rounds``, and the
records of rounds 2, 3, ... (``<job key>-round-<n>``, :func:`taskbuilder.rounds.round_key`).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.cost import cents
from taskbuilder.job_spending import JobSpending, study_cost_cents
from taskbuilder.jobspec.payments import BonusCsvError, read_bonus_csv
from taskbuilder.rounds import round_key

from tasks.connection import ProlificConnection, open_client
from tasks.records import load_job_record
from tasks.retry import API_TASK_OPTIONS


class SpendingUnknown(RuntimeError):
    """A part of the job's spending cannot be priced (e.g. its bonus file is not readable here)."""


def job_study_ids(job_key: str, base_url: str, record: dict[str, Any]) -> list[str]:
    """Every study of the job its records name, round 1's first (one Prefect read per round after the first)."""
    ids = [record.get("study_id"), *(entry.get("study_id") for entry in record.get("rounds") or [])]
    number = 2
    while (found := load_job_record(round_key(job_key, number), base_url)) is not None:
        ids.append(found.get("study_id"))
        number += 1
    return [study_id for study_id in dict.fromkeys(ids) if study_id]


def read_job_spending(client: Any, job_key: str, base_url: str, record: dict[str, Any], study: Any, target_places: int) -> JobSpending:
    """The job's spending with ``study`` at ``target_places`` places (priced by the calculator, reward × places),
    its bonuses paid so far, the job's other studies (projected cost) and the bonuses planned (see
    :func:`planned_bonus_cents`). Raises :class:`SpendingUnknown` when the planned bonuses cannot be priced."""
    places = client.calculate_study_cost(reward_cents=int(study.reward or 0), places=target_places)
    _, paid = study_cost_cents(client.get_study_cost(study.id))
    others = {}
    for study_id in job_study_ids(job_key, base_url, record):
        if study_id != study.id:
            rewards, bonuses = study_cost_cents(client.get_study_cost(study_id, projected=True))
            others[study_id] = rewards + bonuses
    planned_cents, planned_from = planned_bonus_cents(record, target_places)
    planned = (client.calculate_study_cost(reward_cents=planned_cents, places=1).total_cost if planned_cents else 0)
    return JobSpending(places_cents=cents(places.total_cost), bonuses_paid_cents=paid, other_studies_cents=others,
                       bonuses_planned_cents=cents(planned), planned_from=planned_from)


def planned_bonus_cents(record: dict[str, Any], places: int) -> tuple[int, str]:
    """``(cents, what they are)`` of the job's bonuses not paid yet: none once its payment is ``paid`` (the study's
    cost counts it); a recorded payment set up or being paid: its amount; else the spec's ``bonus``: the rule's
    ``per_submission_cents`` × ``places`` (every place qualifying, the most it can pay) or the bonus file's sum."""
    payment = record.get("bonus_payment") or {}
    bonus = (record.get("spec") or {}).get("bonus")
    if payment.get("state") == "paid" or not bonus:
        return 0, ""
    if payment.get("state") in ("created", "paying"):
        return int(payment["amount_cents"]), f"bonus payment {payment.get('id')}, not paid yet"
    if bonus.get("per_submission_cents"):
        return int(bonus["per_submission_cents"]) * places, f"the spec's per-submission bonus × {places} places, at most"
    try:
        lines = read_bonus_csv(bonus["csv"])
    except BonusCsvError as error:
        raise SpendingUnknown(f"the job's bonus file cannot be priced here ({error}); run the command where the file is. "
                              "Nothing was changed.") from None
    return sum(cents for _, cents in lines), f"the bonus file {bonus['csv']}"


def rounds_spent_cents(client: Any, rounds: list[dict[str, Any]]) -> int:
    """What the job's rounds so far cost, in cents: per round (``{study_id, cost_cents}``) the larger of its
    recorded ``cost_cents`` (checked before PUBLISH) and its study's projected cost now (§5.5,
    ``is_projected``: rewards and bonuses with fees and tax), so places added after publishing (add-places)
    count against what is left of ``max_budget`` for the next round."""
    total = 0
    for entry in rounds:
        rewards, bonuses = study_cost_cents(client.get_study_cost(entry["study_id"], projected=True))
        total += max(int(entry["cost_cents"]), rewards + bonuses)
    return total


@task(name="read-rounds-spending", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def read_rounds_spending(connection: ProlificConnection, rounds: list[dict[str, Any]]) -> int:
    """:func:`rounds_spent_cents` over the API (``GET /api/v1/studies/{id}/cost/?is_projected=true``, §5.5)."""
    with open_client(connection) as client:
        return rounds_spent_cents(client, rounds)
