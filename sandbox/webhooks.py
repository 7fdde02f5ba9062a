"""Webhooks (now §6 of ../shared/docs/prolific-api-current.md): event types, workspace secrets,
subscriptions with the ``X-Hook-Secret`` handshake, and signed deliveries with redelivery on failure.

A subscription starts disabled; the response to its creation carries ``X-Hook-Secret``, and POSTing
that value back to ``/hooks/subscriptions/{id}/`` enables it. Enabled subscriptions get each event of
their type as a JSON POST signed with the workspace secret: ``X-Prolific-Request-Timestamp`` (UNIX
seconds) and ``X-Prolific-Request-Signature`` = base64(HMAC-SHA256(secret, timestamp + body)), over
exactly the bytes sent. Any target URL is accepted (the real API wants public https; see ASSUMPTIONS.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import heapq
import json
import random
import secrets
import threading
import time
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from sandbox.ids import iso, object_id
from sandbox.state import State
from sandbox.web import Request, Response, bad_request, json_response, not_found, validate


EVENT_TYPES = {  # now §6; the sandbox emits the first three
    "study.status.change": "A study changed status.",
    "submission.status.change": "A submission changed status.",
    "participant.submission.created": "A participant started a submission.",
    "study.progress.change": "A study's progress changed (not emitted by the sandbox).",
    "study.has_high_return_rate": "A study has a high return rate (not emitted by the sandbox).",
}
TIMEOUT_SECONDS = 5.0
PUBLIC_FIELDS = ("id", "event_type", "target_url", "is_enabled", "workspace_id")


class SecretCreate(BaseModel):
    """Body of ``POST /hooks/secrets/``."""

    model_config = ConfigDict(strict=True)
    workspace_id: str = Field(min_length=1)


class SubscriptionCreate(BaseModel):
    """Body of ``POST /hooks/subscriptions/``."""

    model_config = ConfigDict(strict=True)
    event_type: Literal[tuple(EVENT_TYPES)]  # type: ignore[valid-type]
    target_url: str = Field(pattern=r"^https?://\S+$")
    workspace_id: str = Field(min_length=1)


class SubscriptionUpdate(BaseModel):
    """Body of ``PATCH /hooks/subscriptions/{id}/``."""

    model_config = ConfigDict(strict=True)
    event_type: Literal[tuple(EVENT_TYPES)] | None = None  # type: ignore[valid-type]
    target_url: str | None = Field(None, pattern=r"^https?://\S+$")
    is_enabled: bool | None = None


class Confirm(BaseModel):
    """Body of ``POST /hooks/subscriptions/{id}/``: the ``X-Hook-Secret`` value."""

    model_config = ConfigDict(strict=True)
    secret: str


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(key=secret, message=timestamp + body)) (API doc §8 "Signature")."""
    return base64.b64encode(hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()).decode()


