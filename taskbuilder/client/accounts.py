"""Account endpoints: the token's user, workspaces, the workspace balance, projects.

These paths are not in ``../shared/docs/prolific-api-current.md`` (its §0 lists no account operation);
they come from the official CLI, as recorded in ``../shared/docs/prolific-api.md`` §7.
"""

from __future__ import annotations

from taskbuilder.client.base import ClientBase
from taskbuilder.client.config import PAGE_SIZE
from taskbuilder.models import Project, RewardRecommendation, User, Workspace, WorkspaceBalance


class AccountEndpoints(ClientBase):
    """``/api/v1/users/me/``, ``/api/v1/workspaces/…`` (``prolific-api.md`` §7)."""

    def get_me(self) -> User:
        """``GET /api/v1/users/me/`` → the token's user (id, currency_code, balance in minor units).
        A cheap token check: raises :class:`~taskbuilder.errors.Unauthorized` for a bad token."""
        return self._call(User, "GET", "/api/v1/users/me/")

    def list_workspaces(self) -> list[Workspace]:
        """``GET /api/v1/workspaces/`` (all pages) → the workspaces the token can see."""
        return self._list(Workspace, "/api/v1/workspaces/", page_size=PAGE_SIZE)

    def get_workspace_balance(self, workspace_id: str) -> WorkspaceBalance:
        """``GET /api/v1/workspaces/{workspace_id}/balance/`` → ``{currency_code, total_balance,
        available_balance, …}``, integers in minor units (cents). The balance a publish of a study in
        this workspace (with its ``project``) is paid from."""
        return self._call(
            WorkspaceBalance, "GET", "/api/v1/workspaces/{workspace_id}/balance/",
            path_params={"workspace_id": workspace_id},
        )

    def list_projects(self, workspace_id: str) -> list[Project]:
        """``GET /api/v1/workspaces/{workspace_id}/projects/`` (all pages) → the workspace's projects."""
        return self._list(
            Project, "/api/v1/workspaces/{workspace_id}/projects/",
            path_params={"workspace_id": workspace_id}, page_size=PAGE_SIZE,
        )

    def get_reward_recommendations(self, workspace_id: str, currency: str) -> list[RewardRecommendation]:
        """``GET /api/v1/reward-recommendations/?workspace_id=&currency=`` (§12 of the current facts, from the
        official CLI) → Prolific's minimum and recommended hourly rewards, in minor units per hour."""
        return self._list(RewardRecommendation, "/api/v1/reward-recommendations/",
                          params={"workspace_id": workspace_id, "currency": currency})
