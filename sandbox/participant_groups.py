"""Participant groups (now §8 and §12 of ../shared/docs/prolific-api-current.md): create, list, get, add
members, list members, remove members; the study filters that use them and the completion-code actions
that change them.

A group is stored with its members (participant id → when they joined). Groups are dynamic: a study's
filters read the members at each arrival of a simulated participant.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.ids import iso, object_id
from sandbox.state import State
from sandbox.web import Request, Response, bad_request, json_response, not_found, paginate, validate

GROUP_FIELDS = ("id", "name", "description", "workspace_id", "organisation_id", "project_id", "is_deleted",
                "feeder_studies", "participant_count")
ALLOWLIST = "participant_group_allowlist"
BLOCKLIST = "participant_group_blocklist"     # not documented (now §12): the sandbox's choice
PREVIOUS_STUDIES = "previous_studies_blocklist"
ADD_ACTION = "ADD_TO_PARTICIPANT_GROUP"
REMOVE_ACTION = "REMOVE_FROM_PARTICIPANT_GROUP"


class GroupCreate(BaseModel):
    """Body of ``POST /participant-groups/`` (now §8)."""

    model_config = ConfigDict(strict=True)
    name: str = Field(min_length=1)
    workspace_id: str | None = None
    organisation_id: str | None = None
    description: str | None = None
    participant_ids: list[str] = []

    @model_validator(mode="after")
    def _owner(self) -> "GroupCreate":
        if self.workspace_id is None and self.organisation_id is None:
            raise ValueError("Either a workspace or organisation ID must be specified")
        return self


class Members(BaseModel):
    """Body of ``POST`` / ``DELETE /participant-groups/{id}/participants/``."""

    model_config = ConfigDict(strict=True)
    participant_ids: list[str] = Field(min_length=1)


def _shown(group: dict) -> dict:
    return {**{name: group.get(name) for name in GROUP_FIELDS}, "participant_count": len(group["members"])}


def _members(group: dict) -> list[dict]:
    return [{"participant_id": pid, "datetime_created": when} for pid, when in group["members"].items()]


def get_group(sb: State, group_id: str) -> dict:
    """The stored group; 404 when unknown."""
    group = sb.store.get("participant_group", group_id)
    if group is None:
        raise not_found("participant group", group_id)
    return group


def add_members(sb: State, group: dict, participant_ids: list[str]) -> None:
    """Add participants to a group (existing members are ignored) and store it."""
    for participant_id in participant_ids:
        group["members"].setdefault(participant_id, iso())
    sb.store.put("participant_group", group)


def create(sb: State, req: Request) -> Response:
    """``POST /participant-groups/`` ``{name, workspace_id | organisation_id, description?, participant_ids?}``
    (now §8) → 201 the group; 400 naming the field at fault (an unknown workspace included)."""
    body = validate(GroupCreate, req.json_object())
    if body.workspace_id is not None:
        sb.require_workspace(body.workspace_id, "workspace_id")
    group = {"id": object_id(), "name": body.name, "description": body.description, "workspace_id": body.workspace_id,
             "organisation_id": body.organisation_id, "project_id": None, "is_deleted": False, "feeder_studies": [],
             "members": {}}
    add_members(sb, group, body.participant_ids)
    return json_response(201, _shown(group))


def list_groups(sb: State, req: Request) -> Response:
    """``GET /participant-groups/?workspace_id=`` (or ``filter[workspace_id]=``) (now §8) → paginated
    ``{results, _links, meta}``."""
    workspace_id = req.query_value("workspace_id") or req.query_value("filter[workspace_id]")
    groups = [_shown(g) for g in sb.store.list("participant_group")
              if workspace_id is None or g["workspace_id"] == workspace_id]
    return json_response(200, paginate(req, groups))


def get(sb: State, req: Request) -> Response:
    """``GET /participant-groups/{id}/``; 404 when unknown."""
    return json_response(200, _shown(get_group(sb, req.params["group_id"])))


def add(sb: State, req: Request) -> Response:
    """``POST /participant-groups/{id}/participants/`` ``{participant_ids}`` (now §8) → 200 ``{results:
    [{participant_id, datetime_created}]}``, every member; existing members are ignored."""
    group = get_group(sb, req.params["group_id"])
    add_members(sb, group, validate(Members, req.json_object()).participant_ids)
    return json_response(200, {"results": _members(group)})


def list_members(sb: State, req: Request) -> Response:
    """``GET /participant-groups/{id}/participants/`` → paginated ``{results: [{participant_id,
    datetime_created}], _links, meta}``."""
    return json_response(200, paginate(req, _members(get_group(sb, req.params["group_id"]))))


def remove(sb: State, req: Request) -> Response:
    """``DELETE /participant-groups/{id}/participants/`` ``{participant_ids}`` → 200 ``{results}`` of the
    members left; ids that are not members are ignored."""
    group = get_group(sb, req.params["group_id"])
    for participant_id in validate(Members, req.json_object()).participant_ids:
        group["members"].pop(participant_id, None)
    sb.store.put("participant_group", group)
    return json_response(200, {"results": _members(group)})


# -- study filters and completion-code actions -----------------------------------------------------
def check_filters(sb: State, filters: list[dict]) -> None:
    """400 naming ``filters[i]...`` for a malformed filter, or a group / study filter naming an unknown id.
    Other filter ids are stored and not simulated (see ASSUMPTIONS.md)."""
    for i, entry in enumerate(filters):
        if not isinstance(entry.get("filter_id"), str) or not entry["filter_id"]:
            raise bad_request(f"filters[{i}].filter_id", "filter_id is required")
        if entry["filter_id"] not in (ALLOWLIST, BLOCKLIST, PREVIOUS_STUDIES):
            continue
        values = entry.get("selected_values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise bad_request(f"filters[{i}].selected_values", "a non-empty list of ids is required")
        kind = "study" if entry["filter_id"] == PREVIOUS_STUDIES else "participant_group"
        for j, value in enumerate(values):
            if sb.store.get(kind, value) is None:
                raise bad_request(f"filters[{i}].selected_values[{j}]", f"no {kind.replace('_', ' ')} with id {value!r}")


def check_actions(sb: State, codes: list[dict]) -> None:
    """400 naming ``completion_codes[i].actions[j].participant_group`` when a group action names no known
    group."""
    for i, code in enumerate(codes):
        for j, action in enumerate(code.get("actions") or []):
            if action["action"] in (ADD_ACTION, REMOVE_ACTION):
                group_id = action.get("participant_group")
                if not isinstance(group_id, str) or sb.store.get("participant_group", group_id) is None:
                    raise bad_request(f"completion_codes[{i}].actions[{j}].participant_group",
                                      f"{action['action']} needs the id of a participant group; got {group_id!r}")


def eligible(sb: State, study: dict, participant_id: str) -> bool:
    """Whether the study's filters let the participant in (read now: groups are dynamic)."""
    for entry in study.get("filters") or []:
        kind, values = entry.get("filter_id"), entry.get("selected_values") or []
        if kind in (ALLOWLIST, BLOCKLIST):
            member = any(participant_id in (sb.store.get("participant_group", g) or {}).get("members", {})
                         for g in values)
            if member != (kind == ALLOWLIST):
                return False
        elif kind == PREVIOUS_STUDIES:
            for study_id in values:
                if any(s["participant_id"] == participant_id for s in sb.store.list("submission", study_id=study_id)):
                    return False
    return True


def apply_actions(sb: State, code: dict | None, participant_id: str) -> None:
    """Run the group actions of the completion code a participant entered."""
    for action in (code or {}).get("actions") or []:
        group = sb.store.get("participant_group", action.get("participant_group") or "")
        if group is None:
            continue
        if action["action"] == ADD_ACTION:
            add_members(sb, group, [participant_id])
        elif action["action"] == REMOVE_ACTION:
            group["members"].pop(participant_id, None)
            sb.store.put("participant_group", group)
