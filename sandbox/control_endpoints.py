"""The control plane's endpoints under ``/_sandbox/`` (not part of Prolific's API; no token, no faults,
not logged): the request log, the fault rules, the settings and a reset. Documented in README.md.
"""

from __future__ import annotations

from sandbox import accounts
from sandbox.control import FaultRules
from sandbox.settings import Settings
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, json_response, validate

READ_ONLY_SETTINGS = ("object_store_endpoint_url", "object_store_bucket", "object_store_access_key",
                      "object_store_secret_key", "object_store_region")


def settings_view(sb: State) -> dict:
    """The settings plus the object store's endpoint, bucket, credentials and region (read-only)."""
    objects = sb.objects
    return {**sb.settings.model_dump(), "object_store_endpoint_url": objects.endpoint_url,
            "object_store_bucket": objects.bucket, "object_store_access_key": objects.access_key,
            "object_store_secret_key": objects.secret_key, "object_store_region": objects.region}


def requests(sb: State, req: Request) -> Response:
    """``GET /_sandbox/requests`` → ``{"requests": [entry, ...]}`` in arrival order."""
    return json_response(200, {"requests": sb.control.requests()})


def get_faults(sb: State, req: Request) -> Response:
    """``GET /_sandbox/faults`` → ``{"rules": [...]}``."""
    return json_response(200, {"rules": sb.control.rules()})


def set_faults(sb: State, req: Request) -> Response:
    """``POST /_sandbox/faults`` ``{"rules": [...]}``: replace the fault rules (400 naming a bad field)."""
    rules = validate(FaultRules, req.json_object()).rules
    sb.control.set_rules(rules)
    return json_response(200, {"rules": sb.control.rules()})


def clear_faults(sb: State, req: Request) -> Response:
    """``DELETE /_sandbox/faults``: no rules."""
    sb.control.set_rules([])
    return json_response(200, {"rules": []})


def get_settings(sb: State, req: Request) -> Response:
    """``GET /_sandbox/settings``: every setting and the object store's read-only fields."""
    return json_response(200, settings_view(sb))


def update_settings(sb: State, req: Request) -> Response:
    """``POST /_sandbox/settings`` ``{name: value}``: change some settings (400 for unknown, read-only or
    invalid values; nothing changes then)."""
    changes = req.json_object()
    read_only = sorted(set(changes) & set(READ_ONLY_SETTINGS))
    if read_only:
        raise ApiError(400, {name: ["read-only"] for name in read_only})
    with sb.lock:
        sb.settings = validate(Settings, {**sb.settings.model_dump(), **changes})
    return json_response(200, settings_view(sb))


def reset(sb: State, req: Request) -> Response:
    """``POST /_sandbox/reset``: forget every resource, the request log and the fault rules (settings stay)."""
    with sb.lock:
        sb.store.clear()
        sb.frames.clear()
        sb.runs.clear()
        accounts.ensure_defaults(sb)
        sb.control.reset()
    return json_response(200, {"reset": True})
