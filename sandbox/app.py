"""The sandbox application: builds the state, starts the object store, the webhook deliveries and the
background engine, and dispatches each request.

``Sandbox.handle(request)`` is what the HTTP server calls for every request. Requests under
``/api/v1/`` go through fault rules (target "api"), the token check, the route table
(``routes.py``) and the request log; requests under ``/_sandbox/`` are the control plane (no token,
no faults, not logged).
"""

from __future__ import annotations

import hmac
import json
import sys
import threading
import time
import traceback
from pathlib import Path

from sandbox import accounts, batches, datasets, imports, participants, routes, syncs, webhooks
from sandbox.settings import Settings
from sandbox.state import State
from sandbox.store import MemoryStore
from sandbox.web import ApiError, Request, Response, Router, error_response

TICK_SECONDS = 0.05


class Sandbox:
    """One running sandbox.

    Args:
        settings: initial settings.
        store: the state store (``MemoryStore`` or ``SqliteStore``).
        token: the API token accepted in ``Authorization: Token <token>``.
        objects_dir: folder of the object store's files.
    """

    def __init__(self, settings: Settings, store: MemoryStore, token: str, objects_dir: Path) -> None:
        self.state = State(settings, store, token, objects_dir, on_object_put=imports.object_put)
        self.hooks = webhooks.Dispatcher(self.state)
        self.state.hooks = self.hooks
        self.router: Router = routes.router(routes.API_ROUTES)
        self.control_router: Router = routes.router(routes.CONTROL_ROUTES)
        self._stopping = threading.Event()
        self._engine = threading.Thread(target=self._run_engine, name="sandbox-engine", daemon=True)
        with self.state.lock:
            accounts.ensure_defaults(self.state)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the object store, the webhook deliveries and the background engine."""
        self.state.objects.start()
        self.hooks.start()
        self._engine.start()

    def stop(self) -> None:
        """Stop the engine, the deliveries and the object store."""
        self._stopping.set()
        if self._engine.is_alive():
            self._engine.join(timeout=5)
        self.hooks.stop()
        self.state.objects.stop()

    def _run_engine(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            try:
                datasets.process_due(self.state)
                imports.process_due(self.state)
                batches.setup_due(self.state)
                syncs.process_due(self.state)
                participants.tick(self.state)
            except Exception:  # keep simulating; the trace says what went wrong
                traceback.print_exc(file=sys.stderr)

    # -- dispatch ------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        """Answer one request; None means "close the connection without a response" (a fault)."""
        if request.path.startswith("/_sandbox/") or request.path == "/_sandbox":
            return self._dispatch(self.control_router, request)
        control = self.state.control
        body = _json_body(request)
        fault = control.match_fault("api", request.method, request.path)
        effect = fault["effect"] if fault else None
        if effect == "delay":
            time.sleep(fault["delay_seconds"])
        if effect == "drop":
            control.record("api", request.method, request.path, 0, body)
            return None
        if effect == "status":
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
            response = error_response(ApiError(fault["status"], "Injected fault (sandbox fault rule).", headers=headers))
        else:
            response = self._api(request)
        if effect == "lost_response":
            control.record("api", request.method, request.path, 0, body)
            return None
        control.record("api", request.method, request.path, response.status, body)
        return response

    def _api(self, request: Request) -> Response:
        if request.path.startswith("/api/v1/") and not self._authorised(request):
            return error_response(ApiError(401, "Authentication credentials were not provided or are invalid; "
                                                "send the header Authorization: Token <token>."))
        with self.state.lock:
            return self._dispatch(self.router, request)

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme == "Token" and hmac.compare_digest(token.strip().encode(), self.state.token.encode())

    def _dispatch(self, router: Router, request: Request) -> Response:
        try:
            handler, request.params = router.resolve(request.method, request.path)
            return handler(self.state, request)
        except ApiError as err:
            return error_response(err)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return error_response(ApiError(500, "Internal error in the sandbox; see its standard error."))


def _json_body(request: Request) -> object:
    """The request's body as JSON for the request log, or None (no body, or not JSON, e.g. JSONL)."""
    if not request.body.strip():
        return None
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
