"""The sandbox application: state, object store, control plane, background engine, request dispatch.

``Sandbox.handle(request)`` is what the HTTP server calls for every request. Requests under
``/api/v1/`` go through fault rules (target "api"), the token check, the route table and the request
log; requests under ``/_sandbox/`` are the control plane (no token, no faults, not logged).
"""

from __future__ import annotations

import hmac
import sys
import threading
import time
import traceback
from pathlib import Path

import pandas as pd

from sandbox import accounts, batches, datasets, participants, report, studies, submissions, webhooks
from sandbox.control import ControlPlane, FaultRules
from sandbox.settings import Settings
from sandbox.store import MemoryStore
from sandbox.web import ApiError, Request, Response, Router, error_response, json_response, validate

TICK_SECONDS = 0.05
READ_ONLY_SETTINGS = ("object_store_endpoint_url", "object_store_bucket", "object_store_access_key",
                      "object_store_secret_key", "object_store_region")


class Sandbox:
    """One running sandbox.

    Args:
        settings: initial settings.
        store: the state store (``MemoryStore`` or ``SqliteStore``).
        token: the API token accepted in ``Authorization: Token <token>``.
        objects_dir: folder of the object store's files.
    """

    def __init__(self, settings: Settings, store: MemoryStore, token: str, objects_dir: Path) -> None:
        from sandbox.objectstore import ObjectStore  # written alongside; imported when a sandbox is built

        self.settings = settings
        self.store = store
        self.token = token
        self.lock = threading.RLock()
        self.frames: dict[str, pd.DataFrame] = {}
        self.runs: dict[str, participants.StudyRun] = {}
        self.control = ControlPlane(seed=lambda: self.settings.seed, on_object_put=self._object_put)
        self.objects = ObjectStore(objects_dir, listener=self.control)
        self.objects.sign_content_type = settings.sign_content_type
        self.hooks = webhooks.Dispatcher(self)
        self.router = Router()
        for module in (accounts, datasets, batches, report, studies, submissions, webhooks):
            module.register(self.router, self)
        self.control_router = Router()
        self._add_control_routes()
        self._stopping = threading.Event()
        self._engine = threading.Thread(target=self._run_engine, name="sandbox-engine", daemon=True)
        with self.lock:
            accounts.ensure_defaults(self)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the object store, the webhook deliveries and the background engine."""
        self.objects.start()
        self.hooks.start()
        self._engine.start()

    def stop(self) -> None:
        """Stop the engine, the deliveries and the object store."""
        self._stopping.set()
        if self._engine.is_alive():
            self._engine.join(timeout=5)
        self.hooks.stop()
        self.objects.stop()

    def _run_engine(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            try:
                datasets.process_due(self)
                batches.setup_due(self)
                participants.tick(self)
            except Exception:  # keep simulating; the trace says what went wrong
                traceback.print_exc(file=sys.stderr)

    # -- helpers used by the resource modules -------------------------------------------------------
    def user_id(self) -> str:
        """Id of the sandbox's researcher (``users/me``)."""
        return accounts.default_id("user")

    def require_workspace(self, workspace_id: str, field: str | None = None) -> dict:
        """The workspace; 404 for an unknown path id, 400 naming ``field`` for an unknown body/query id."""
        return accounts.require_workspace(self, workspace_id, field)

    def emit(self, workspace_id: str, event_type: str, payload: dict) -> None:
        """Queue a webhook event (API doc §8) for the workspace's enabled subscriptions."""
        self.hooks.emit(workspace_id, event_type, payload)

    def _object_put(self, key: str, size: int) -> None:
        with self.lock:
            datasets.object_put(self, key)

    # -- dispatch ------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        """Answer one request; None means "close the connection without a response" (a fault)."""
        if request.path.startswith("/_sandbox/") or request.path == "/_sandbox":
            return self._dispatch(self.control_router, request)
        fault = self.control.match_fault("api", request.method, request.path)
        effect = fault["effect"] if fault else None
        if effect == "delay":
            time.sleep(fault["delay_seconds"])
        if effect == "drop":
            self.control.record("api", request.method, request.path, 0)
            return None
        if effect == "status":
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
            response = error_response(ApiError(fault["status"], "Injected fault (sandbox fault rule).", headers=headers))
        else:
            response = self._api(request)
        if effect == "lost_response":
            self.control.record("api", request.method, request.path, 0)
            return None
        self.control.record("api", request.method, request.path, response.status)
        return response

    def _api(self, request: Request) -> Response:
        if request.path.startswith("/api/v1/") and not self._authorised(request):
            return error_response(ApiError(401, "Authentication credentials were not provided or are invalid; "
                                                "send the header Authorization: Token <token>."))
        with self.lock:
            return self._dispatch(self.router, request)

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme == "Token" and hmac.compare_digest(token.strip().encode(), self.token.encode())

    def _dispatch(self, router: Router, request: Request) -> Response:
        try:
            handler, request.params = router.resolve(request.method, request.path)
            return handler(request)
        except ApiError as err:
            return error_response(err)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return error_response(ApiError(500, "Internal error in the sandbox; see its standard error."))

    # -- control plane -------------------------------------------------------------------------------
    def _add_control_routes(self) -> None:
        add = self.control_router.add
        add("GET", "/_sandbox/requests", lambda req: json_response(200, {"requests": self.control.requests()}))
        add("GET", "/_sandbox/faults", lambda req: json_response(200, {"rules": self.control.rules()}))
        add("POST", "/_sandbox/faults", self._set_faults)
        add("DELETE", "/_sandbox/faults", self._clear_faults)
        add("GET", "/_sandbox/settings", lambda req: json_response(200, self.settings_view()))
        add("POST", "/_sandbox/settings", self._update_settings)
        add("POST", "/_sandbox/reset", self._reset)

    def settings_view(self) -> dict:
        """The settings plus the object store's endpoint, bucket, credentials and region (read-only)."""
        return {**self.settings.model_dump(), "object_store_endpoint_url": self.objects.endpoint_url,
                "object_store_bucket": self.objects.bucket, "object_store_access_key": self.objects.access_key,
                "object_store_secret_key": self.objects.secret_key, "object_store_region": self.objects.region}

    def _set_faults(self, req: Request) -> Response:
        rules = validate(FaultRules, req.json_object()).rules
        self.control.set_rules(rules)
        return json_response(200, {"rules": self.control.rules()})

    def _clear_faults(self, req: Request) -> Response:
        self.control.set_rules([])
        return json_response(200, {"rules": []})

    def _update_settings(self, req: Request) -> Response:
        changes = req.json_object()
        read_only = sorted(set(changes) & set(READ_ONLY_SETTINGS))
        if read_only:
            raise ApiError(400, {name: ["read-only"] for name in read_only})
        with self.lock:
            self.settings = validate(Settings, {**self.settings.model_dump(), **changes})
            self.objects.sign_content_type = self.settings.sign_content_type
        return json_response(200, self.settings_view())

    def _reset(self, req: Request) -> Response:
        with self.lock:
            self.store.clear()
            self.frames.clear()
            self.runs.clear()
            accounts.ensure_defaults(self)
            self.control.reset()
        return json_response(200, {"reset": True})
