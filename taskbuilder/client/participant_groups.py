"""Participant group endpoints (``../shared/docs/prolific-api-current.md`` §8): list, create, add members, members."""

from __future__ import annotations

from taskbuilder.client.base import ClientBase
from taskbuilder.client.config import PAGE_SIZE
from taskbuilder.models.resources import ProlificModel


class ParticipantGroup(ProlificModel):
    """A participant group (§8 ``ParticipantGroupResponse``): ``id``, ``name``, ``workspace_id``,
    ``participant_count`` (every field "or null" in the doc)."""

    id: str
    name: str | None = None
    workspace_id: str | None = None
    participant_count: int | None = None
    is_deleted: bool | None = None


class GroupMember(ProlificModel):
    """One member of a group (§8): ``participant_id``, ``datetime_created``."""

    participant_id: str
    datetime_created: str | None = None


class ParticipantGroupEndpoints(ClientBase):
    """``/api/v1/participant-groups/…`` (§8)."""

    def list_participant_groups(self, workspace_id: str) -> list[ParticipantGroup]:
        """``GET /api/v1/participant-groups/?workspace_id=`` (§8; the CLI's plain parameter) → the workspace's groups."""
        return self._list(ParticipantGroup, "/api/v1/participant-groups/", params={"workspace_id": workspace_id},
                          page_size=PAGE_SIZE)

    def create_participant_group(self, *, name: str, workspace_id: str, description: str | None = None) -> ParticipantGroup:
        """``POST /api/v1/participant-groups/`` ``{name, workspace_id, description?}`` (§8) → 201, the group.
        Not idempotent: each call creates a group (look the name up first)."""
        body = {"name": name, "workspace_id": workspace_id, **({"description": description} if description else {})}
        return self._call(ParticipantGroup, "POST", "/api/v1/participant-groups/", json=body)

    def add_participant_group_members(self, group_id: str, participant_ids: list[str]) -> list[GroupMember]:
        """``POST /api/v1/participant-groups/{id}/participants/`` ``{participant_ids}`` (§8) → the members;
        existing members are ignored by the API, so a repeat adds nothing."""
        response = self._request("POST", "/api/v1/participant-groups/{group_id}/participants/",
                                 path_params={"group_id": group_id}, json={"participant_ids": list(participant_ids)})
        body = self._json(response)
        results = body.get("results", []) if isinstance(body, dict) else []
        return [self._parse(GroupMember, item, response) for item in results]

    def list_participant_group_members(self, group_id: str) -> list[GroupMember]:
        """``GET /api/v1/participant-groups/{id}/participants/`` (§8; all pages) → the members."""
        return self._list(GroupMember, "/api/v1/participant-groups/{group_id}/participants/",
                          path_params={"group_id": group_id}, page_size=PAGE_SIZE)
