"""The state of one running sandbox, handed to every endpoint and engine step as an argument.

``State`` holds the settings, the resource store, the object store, the control plane (request log,
fault rules), the in-memory caches (dataset rows, study simulations) and the event emitter; it
imports no endpoint module, so endpoint modules depend on it and never on the app or on each other's
registration. Callers hold ``state.lock`` while they read or change resources.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Protocol

from sandbox.control import ControlPlane
from sandbox.ids import default_id
from sandbox.objectstore import ObjectStore
from sandbox.settings import Settings
from sandbox.store import MemoryStore
from sandbox.web import bad_request, not_found


class Emitter(Protocol):
    """Queues webhook events (implemented by ``webhooks.Dispatcher``)."""

    def emit(self, workspace_id: str, event_type: str, payload: dict) -> None:
        """Queue ``payload`` for the workspace's enabled subscriptions to ``event_type``."""


class _NoEmitter:
    def emit(self, workspace_id: str, event_type: str, payload: dict) -> None:
        """Drop the event (no dispatcher attached yet)."""


class State:
    """Everything a request or an engine tick reads and changes.

    Attributes:
        settings: the current settings (replaced as a whole by ``POST /_sandbox/settings``).
        store: resources by kind and id (``MemoryStore`` or ``SqliteStore``).
        token: the API token accepted in ``Authorization: Token <token>``.
        lock: serialises every read-modify-write of resources.
        objects: the S3-compatible object store (uploads, reports, participants' files).
        control: request log and fault rules.
        frames: dataset id → its rows (a cache; read again from the object store when missing).
        runs: study id → its simulation bookkeeping (a cache; rebuilt from submissions when missing).
        hooks: the webhook event emitter.
    """

    def __init__(self, settings: Settings, store: MemoryStore, token: str, objects_dir: Path,
                 on_object_put: Callable[[State, str], None]) -> None:
        """``on_object_put(state, key)`` runs, under the lock, after each object PUT through the object
        store's front door."""
        self.settings = settings
        self.store = store
        self.token = token
        self.lock = threading.RLock()
        self.control = ControlPlane(seed=lambda: self.settings.seed,
                                    on_object_put=lambda key, size: self._object_put(on_object_put, key))
        self.objects = ObjectStore(objects_dir, listener=self.control)
        self.frames: dict[str, Any] = {}
        self.runs: dict[str, Any] = {}
        self.hooks: Emitter = _NoEmitter()

    def _object_put(self, react: Callable[[State, str], None], key: str) -> None:
        with self.lock:
            react(self, key)

    def user_id(self) -> str:
        """Id of the sandbox's researcher (``users/me``)."""
        return default_id("user")

    def require_workspace(self, workspace_id: str, field: str | None = None) -> dict:
        """The workspace; 404 when unknown (a path id), or 400 naming ``field`` (a body or query field)."""
        workspace = self.store.get("workspace", workspace_id)
        if workspace is None:
            if field is not None:
                raise bad_request(field, f"no workspace with id {workspace_id!r}")
            raise not_found("workspace", workspace_id)
        return workspace

    def emit(self, workspace_id: str, event_type: str, payload: dict) -> None:
        """Queue a webhook event (§6 of the API facts) for the workspace's enabled subscriptions."""
        self.hooks.emit(workspace_id, event_type, payload)
