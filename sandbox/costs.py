"""Costs (now §5.5, §5.6 of ../shared/docs/prolific-api-current.md): the one formula behind a study's
``total_cost``, the cost calculator and a study's cost breakdown.

From the account settings: rewards = reward × places; fees = rewards × ``service_fee_percent`` / 100;
tax = fees × ``vat_percent`` / 100 (VAT on the fee, not on the rewards); total = rewards + fees + tax.
Every amount is in the currency's minor units (pence, cents), rounded to whole units.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sandbox.settings import Settings
from sandbox.state import State
from sandbox.web import Request, Response, bad_request, json_response, not_found, validate


def parts_cents(settings: Settings, reward: float, places: float) -> dict[str, int]:
    """``{"rewards", "fees", "tax", "total"}`` in minor units for ``places`` places at ``reward`` each."""
    rewards = round(reward * places)
    fees = round(reward * places * settings.service_fee_percent / 100)
    tax = round(reward * places * settings.service_fee_percent / 100 * settings.vat_percent / 100)
    return {"rewards": rewards, "fees": fees, "tax": tax, "total": rewards + fees + tax}


def total_cost_cents(settings: Settings, reward: float, places: float) -> int:
    """A study's ``total_cost`` in minor units (rewards, fees and VAT): what publishing debits."""
    return parts_cents(settings, reward, places)["total"]


class CostRequest(BaseModel):
    """Body of ``POST /study-cost-calculator/`` (now §5.6): reward in minor units, places."""

    model_config = ConfigDict(strict=True)
    reward: float = Field(ge=0)
    total_available_places: float = Field(ge=0)


def calculate(sb: State, req: Request) -> Response:
    """``POST /study-cost-calculator/`` ``{reward, total_available_places}`` (now §5.6) → 200
    ``{total_cost}`` in minor units, fees and VAT included; 400 naming a missing or bad field."""
    body = validate(CostRequest, req.json_object())
    return json_response(200, {"total_cost": total_cost_cents(sb.settings, body.reward, body.total_available_places)})


def _money(amount: int, currency: str) -> dict:
    return {"amount": amount, "currency": currency}


def study_cost(sb: State, req: Request) -> Response:
    """``GET /studies/{id}/cost/?is_projected=`` (now §5.5) → 200 ``{"rewards": {"rewards", "fees", "tax"},
    "bonuses": {"rewards", "fees", "tax"}}``, each ``{amount, currency}`` in minor units.

    The rewards part is the cost of the study's places, split as its ``total_cost`` was when it was last
    priced (create or PATCH), projected or not; the bonuses part counts every bulk bonus payment of the study
    as often as it was paid (``bonuses.py``). 404 for an unknown study; 400 for a bad ``is_projected``.
    """
    study = sb.store.get("study", req.params["study_id"])
    if study is None:
        raise not_found("study", req.params["study_id"])
    if req.query_value("is_projected") not in (None, "true", "false", "True", "False", "1", "0"):
        raise bad_request("is_projected", "must be true or false")
    currency = study["currency_code"]
    parts = study.get("cost_parts") or parts_cents(sb.settings, study["reward"], study["total_available_places"])
    return json_response(200, {
        "rewards": {name: _money(parts[name], currency) for name in ("rewards", "fees", "tax")},
        "bonuses": {name: _money(amount, currency) for name, amount in paid_bonus_parts_cents(sb, study["id"]).items()}})


def paid_bonus_parts_cents(sb: State, study_id: str) -> dict[str, int]:
    """``{"rewards", "fees", "tax"}`` of the study's bonuses: each bulk bonus payment (§7, ``bonuses.py``) counted
    as often as it was paid."""
    totals = {"rewards": 0, "fees": 0, "tax": 0}
    for payment in sb.store.list("bonus_payment", study=study_id):
        for name, field in (("rewards", "amount"), ("fees", "fees"), ("tax", "vat")):
            totals[name] += payment[field] * payment["times_paid"]
    return totals


def reward_recommendations(sb: State, req: Request) -> Response:
    """``GET /reward-recommendations/?workspace_id=&currency=[&screener_ids=]`` (now §12) → 200 a JSON list
    ``[{currency, min_reward_per_hour, recommended_reward_per_hour}]``, rates in minor units per hour (the
    settings ``min_reward_per_hour_cents``, ``recommended_reward_per_hour_cents``). 400 without a known
    ``workspace_id``, or for a currency other than the account's."""
    workspace_id = req.query_value("workspace_id")
    if not workspace_id:
        raise bad_request("workspace_id", "query parameter workspace_id is required")
    sb.require_workspace(workspace_id, "workspace_id")
    currency = req.query_value("currency") or sb.settings.currency_code
    if currency != sb.settings.currency_code:
        raise bad_request("currency", f"the account's currency is {sb.settings.currency_code}")
    return json_response(200, [{"currency": currency, "min_reward_per_hour": sb.settings.min_reward_per_hour_cents,
                                "recommended_reward_per_hour": sb.settings.recommended_reward_per_hour_cents}])
