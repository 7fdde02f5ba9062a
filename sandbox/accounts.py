"""The account side (API doc §7): ``users/me``, workspaces, projects and the workspace balance.

A default user, workspace and project exist from the start; their 24-hex ids are fixed, so they
stay the same across ``/_sandbox/reset``, seed changes and restarts.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from sandbox.ids import object_id
from sandbox.web import Request, Response, Router, bad_request, json_response, not_found, validate

if TYPE_CHECKING:
    from sandbox.app import Sandbox

USER = {"email": "researcher@sandbox.invalid", "first_name": "Sandbox", "last_name": "Researcher",
        "name": "Sandbox Researcher", "username": "sandbox-researcher", "user_type": "researcher"}


def default_id(what: str) -> str:
    """The fixed 24-hex id of a default resource (``"user"``, ``"workspace"``, ``"project"``)."""
    return hashlib.sha256(f"prolific-sandbox:{what}".encode()).hexdigest()[:24]


def ensure_defaults(sb: Sandbox) -> None:
    """Create the default user, workspace and project when absent."""
    if sb.store.get("user", default_id("user")) is None:
        sb.store.put("user", {"id": default_id("user"), **USER})
    workspace_id = default_id("workspace")
    if sb.store.get("workspace", workspace_id) is None:
        sb.store.put("workspace", _workspace(sb, workspace_id, "Sandbox workspace", "Default workspace of the sandbox"))
    project_id = default_id("project")
    if sb.store.get("project", project_id) is None:
        sb.store.put("project", _project(sb, project_id, workspace_id, "Sandbox project", "Default project"))


def _member(sb: Sandbox) -> dict:
    user = sb.store.get("user", sb.user_id())
    return {"id": user["id"], "name": user["name"], "email": user["email"], "roles": ["WORKSPACE_ADMIN"]}


def _workspace(sb: Sandbox, workspace_id: str, title: str, description: str) -> dict:
    return {"id": workspace_id, "title": title, "description": description, "owner": sb.user_id(),
            "users": [_member(sb)]}


def _project(sb: Sandbox, project_id: str, workspace_id: str, title: str, description: str) -> dict:
    return {"id": project_id, "title": title, "description": description, "workspace": workspace_id,
            "owner": sb.user_id(), "users": [_member(sb)]}


class TitledCreate(BaseModel):
    """Body of ``POST /workspaces/`` and ``POST /workspaces/{id}/projects/`` (API doc §7)."""

    model_config = ConfigDict(strict=True)
    title: str = Field(min_length=1)
    description: str = ""


def _balance(sb: Sandbox) -> dict:
    cents = sb.settings.account_balance_cents
    breakdown = {"rewards": cents, "fees": 0, "vat": 0}
    return {"currency_code": sb.settings.currency_code, "total_balance": cents, "balance_breakdown": breakdown,
            "available_balance": cents, "available_balance_breakdown": breakdown}


def _listing(items: list[dict]) -> dict:
    return {"results": items, "meta": {"count": len(items)}}


def register(router: Router, sb: Sandbox) -> None:
    """Add ``/api/v1/users/me``, ``/workspaces`` and ``/projects`` endpoints."""

    def me(req: Request) -> Response:
        user = sb.store.get("user", sb.user_id())
        cents = sb.settings.account_balance_cents
        return json_response(200, {**user, "currency_code": sb.settings.currency_code, "balance": cents,
                                   "available_balance": cents})

    def list_workspaces(req: Request) -> Response:
        return json_response(200, _listing(sb.store.list("workspace")))

    def create_workspace(req: Request) -> Response:
        body = validate(TitledCreate, req.json_object())
        workspace = sb.store.put("workspace", _workspace(sb, object_id(), body.title, body.description))
        return json_response(201, workspace)

    def get_workspace(req: Request) -> Response:
        return json_response(200, sb.require_workspace(req.params["workspace_id"]))

    def balance(req: Request) -> Response:
        sb.require_workspace(req.params["workspace_id"])
        return json_response(200, _balance(sb))

    def list_projects(req: Request) -> Response:
        workspace = sb.require_workspace(req.params["workspace_id"])
        return json_response(200, _listing(sb.store.list("project", workspace=workspace["id"])))

    def create_project(req: Request) -> Response:
        workspace = sb.require_workspace(req.params["workspace_id"])
        body = validate(TitledCreate, req.json_object())
        project = sb.store.put("project", _project(sb, object_id(), workspace["id"], body.title, body.description))
        return json_response(201, project)

    def get_project(req: Request) -> Response:
        project = sb.store.get("project", req.params["project_id"])
        if project is None:
            raise not_found("project", req.params["project_id"])
        return json_response(200, project)

    router.add("GET", "/api/v1/users/me", me)
    router.add("GET", "/api/v1/workspaces", list_workspaces)
    router.add("POST", "/api/v1/workspaces", create_workspace)
    router.add("GET", r"/api/v1/workspaces/(?P<workspace_id>[^/]+)", get_workspace)
    router.add("GET", r"/api/v1/workspaces/(?P<workspace_id>[^/]+)/balance", balance)
    router.add("GET", r"/api/v1/workspaces/(?P<workspace_id>[^/]+)/projects", list_projects)
    router.add("POST", r"/api/v1/workspaces/(?P<workspace_id>[^/]+)/projects", create_project)
    router.add("GET", r"/api/v1/projects/(?P<project_id>[^/]+)", get_project)


def require_workspace(sb: Sandbox, workspace_id: str, field: str | None = None) -> dict:
    """The workspace; 404 when unknown (a path id), or 400 naming ``field`` (a body or query field)."""
    workspace = sb.store.get("workspace", workspace_id)
    if workspace is None:
        if field is not None:
            raise bad_request(field, f"no workspace with id {workspace_id!r}")
        raise not_found("workspace", workspace_id)
    return workspace