class Dispatcher:
    """Delivers events on a background thread, so no API request waits for a receiver.

    Each event is POSTed to its target; a delivery that fails (no 2xx, or no answer within
    ``TIMEOUT_SECONDS``) is tried again later, up to ``webhook_attempts`` times in all, after an
    exponential back-off with full jitter (``webhook_retry_base_seconds`` × 2^attempt, at most
    ``webhook_retry_max_seconds``). Waiting redeliveries do not hold up other events.
    Headers: ``X-Event-ID`` (the event id, the same on every attempt), ``X-Timestamp`` (UNIX seconds when
    the event happened, the same on every attempt), ``X-Prolific-Request-Timestamp`` (UNIX seconds of this
    attempt) and ``X-Prolific-Request-Signature`` (base64 HMAC-SHA256 of that timestamp + the body).
    """

    def __init__(self, sb: State) -> None:
        self._sb = sb
        self._due: list[tuple[float, int, dict]] = []   # heap of (due time, sequence, delivery)
        self._sequence = 0
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="webhook-deliveries", daemon=True)
        self._client = httpx.Client(timeout=TIMEOUT_SECONDS)
        self._rng = random.Random()

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering (deliveries still waiting are dropped; their events stay PENDING)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=TIMEOUT_SECONDS + 1)
        self._client.close()

    def _schedule(self, delivery: dict, due: float) -> None:
        with self._wake:
            self._sequence += 1
            heapq.heappush(self._due, (due, self._sequence, delivery))
            self._wake.notify()

    def emit(self, workspace_id: str, event_type: str, payload: dict) -> None:
        """Queue ``payload`` for every enabled subscription to ``event_type`` in the workspace
        (caller holds the sandbox lock); each gets an event record with status PENDING."""
        for hook in self._sb.store.list("hook", workspace_id=workspace_id, event_type=event_type, is_enabled=True):
            now = time.time()
            event = {"id": object_id(), "subscription_id": hook["id"], "datetime_created": iso(now),
                     "datetime_updated": iso(now), "event_type": event_type, "resource_id": payload["resource_id"],
                     "status": "PENDING", "target_url": hook["target_url"], "attempts": 0}
            self._sb.store.put("hook_event", event)
            self._schedule({"event_id": event["id"], "url": hook["target_url"], "workspace_id": workspace_id,
                            "body": json.dumps(payload).encode(), "occurred": str(int(now)), "attempt": 0}, now)

    def _next(self) -> dict | None:
        with self._wake:
            while not self._stopping:
                if self._due and self._due[0][0] <= time.time():
                    return heapq.heappop(self._due)[2]
                self._wake.wait(timeout=(self._due[0][0] - time.time()) if self._due else None)
        return None

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            with self._sb.lock:
                secret = _secret_of(self._sb, delivery["workspace_id"])
                settings = self._sb.settings
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Event-ID": delivery["event_id"],
                       "X-Timestamp": delivery["occurred"], "X-Prolific-Request-Timestamp": timestamp,
                       "X-Prolific-Request-Signature": signature(secret, timestamp, delivery["body"])}
            try:
                delivered = self._client.post(delivery["url"], content=delivery["body"], headers=headers).is_success
            except httpx.HTTPError:
                delivered = False
            delivery["attempt"] += 1
            retry = not delivered and delivery["attempt"] < settings.webhook_attempts
            with self._sb.lock:
                event = self._sb.store.get("hook_event", delivery["event_id"])
                if event is not None:
                    status = "SUCCEEDED" if delivered else "PENDING" if retry else "FAILED"
                    event.update(status=status, attempts=delivery["attempt"], datetime_updated=iso())
                    self._sb.store.put("hook_event", event)
            if retry:
                ceiling = min(settings.webhook_retry_max_seconds,
                              settings.webhook_retry_base_seconds * 2 ** (delivery["attempt"] - 1))
                self._schedule(delivery, time.time() + self._rng.uniform(0, ceiling))


def _secret_of(sb: State, workspace_id: str) -> str:
    """The workspace's active secret, created when it has none."""
    secrets_ = sb.store.list("hook_secret", workspace_id=workspace_id, active=True)
    if secrets_:
        return secrets_[-1]["value"]
    return _new_secret(sb, workspace_id)["value"]


def _new_secret(sb: State, workspace_id: str) -> dict:
    for old in sb.store.list("hook_secret", workspace_id=workspace_id, active=True):
        old["active"] = False
        sb.store.put("hook_secret", old)
    return sb.store.put("hook_secret", {"id": object_id(), "value": secrets.token_urlsafe(32),
                                        "workspace_id": workspace_id, "active": True})


def shown_secret(secret: dict) -> dict:
    """A secret as the API shows it: ``{id, value, workspace_id}``."""
    return {k: secret[k] for k in ("id", "value", "workspace_id")}


def get_hook(sb: State, req: Request) -> dict:
    """The subscription of the path; 404 when unknown."""
    hook = sb.store.get("hook", req.params["hook_id"])
    if hook is None:
        raise not_found("subscription", req.params["hook_id"])
    return hook


def public_hook(hook: dict) -> dict:
    """A subscription as the API shows it."""
    return {k: hook[k] for k in PUBLIC_FIELDS}


def event_types(sb: State, req: Request) -> Response:
    """``GET /hooks/event-types/`` (§6) → ``{results, meta}``."""
    results = [{"event_type": k, "description": v} for k, v in EVENT_TYPES.items()]
    return json_response(200, {"results": results, "meta": {"count": len(results)}})


