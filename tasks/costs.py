"""Prefect tasks for money: the account's quote before anything is created, the study's own cost and the
paying balance before PUBLISH (:mod:`taskbuilder.cost` holds the rules; both fail closed).

Endpoints: ``GET /api/v1/users/me/`` (currency; ``prolific-api.md`` §7), ``POST /api/v1/study-cost-calculator/``
(§5.6), ``GET /api/v1/studies/{id}/`` (§5.2), ``GET /api/v1/studies/{id}/cost/`` (§5.5),
``GET /api/v1/workspaces/{id}/balance/`` (``prolific-api.md`` §7).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.cost import JobPrice, cents, counted, money

from tasks.connection import ProlificConnection, open_client
from tasks.logs import run_logger
from tasks.retry import API_TASK_OPTIONS


@task(name="price-job", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def price_job(
    connection: ProlificConnection, reward_cents: int, task_groups: int, annotators_per_task: int, max_budget_cents: int,
    places: int | None = None,
) -> JobPrice:
    """Ask the account's cost calculator for the job's price; return the :class:`JobPrice` (not yet checked).

    ``places`` = ``task_groups`` × ``annotators_per_task``, unless the spec sets the study's own
    ``total_available_places`` (``places``: the study then has that many, §5.1). Creates nothing. Transient API errors are
    retried; the caller checks the budget (:meth:`JobPrice.refuse_over_budget`) and turns a final failure
    into :class:`taskbuilder.cost.CostUnknown`.
    """
    places = task_groups * annotators_per_task if places is None else places
    with open_client(connection) as client:
        currency = client.get_me().currency_code or "GBP"
        quote = client.calculate_study_cost(reward_cents=reward_cents, places=places)
    price = JobPrice(
        reward_cents=reward_cents, task_groups=task_groups, annotators_per_task=annotators_per_task, places=places,
        quote_cents=cents(quote.total_cost), currency_code=currency, max_budget_cents=max_budget_cents,
    )
    run_logger().info(
        "The account's cost calculator prices %s (%s × %d) at %s (%s of max_budget left for them)", counted(places, "place"),
        counted(task_groups, "task group"), annotators_per_task, money(price.quote_cents, currency), money(max_budget_cents, currency),
    )
    return price


@task(name="read-study-cost", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def read_study_cost(
    connection: ProlificConnection, study_id: str, workspace_id: str, project_id: str | None
) -> dict[str, Any]:
    """Read the draft study, its own cost and the balance that pays for it; return
    ``{"study": Study, "study_cost": StudyCost, "balance_cents": int | None, "payer": str}`` for
    :func:`taskbuilder.cost.check_before_publish`.

    The payer is the workspace's balance when the study has a project, else the personal balance (a study
    without ``project`` is paid from it, §5.1). Transient API errors are retried; the caller turns a final
    failure into :class:`taskbuilder.cost.CostUnknown`.
    """
    with open_client(connection) as client:
        study = client.get_study(study_id)
        study_cost = client.get_study_cost(study_id)
        project = study.project or project_id
        if project:
            payer = f"workspace {workspace_id} (project {project})"
            balance = client.get_workspace_balance(workspace_id).available_balance
        else:
            payer = "your personal balance (the study has no project)"
            balance = client.get_me().available_balance
    return {"study": study, "study_cost": study_cost, "balance_cents": balance, "payer": payer}
