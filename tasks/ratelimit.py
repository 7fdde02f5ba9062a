"""A rate limit on Prolific API requests shared by every worker: Prefect's global concurrency limits.

:class:`RateLimitedTransport` wraps the httpx transport of the API client
(:class:`taskbuilder.client.ProlificClient`, ``transport=``) and takes one slot of a Prefect global
concurrency limit used as a rate limit (``prefect.concurrency.sync.rate_limit``) before each request
is sent. The limit lives on the Prefect server, so all processes on all machines that talk to that
server share it (``prefect-notes.md`` §10). Create it once per server::

    prefect gcl create prolific-api --limit 5 --slot-decay-per-second 2

(at most ``limit`` requests in a burst, then ``slot_decay_per_second`` requests per second). Presigned
S3 uploads and report downloads use their own httpx client (:mod:`taskbuilder.upload`), so they are
not counted. A limit that does not exist is skipped with Prefect's warning (``strict=False``): the
job still runs, unthrottled.
"""

from __future__ import annotations

import httpx
from prefect.concurrency.sync import rate_limit


class RateLimitedTransport(httpx.BaseTransport):
    """An httpx transport that waits for a slot of the Prefect rate limit ``limit_name`` per request.

    Args:
        limit_name: name of a Prefect global concurrency limit with a slot decay
            (``prefect gcl create NAME --limit N --slot-decay-per-second R``).
        inner: the transport that sends the request (default: ``httpx.HTTPTransport()``).

    Each request blocks until the Prefect server grants a slot (no timeout: the server's decay
    always frees one). Errors of the inner transport propagate unchanged.
    """

    def __init__(self, limit_name: str, inner: httpx.BaseTransport | None = None) -> None:
        self.limit_name = limit_name
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Take one slot of the rate limit, then send ``request`` through the inner transport."""
        rate_limit(self.limit_name, occupy=1, strict=False)
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the inner transport (its connection pool)."""
        self._inner.close()