def list_secrets(sb: State, req: Request) -> Response:
    """``GET /hooks/secrets/?workspace_id=`` (§6)."""
    workspace_id = req.query_value("workspace_id")
    items = [shown_secret(s) for s in sb.store.list("hook_secret", active=True)
             if workspace_id is None or s["workspace_id"] == workspace_id]
    return json_response(200, {"results": items, "meta": {"count": len(items)}})


def create_secret(sb: State, req: Request) -> Response:
    """``POST /hooks/secrets/`` ``{workspace_id}`` (§6) → 201; replaces the active secret."""
    body = validate(SecretCreate, req.json_object())
    sb.require_workspace(body.workspace_id, "workspace_id")
    return json_response(201, shown_secret(_new_secret(sb, body.workspace_id)))


def subscribe(sb: State, req: Request) -> Response:
    """``POST /hooks/subscriptions/`` (§6) → 201 disabled subscription with ``X-Hook-Secret``."""
    body = validate(SubscriptionCreate, req.json_object())
    sb.require_workspace(body.workspace_id, "workspace_id")
    _secret_of(sb, body.workspace_id)
    handshake = secrets.token_hex(16)
    hook = sb.store.put("hook", {"id": object_id(), "event_type": body.event_type, "target_url": body.target_url,
                                 "workspace_id": body.workspace_id, "is_enabled": False, "handshake": handshake})
    return json_response(201, public_hook(hook), {"X-Hook-Secret": handshake})


def list_hooks(sb: State, req: Request) -> Response:
    """``GET /hooks/subscriptions/`` (``workspace_id``, ``is_enabled`` filters)."""
    workspace_id, enabled = req.query_value("workspace_id"), req.query_value("is_enabled")
    if enabled not in (None, "true", "false"):
        raise bad_request("is_enabled", "must be true or false")
    items = [public_hook(h) for h in sb.store.list("hook") if h.get("deleted") is not True
             and (workspace_id is None or h["workspace_id"] == workspace_id)
             and (enabled is None or h["is_enabled"] == (enabled == "true"))]
    return json_response(200, {"results": items, "meta": {"count": len(items)}})


def get(sb: State, req: Request) -> Response:
    """``GET /hooks/subscriptions/{id}/``."""
    return json_response(200, public_hook(live(get_hook(sb, req))))


def live(hook: dict) -> dict:
    """The subscription unless deleted (404)."""
    if hook.get("deleted"):
        raise not_found("subscription", hook["id"])
    return hook


def confirm(sb: State, req: Request) -> Response:
    """``POST /hooks/subscriptions/{id}/`` ``{secret}`` (§6): the X-Hook-Secret value enables it."""
    hook = live(get_hook(sb, req))
    body = validate(Confirm, req.json_object())
    if not hmac.compare_digest(body.secret, hook["handshake"]):
        raise bad_request("secret", "does not match the X-Hook-Secret of this subscription")
    hook["is_enabled"] = True
    sb.store.put("hook", hook)
    return json_response(200, public_hook(hook))


def update(sb: State, req: Request) -> Response:
    """``PATCH /hooks/subscriptions/{id}/`` (§6)."""
    hook = live(get_hook(sb, req))
    body = validate(SubscriptionUpdate, req.json_object())
    hook.update({k: v for k, v in body.model_dump().items() if v is not None})
    sb.store.put("hook", hook)
    return json_response(200, public_hook(hook))


def delete(sb: State, req: Request) -> Response:
    """``DELETE /hooks/subscriptions/{id}/`` → 204."""
    hook = live(get_hook(sb, req))
    hook.update(deleted=True, is_enabled=False)
    sb.store.put("hook", hook)
    return Response(204)


def events(sb: State, req: Request) -> Response:
    """``GET /hooks/subscriptions/{id}/events/?status=`` (now §6) → ``{results, meta}``; each event's
    ``status`` is PENDING (also while a redelivery waits), SUCCEEDED or FAILED (all attempts failed)."""
    hook = live(get_hook(sb, req))
    wanted = req.query_value("status")
    items = [{k: e[k] for k in ("id", "datetime_created", "datetime_updated", "event_type", "resource_id",
                                "status", "target_url")}
             for e in sb.store.list("hook_event", subscription_id=hook["id"]) if wanted in (None, e["status"])]
    return json_response(200, {"results": items, "meta": {"count": len(items)}})

