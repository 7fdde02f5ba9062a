"""What an error answer says, read from its headers and body: the readable detail of a Prolific error body
(API doc §1.1), the `Retry-After` seconds, the request id, the S3 XML error's code and message.

Pure functions over httpx responses and bodies; `taskbuilder.errors` builds its typed errors from them.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

TEXT_BODY_LIMIT = 500
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amz-request-id")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header value into seconds (≥ 0).

    Accepts delta-seconds (``"120"``, also ``"1.5"``) or an HTTP date (RFC 9110 §10.2.3), measured from
    ``now`` (default: the current UTC time). Returns ``None`` for a missing or unparseable value.
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def request_id_of(response: httpx.Response) -> str | None:
    """Return the request id a server put in its answer (``X-Request-Id``, ``Request-Id`` or
    ``x-amz-request-id``), else ``None``."""
    for name in _REQUEST_ID_HEADERS:
        if value := response.headers.get(name):
            return value
    return None


def _render(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_render(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "; ".join(_render(item) for item in value)
    return str(value)


def _render_issue(issue: Any) -> str:
    if not isinstance(issue, dict):
        return _render(issue)
    location = "batch_items"
    for key, part in (("page", ""), ("row", "rows"), ("column", "columns"), ("item", "items")):
        if issue.get(key) is not None:
            location += f"{'.' + part if part else ''}[{issue[key]}]"
    about = [str(issue["type"])] if issue.get("type") else []
    if issue.get("field"):
        about.append(f"field {issue['field']!r}")
    about_text = f" ({', '.join(about)})" if about else ""
    return f"{location}{about_text}: {issue.get('message') or 'invalid'}"


def extract_detail(body: Any, fallback: str) -> str:
    """Return a readable error message from a Prolific error body (API doc §1.1), or ``fallback``.

    Shapes: ``{"error": {"title", "detail" (str | object | list), "additional_information"}}``;
    ``{"message", "detail"}``; ``{"type": "INVALID_BATCH_ITEMS", "issues": [...]}`` (each issue rendered
    as ``batch_items[0].rows[0].columns[0].items[0] (free_text, field 'x'): message``, zero-based as
    sent); any other JSON object (e.g. ``{"field": ["msg"]}``) as ``key: value; …``; text as is.
    """
    if isinstance(body, dict):
        if body.get("type") == "INVALID_BATCH_ITEMS" and isinstance(body.get("issues"), list):
            return "invalid batch_items: " + "; ".join(_render_issue(issue) for issue in body["issues"])
        error = body.get("error")
        if isinstance(error, dict):
            title, detail = _render(error.get("title")), _render(error.get("detail"))
            text = f"{title}: {detail}" if title and detail and title != detail else (detail or title)
            if extra := _render(error.get("additional_information")):
                text = f"{text} ({extra})" if text else extra
            if text:
                return text
        elif error:
            return _render(error)
        message, detail = _render(body.get("message")), _render(body.get("detail"))
        if message or detail:
            return f"{message}: {detail}" if message and detail and message != detail else (message or detail)
        return _render(body) or fallback
    if isinstance(body, (list, str)):
        return _render(body).strip() or fallback
    return fallback


def response_body(response: httpx.Response) -> Any:
    """The parsed JSON of an error answer, else its text (first 500 characters), or None when it is empty."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:TEXT_BODY_LIMIT]


def s3_error_fields(body: bytes) -> tuple[str | None, str | None]:
    """(Code, Message) of an S3 XML error body `<Error><Code/><Message/></Error>`; for a body that is not XML,
    (None, its text: first 500 characters, or None when empty)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        text = body.decode("utf-8", "replace").strip()[:TEXT_BODY_LIMIT]
        return None, text or None
    return root.findtext("Code"), root.findtext("Message")


def is_expired(status: int, s3_message: str | None) -> bool:
    """Whether an S3 answer says the presigned URL expired (AWS 403 "Request has expired"; rclone 400 "request
    time ... server's time")."""
    message = (s3_message or "").lower()
    return status in (400, 403) and ("request has expired" in message or "request time" in message)
