"""The one request path of the Prolific client: build → send → map errors, and the shared parsing helpers.

The client does no retrying of its own except one case: a 429 or 503 answer carrying ``Retry-After``
(the request was not processed, so resending is safe) is waited out here, bounded by
:class:`~taskbuilder.client.config.ClientTimeouts`; everything else raises, and the caller (the Prefect
task layer, through :func:`taskbuilder.errors.classify`) decides.

Logging: logger ``taskbuilder.client``; DEBUG one line per request (method, path, status, elapsed
seconds; never headers, bodies or query strings), INFO for Retry-After waits, WARNING once per endpoint
for a ``Deprecation`` response header. Do not enable the ``httpx`` logger: it logs every full URL at
INFO (including query strings).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from taskbuilder.client.config import USER_AGENT, ClientTimeouts, normalise_base_url, segment, shared_ssl_context
from taskbuilder.errors import (
    MissingCredentials,
    RateLimited,
    ServiceUnavailable,
    UnexpectedResponse,
    api_status_error_from_response,
    transport_error_from_httpx,
)
from taskbuilder.redact import redact_url

logger = logging.getLogger("taskbuilder.client")

M = TypeVar("M", bound=BaseModel)


class ClientBase:
    """The connection and the one request path of :class:`taskbuilder.client.ProlificClient`, a client of
    Prolific's REST API (or the local sandbox), authenticated with ``Authorization: Token``.

    Args:
        base_url: API root, e.g. ``https://api.prolific.com`` (a trailing ``/api/v1`` is stripped).
        token: the API token (kept only inside the httpx client's headers; never in ``repr``/logs).
        timeouts: see :class:`ClientTimeouts` (defaults if ``None``).
        transport: an ``httpx.BaseTransport`` (tests: ``httpx.MockTransport``); default: real network.

    Use as a context manager, or call :meth:`close`. Every method raises
    :class:`taskbuilder.errors.TransportError` (no answer), an
    :class:`taskbuilder.errors.APIStatusError` subclass (4xx/5xx; 429/503 only after the Retry-After
    waits are used up), or :class:`taskbuilder.errors.UnexpectedResponse` (an answer of the wrong shape).
    Raises ``ValueError`` for a malformed ``base_url`` and
    :class:`taskbuilder.errors.MissingCredentials` for an empty token.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr | str,
        *,
        timeouts: ClientTimeouts | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.timeouts = timeouts or ClientTimeouts()
        secret = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
        if not secret.strip():
            raise MissingCredentials("the Prolific API token is empty")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Token {secret}", "Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=self.timeouts.httpx_timeout(),
            transport=transport,
            follow_redirects=False,
            verify=shared_ssl_context(),
        )
        self._deprecated_paths_logged: set[str] = set()

    def __repr__(self) -> str:
        return f"ProlificClient(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool. Idempotent."""
        self._http.close()

    # --- the one request path ------------------------------------------------------------------

    def _request(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        read_seconds: float | None = None,
        url: httpx.URL | None = None,
    ) -> httpx.Response:
        """Send one request and return its 2xx response, or raise the mapped error.

        ``template`` is the endpoint's path with ``{name}`` placeholders (filled from ``path_params``,
        percent-encoded); it also names the endpoint for the once-only deprecation warning. ``url``, when
        given (a pagination link already checked to be on the API's host), is sent instead.
        """
        if url is None:
            path = template.format_map({key: segment(value) for key, value in (path_params or {}).items()})
            target: httpx.URL | str = path
        else:
            path, target = url.path, url
        timeout = self.timeouts.httpx_timeout(read_seconds)
        waits_done = 0
        while True:
            started = time.monotonic()
            try:
                response = self._http.request(method, target, params=params, json=json, timeout=timeout)
            except httpx.TransportError as exc:
                logger.debug(
                    "%s %s → no response (%s) after %.3f s", method, path, type(exc).__name__, time.monotonic() - started
                )
                raise transport_error_from_httpx(exc, method=method, path=path) from exc
            logger.debug("%s %s → %s (%.3f s)", method, path, response.status_code, time.monotonic() - started)
            self._note_deprecation(template, response)
            if response.status_code < 300:
                return response
            if response.status_code < 400:
                location = redact_url(response.headers.get("location", "")) or "nowhere"
                raise UnexpectedResponse(
                    method=method, path=path, status_code=response.status_code, reason=f"redirect to {location}"
                )
            error = api_status_error_from_response(response, method=method, path=path)
            can_wait = isinstance(error, (RateLimited, ServiceUnavailable)) and error.retry_after_seconds is not None
            if not can_wait or waits_done >= self.timeouts.max_retry_after_attempts:
                raise error
            waits_done += 1
            wait_seconds = min(error.retry_after_seconds, self.timeouts.max_retry_after_wait_seconds)
            logger.info(
                "%s %s → %s with Retry-After %.1f s; waiting %.1f s before sending again (wait %d of %d)",
                method, path, response.status_code, error.retry_after_seconds, wait_seconds,
                waits_done, self.timeouts.max_retry_after_attempts,
            )
            time.sleep(wait_seconds)

    def _note_deprecation(self, template: str, response: httpx.Response) -> None:
        """Log a WARNING the first time an endpoint answers with a ``Deprecation`` header (RFC 8594)."""
        if "deprecation" not in response.headers or template in self._deprecated_paths_logged:
            return
        self._deprecated_paths_logged.add(template)
        sunset = response.headers.get("sunset")
        try:
            past = sunset is not None and parsedate_to_datetime(sunset) <= datetime.now(timezone.utc)
        except (TypeError, ValueError):
            past = False
        outlook = "its sunset date has passed: it may stop working at any time" if past else "it may stop working after its sunset date"
        logger.warning(
            "Prolific marks %s as deprecated (Deprecation: %s; Sunset: %s); %s",
            template, response.headers["deprecation"], sunset or "not given", outlook,
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        """The JSON body of ``response``, or :class:`UnexpectedResponse`."""
        try:
            return response.json()
        except ValueError:
            content_type = response.headers.get("content-type") or "no content type"
            raise UnexpectedResponse(
                method=response.request.method,
                path=response.request.url.path,
                status_code=response.status_code,
                reason=f"expected a JSON body, got {content_type} ({len(response.content)} bytes)",
            ) from None

    @staticmethod
    def _validate(model: type[M], data: Any, *, method: str, path: str, status_code: int) -> M:
        """``model.model_validate(data)``, with a shape mismatch raised as :class:`UnexpectedResponse`."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(body)'}: {error['msg']}"
                for error in exc.errors()[:5]
            )
            raise UnexpectedResponse(
                method=method, path=path, status_code=status_code, reason=f"does not fit {model.__name__}: {problems}"
            ) from None

    def _parse(self, model: type[M], data: Any, response: httpx.Response) -> M:
        """:meth:`_validate` for the body of ``response``."""
        request = response.request
        return self._validate(model, data, method=request.method, path=request.url.path, status_code=response.status_code)

    def _call(self, model: type[M], method: str, template: str, **request: Any) -> M:
        """Request, then parse the JSON body as ``model``."""
        response = self._request(method, template, **request)
        return self._parse(model, self._json(response), response)

    def _same_origin(self, href: str, response: httpx.Response) -> httpx.URL:
        """Resolve a pagination link and refuse one that leaves the API's host (the token goes with it)."""
        base = self._http.base_url
        target = base.join(href)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise UnexpectedResponse(
                method="GET",
                path=response.request.url.path,
                status_code=response.status_code,
                reason=f"pagination link points to another host: {redact_url(str(target))}",
            )
        return target

    def _collect(
        self,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
    ) -> list[Any]:
        """GET every page of a list endpoint and return all ``results`` items (§8 "Pagination shapes").

        Accepts a bare JSON array, or ``{"results": [...]}`` with optional ``_links.next.href`` (followed
        while it is non-null and the page was not empty) and ``meta.count``. With ``page_size``, sends
        ``limit``/``offset`` and, when there are no links, pages by offset until ``meta.count`` items.
        """
        query: dict[str, Any] = dict(params or {})
        if page_size:
            query.update(limit=page_size, offset=0)
        items: list[Any] = []
        next_url: httpx.URL | None = None
        seen_links: set[str] = set()
        while True:
            response = self._request(
                "GET", template, path_params=path_params, params=None if next_url else query, url=next_url
            )
            body = self._json(response)
            if isinstance(body, list):
                return items + body
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise UnexpectedResponse(
                    method="GET",
                    path=response.request.url.path,
                    status_code=response.status_code,
                    reason="expected a JSON array or an object with a 'results' array",
                )
            items.extend(results)
            if not results:
                return items
            links = body.get("_links")
            href = ((links or {}).get("next") or {}).get("href") if isinstance(links, dict) else None
            if href:
                if href in seen_links:
                    raise UnexpectedResponse(
                        method="GET", path=response.request.url.path, status_code=response.status_code,
                        reason="pagination link repeats a page already read",
                    )
                seen_links.add(href)
                next_url = self._same_origin(href, response)
                continue
            meta = body.get("meta")
            count = meta.get("count") if isinstance(meta, dict) else None
            if page_size and links is None and isinstance(count, int) and len(items) < count:
                next_url = None
                query["offset"] = len(items)
                continue
            return items

    # --- helpers -------------------------------------------------------------------------------

    def _list(
        self,
        model: type[M],
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
    ) -> list[M]:
        """:meth:`_collect` every page, then parse each item as ``model``."""
        items = self._collect(template, path_params=path_params, params=params, page_size=page_size)
        path = template.format_map({key: segment(value) for key, value in (path_params or {}).items()})
        return [self._validate(model, item, method="GET", path=path, status_code=200) for item in items]

    def _status_of(self, response: httpx.Response) -> str:
        """The ``status`` string of a ``{"status": …}`` answer."""
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise UnexpectedResponse(
                method=response.request.method, path=response.request.url.path,
                status_code=response.status_code, reason="expected {\"status\": <string>}",
            )
        return body["status"]
