"""Prefect tasks for the pilot's money figures: Prolific's reward recommendation (§12 of the current facts) and
the account's price of the full job at a given reward (§5.6). They create nothing."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.cost import cents

from tasks.connection import ProlificConnection, open_client
from tasks.retry import API_TASK_OPTIONS


@task(name="reward-recommendation", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def reward_recommendation(connection: ProlificConnection, workspace_id: str) -> dict[str, int] | None:
    """``{"min", "recommended"}`` hourly rewards (minor units per hour) in the account's currency
    (``GET /api/v1/users/me/``, then ``GET /api/v1/reward-recommendations/?workspace_id=&currency=``); None
    when the list is empty."""
    with open_client(connection) as client:
        currency = client.get_me().currency_code or "GBP"
        found = client.get_reward_recommendations(workspace_id, currency)
    return {"min": found[0].min_reward_per_hour, "recommended": found[0].recommended_reward_per_hour} if found else None


@task(name="price-places", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def price_places(connection: ProlificConnection, reward_cents: int, places: int) -> int:
    """The account's price in cents of ``places`` places at ``reward_cents`` (``POST /api/v1/study-cost-calculator/``)."""
    with open_client(connection) as client:
        return cents(client.calculate_study_cost(reward_cents=reward_cents, places=places).total_cost)
