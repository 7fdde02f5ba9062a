"""HTTP plumbing of the sandbox: requests, responses, Prolific-shaped errors and a regex route table.

Served by the standard library's ``ThreadingHTTPServer`` (see ``server.py``) rather than an ASGI
framework, because fault injection needs to close a connection without sending any response bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

import pydantic

# Sandbox error codes (API doc §1.1 calls the real numeric codes placeholders; see ASSUMPTIONS.md).
ERROR_CODES = {400: 140001, 401: 140100, 403: 140300, 404: 140400, 405: 140500, 409: 140900, 411: 141100,
               410: 141000, 422: 142200, 429: 142900, 500: 150000, 502: 150200, 503: 150300, 504: 150400}


class ApiError(Exception):
    """An error answered in Prolific's standard shape (API doc §1.1).

    ``detail`` is a string or a mapping ``{"field.path": ["message", ...]}``.
    """

    def __init__(self, status: int, detail: Any, *, additional_information: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.additional_information = additional_information
        self.headers = headers or {}

    def body(self) -> dict:
        """The JSON body ``{"error": {status, title, error_code, detail, additional_information}}``."""
        return {"error": {
            "status": self.status,
            "title": _title(self.status),
            "error_code": ERROR_CODES.get(self.status, self.status * 1000),
            "detail": self.detail,
            "additional_information": self.additional_information,
        }}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def bad_request(field_path: str, message: str) -> ApiError:
    """A 400 whose detail names the request field at fault: ``{field_path: [message]}``."""
    return ApiError(400, {field_path: [message]})


def not_found(kind: str, resource_id: str) -> ApiError:
    """A 404 for an unknown id of a resource kind (e.g. ``"dataset"``)."""
    return ApiError(404, f"No {kind} with id {resource_id!r}.")


@dataclass
class Request:
    """One parsed HTTP request; ``params`` holds the named groups of the matched route."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON (an empty body is ``{}``); 400 when it is not JSON."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"Request body is not valid JSON: {exc}") from None

    def json_object(self) -> dict:
        """The body as a JSON object; 400 when it is anything else."""
        data = self.json()
        if not isinstance(data, dict):
            raise ApiError(400, "Request body must be a JSON object.")
        return data

    def query_value(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[-1] if values else None

    def query_int(self, name: str, default: int, *, minimum: int = 0) -> int:
        """An integer query parameter (e.g. ``limit``, ``offset``); 400 when not an integer >= minimum."""
        raw = self.query_value(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(name, f"must be an integer, got {raw!r}") from None
        if value < minimum:
            raise bad_request(name, f"must be >= {minimum}")
        return value


@dataclass
class Response:
    """A response to write: status, body bytes, extra headers (Content-Length is added on write)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (``Content-Type: application/json``)."""
    return Response(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


def error_response(err: ApiError) -> Response:
    """The Prolific-shaped error response for ``err``."""
    return json_response(err.status, err.body(), err.headers)


def validate(model: type[pydantic.BaseModel], data: Any, *, prefix: str = "") -> Any:
    """Validate ``data`` with a pydantic model; a 400 naming each failing field path otherwise."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        detail: dict[str, list[str]] = {}
        for issue in exc.errors():
            path = ".".join(str(part) for part in (prefix, *issue["loc"]) if part != "")
            detail.setdefault(path or "body", []).append(issue["msg"])
        raise ApiError(400, detail) from None


Handler = Callable[..., Response]  # handler(state, request)


class Router:
    """A route table: regex path patterns (with named groups) → handler per method.

    Every pattern matches with and without a trailing slash (API doc §1 "Trailing slash").
    """

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern, dict[str, Handler]]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` on ``pattern`` (without trailing slash)."""
        compiled = re.compile("^" + pattern.rstrip("/") + "/?$")
        for existing, methods in self._routes:
            if existing.pattern == compiled.pattern:
                methods[method] = handler
                return
        self._routes.append((compiled, {method: handler}))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters for a request; ApiError 404 / 405 otherwise."""
        for pattern, methods in self._routes:
            match = pattern.match(path)
            if match:
                if method not in methods:
                    raise ApiError(405, f"Method {method} is not allowed on {path}.",
                                   headers={"Allow": ", ".join(sorted(methods))})
                return methods[method], match.groupdict()
        raise ApiError(404, f"No endpoint at {path}.")


def parse_query(query: str) -> dict[str, list[str]]:
    """Query string → ``{name: [values]}`` (blank values kept)."""
    return parse_qs(query, keep_blank_values=True)


def paginate(req: Request, items: list, *, default_limit: int = 200) -> dict:
    """``{"results", "_links": {self, next, previous, last}, "meta": {"count"}}`` for ``limit``/``offset``
    query parameters (API doc §1.2, core resources). Links are paths with their query string."""
    limit = req.query_int("limit", default_limit, minimum=1)
    offset = req.query_int("offset", 0)
    count = len(items)

    def link(at: int | None) -> dict:
        if at is None:
            return {"href": None, "title": None}
        query = {k: v[-1] for k, v in req.query.items() if k not in ("limit", "offset")}
        query.update(limit=str(limit), offset=str(at))
        return {"href": req.path + "?" + urlencode(query), "title": None}

    last = max(0, (count - 1) // limit * limit)
    return {"results": items[offset:offset + limit],
            "_links": {"self": link(offset), "next": link(offset + limit if offset + limit < count else None),
                       "previous": link(max(0, offset - limit) if offset > 0 else None), "last": link(last)},
            "meta": {"count": count}}
