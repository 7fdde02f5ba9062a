"""The account side (API doc §7): ``users/me``, workspaces, projects and the workspace balance.

A default user, workspace and project exist from the start; their 24-hex ids are fixed, so they
stay the same across ``/_sandbox/reset``, seed changes and restarts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sandbox.ids import default_id, object_id
from sandbox.state import State
from sandbox.web import Request, Response, json_response, not_found, validate

USER = {"email": "researcher@sandbox.invalid", "first_name": "Sandbox", "last_name": "Researcher",
        "name": "Sandbox Researcher", "username": "sandbox-researcher", "user_type": "researcher"}


def ensure_defaults(sb: State) -> None:
    """Create the default user, workspace and project when absent."""
    if sb.store.get("user", default_id("user")) is None:
        sb.store.put("user", {"id": default_id("user"), **USER})
    workspace_id = default_id("workspace")
    if sb.store.get("workspace", workspace_id) is None:
        sb.store.put("workspace", _workspace(sb, workspace_id, "Sandbox workspace", "Default workspace of the sandbox"))
    project_id = default_id("project")
    if sb.store.get("project", project_id) is None:
        sb.store.put("project", _project(sb, project_id, workspace_id, "Sandbox project", "Default project"))


def _member(sb: State) -> dict:
    user = sb.store.get("user", sb.user_id())
    return {"id": user["id"], "name": user["name"], "email": user["email"], "roles": ["WORKSPACE_ADMIN"]}


def _workspace(sb: State, workspace_id: str, title: str, description: str) -> dict:
    return {"id": workspace_id, "title": title, "description": description, "owner": sb.user_id(),
            "users": [_member(sb)]}


def _project(sb: State, project_id: str, workspace_id: str, title: str, description: str) -> dict:
    return {"id": project_id, "title": title, "description": description, "workspace": workspace_id,
            "owner": sb.user_id(), "users": [_member(sb)]}


class TitledCreate(BaseModel):
    """Body of ``POST /workspaces/`` and ``POST /workspaces/{id}/projects/`` (API doc §7)."""

    model_config = ConfigDict(strict=True)
    title: str = Field(min_length=1)
    description: str = ""


def _balance(sb: State) -> dict:
    cents = sb.settings.account_balance_cents
    breakdown = {"rewards": cents, "fees": 0, "vat": 0}
    return {"currency_code": sb.settings.currency_code, "total_balance": cents, "balance_breakdown": breakdown,
            "available_balance": cents, "available_balance_breakdown": breakdown}


def _listing(items: list[dict]) -> dict:
    return {"results": items, "meta": {"count": len(items)}}


def me(sb: State, req: Request) -> Response:
    """``GET /users/me``: the researcher with the account's currency and balance in minor units."""
    user = sb.store.get("user", sb.user_id())
    cents = sb.settings.account_balance_cents
    return json_response(200, {**user, "currency_code": sb.settings.currency_code, "balance": cents,
                               "available_balance": cents})


def list_workspaces(sb: State, req: Request) -> Response:
    """``GET /workspaces``: ``{results, meta}``."""
    return json_response(200, _listing(sb.store.list("workspace")))


def create_workspace(sb: State, req: Request) -> Response:
    """``POST /workspaces`` ``{title, description?}`` → 201 workspace."""
    body = validate(TitledCreate, req.json_object())
    workspace = sb.store.put("workspace", _workspace(sb, object_id(), body.title, body.description))
    return json_response(201, workspace)


def get_workspace(sb: State, req: Request) -> Response:
    """``GET /workspaces/{id}``; 404 when unknown."""
    return json_response(200, sb.require_workspace(req.params["workspace_id"]))


def balance(sb: State, req: Request) -> Response:
    """``GET /workspaces/{id}/balance``: balances in minor units (setting ``account_balance_cents``)."""
    sb.require_workspace(req.params["workspace_id"])
    return json_response(200, _balance(sb))


def list_projects(sb: State, req: Request) -> Response:
    """``GET /workspaces/{id}/projects``: ``{results, meta}``."""
    workspace = sb.require_workspace(req.params["workspace_id"])
    return json_response(200, _listing(sb.store.list("project", workspace=workspace["id"])))


def create_project(sb: State, req: Request) -> Response:
    """``POST /workspaces/{id}/projects`` ``{title, description?}`` → 201 project."""
    workspace = sb.require_workspace(req.params["workspace_id"])
    body = validate(TitledCreate, req.json_object())
    project = sb.store.put("project", _project(sb, object_id(), workspace["id"], body.title, body.description))
    return json_response(201, project)


def get_project(sb: State, req: Request) -> Response:
    """``GET /projects/{id}``; 404 when unknown."""
    project = sb.store.get("project", req.params["project_id"])
    if project is None:
        raise not_found("project", req.params["project_id"])
    return json_response(200, project)
