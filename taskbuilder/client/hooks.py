"""Webhook endpoints (``../shared/docs/prolific-api-current.md`` §6): event types, secrets, subscriptions."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from taskbuilder.client.base import ClientBase
from taskbuilder.client.config import PAGE_SIZE
from taskbuilder.models import (
    ConfirmSubscriptionRequest,
    CreateHookSecretRequest,
    CreateSubscriptionRequest,
    HookSecret,
    HookSubscription,
)


class HookEndpoints(ClientBase):
    """``/api/v1/hooks/…`` (§6)."""

    def list_hook_event_types(self) -> list[dict[str, Any]]:
        """``GET /api/v1/hooks/event-types/`` → ``[{"event_type", "description"}, …]``."""
        return self._collect("/api/v1/hooks/event-types/")

    def list_hook_secrets(self, workspace_id: str) -> list[HookSecret]:
        """``GET /api/v1/hooks/secrets/?workspace_id=…`` → the workspace's active signing secret(s)."""
        return self._list(HookSecret, "/api/v1/hooks/secrets/", params={"workspace_id": workspace_id})

    def create_hook_secret(self, workspace_id: str) -> HookSecret:
        """``POST /api/v1/hooks/secrets/`` ``{workspace_id}`` → a new signing secret; it replaces the
        workspace's previous one (one active secret per workspace)."""
        return self._call(HookSecret, "POST", "/api/v1/hooks/secrets/", json=CreateHookSecretRequest(workspace_id=workspace_id).body())

    def create_hook_subscription(self, *, event_type: str, target_url: str, workspace_id: str) -> HookSubscription:
        """``POST /api/v1/hooks/subscriptions/`` ``{event_type, target_url, workspace_id}`` → the (not yet
        enabled) subscription, with the answer's ``X-Hook-Secret`` header as ``hook_secret``. Prolific
        delivers only to public https URLs."""
        response = self._request(
            "POST", "/api/v1/hooks/subscriptions/",
            json=CreateSubscriptionRequest(event_type=event_type, target_url=target_url, workspace_id=workspace_id).body(),
        )
        subscription = self._parse(HookSubscription, self._json(response), response)
        handshake = response.headers.get("x-hook-secret")
        return subscription.model_copy(update={"hook_secret": SecretStr(handshake) if handshake else None})

    def confirm_hook_subscription(self, subscription_id: str, secret: SecretStr | str) -> HookSubscription:
        """``POST /api/v1/hooks/subscriptions/{subscription_id}/`` ``{"secret": <X-Hook-Secret>}`` → the
        enabled subscription."""
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        return self._call(
            HookSubscription, "POST", "/api/v1/hooks/subscriptions/{subscription_id}/",
            path_params={"subscription_id": subscription_id}, json=ConfirmSubscriptionRequest(secret=value).body(),
        )

    def list_hook_subscriptions(self, workspace_id: str, *, is_enabled: bool | None = None) -> list[HookSubscription]:
        """``GET /api/v1/hooks/subscriptions/?workspace_id=…[&is_enabled=true|false]`` (all pages)."""
        params: dict[str, str] = {"workspace_id": workspace_id}
        if is_enabled is not None:
            params["is_enabled"] = "true" if is_enabled else "false"
        return self._list(HookSubscription, "/api/v1/hooks/subscriptions/", params=params, page_size=PAGE_SIZE)

    def delete_hook_subscription(self, subscription_id: str) -> None:
        """``DELETE /api/v1/hooks/subscriptions/{subscription_id}/`` → 204."""
        self._request(
            "DELETE", "/api/v1/hooks/subscriptions/{subscription_id}/", path_params={"subscription_id": subscription_id}
        )
