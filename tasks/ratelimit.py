"""A rate limit on Prolific API requests shared by every worker: Prefect's global concurrency limits.

:class:`RateLimitedTransport` wraps the httpx transport of the API client
(:class:`taskbuilder.client.ProlificClient`, ``transport=``) and takes one slot of a Prefect global
concurrency limit used as a rate limit before each request is sent. The limit lives on the Prefect server,
so all processes on all machines that talk to that server share it (``prefect-notes.md`` §10). Create it
once per server::

    prefect gcl create prolific-api --limit 5 --slot-decay-per-second 2

(at most ``limit`` requests in a burst, then ``slot_decay_per_second`` requests per second). Presigned
S3 uploads and report downloads use their own httpx client (:mod:`taskbuilder.upload`), so they are
not counted. A limit that does not exist is skipped with a warning: the job still runs, unthrottled. An
inactive limit grants every slot at once (Prefect's rule). A limit without slot decay cannot rate-limit
(the server answers 422): :class:`taskbuilder.errors.BadInput` naming it and how to recreate it. A Prefect
server that does not answer: :class:`RateLimitUnreachable`, a :class:`taskbuilder.errors.ConnectError` (the
Prolific request was not sent, so it may be sent again) whose message names the rate limit, not Prolific.

How a slot is taken: ``POST /api/v2/concurrency_limits/increment`` (``mode: rate_limit``) through the
project's Prefect client (:func:`tasks.prefect_client.prefect_client`, one per process and server); a
``423 Locked`` answer says, in ``Retry-After``, how long to wait before asking again. That is the request
``prefect.concurrency.sync.rate_limit`` sends, without its per-call hops through a service thread and
event loop (~85 ms of wall time and ~4 ms of CPU per slot, measured on the local server: ~0.7 ms and
~1 ms this way) and without the ``concurrency-limit.acquired`` event it emits for every slot, which the
server stores (~4 ms of its CPU per slot). Issue 18, NOTES.md "Lean runs".
"""

from __future__ import annotations

import threading
import time

import httpx

from taskbuilder.client import shared_ssl_context
from taskbuilder.error_details import extract_detail, response_body
from taskbuilder.errors import BadInput, ConnectError
from tasks.logs import run_logger
from tasks.prefect_client import prefect_client

LOCKED = 423
"""The server's answer while the limit has no free slot (``Retry-After``: seconds to wait)."""
UNUSABLE = 422
"""The server's answer for a limit that cannot grant a rate-limit slot (no slot decay, or a limit below 1)."""
CREATE_HINT = "prefect gcl create {name} --limit 5 --slot-decay-per-second 2"
MISSING_LIMIT_RECHECK_SECONDS = 5.0
"""A limit found missing is asked for again after this long (one warning per process and name)."""

_warned: set[str] = set()
_missing_until: dict[str, float] = {}
_lock = threading.Lock()


def take_slot(limit_name: str) -> None:
    """Block until one slot of the Prefect rate limit ``limit_name`` is granted (no timeout: the server's decay
    always frees one). A limit that does not exist (the server grants nothing) is logged once per process and
    skipped for :data:`MISSING_LIMIT_RECHECK_SECONDS`. A limit the server cannot rate-limit with (422: no slot
    decay) raises :class:`taskbuilder.errors.BadInput` naming it. Other errors of the Prefect API
    (``PrefectHTTPStatusError``, ``httpx.HTTPError`` after its client's retries) propagate: the request is not
    sent unthrottled.

    Source: Prefect's ``POST /api/v2/concurrency_limits/increment`` (``prefect-notes.md`` §10)."""
    with _lock:
        if _missing_until.get(limit_name, 0.0) > time.monotonic():
            return
    while True:
        try:
            with prefect_client() as client:
                granted = client.increment_concurrency_slots(names=[limit_name], slots=1, mode="rate_limit").json()
        except httpx.HTTPStatusError as error:
            if error.response.status_code == UNUSABLE:
                raise BadInput(f"The Prefect rate limit {limit_name!r} cannot throttle Prolific API requests: "
                               f"{extract_detail(response_body(error.response), error.response.reason_phrase)}; recreate it with a limit of 1 or more and a slot decay: prefect gcl delete "
                               f"{limit_name}, then {CREATE_HINT.format(name=limit_name)}") from error
            if error.response.status_code != LOCKED:
                raise
            time.sleep(_retry_after_seconds(error.response))
            continue
        if not granted:
            with _lock:
                _missing_until[limit_name] = time.monotonic() + MISSING_LIMIT_RECHECK_SECONDS
                if limit_name not in _warned:
                    _warned.add(limit_name)
                    run_logger().warning("The Prefect rate limit %r does not exist: Prolific API requests are not throttled "
                                         "(create it: %s)", limit_name, CREATE_HINT.format(name=limit_name))
        return


def _retry_after_seconds(response: httpx.Response) -> float:
    """The 423's ``Retry-After`` in seconds (Prefect sends a number); 0.1 when absent, 1.0 when not a number
    (an HTTP date, say), never below 0."""
    value = response.headers.get("Retry-After")
    if value is None:
        return 0.1
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


class RateLimitUnreachable(ConnectError):
    """The Prefect server gave no answer (after its client's retries) when asked for a slot of the rate limit
    ``limit_name``: the Prolific request ``method path`` was not sent. Attributes: those of
    :class:`taskbuilder.errors.ConnectError` (``cause``: the ``httpx`` error of the Prefect request) and
    ``limit_name``."""

    def __init__(self, *, method: str, path: str, limit_name: str, cause: BaseException | None = None) -> None:
        self.limit_name = limit_name
        self.kind = (f"not sent: the Prefect server did not answer for a slot of the Prefect rate limit {limit_name!r} "
                     "(is PREFECT_API_URL's server up?)")
        super().__init__(method=method, path=path, cause=cause)


class RateLimitedTransport(httpx.BaseTransport):
    """An httpx transport that waits for a slot of the Prefect rate limit ``limit_name`` per request.

    Args:
        limit_name: name of a Prefect global concurrency limit with a slot decay
            (``prefect gcl create NAME --limit N --slot-decay-per-second R``).
        inner: the transport that sends the request (default: an ``httpx.HTTPTransport`` on the process's shared
            TLS context, :func:`taskbuilder.client.shared_ssl_context`).

    Each request blocks until the Prefect server grants a slot (:func:`take_slot`). Errors of the inner
    transport propagate unchanged.
    """

    def __init__(self, limit_name: str, inner: httpx.BaseTransport | None = None) -> None:
        self.limit_name = limit_name
        # the shared context: httpx builds a new one per transport otherwise, parsing the whole CA bundle (~20 ms of
        # CPU), once per API step's client (a flow run's profile: ~15% of its main thread; issue 18)
        self._inner = inner or httpx.HTTPTransport(verify=shared_ssl_context())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Take one slot of the rate limit, then send ``request`` through the inner transport. Raises
        :class:`RateLimitUnreachable` when the Prefect server does not answer (``request`` not sent)."""
        try:
            take_slot(self.limit_name)
        except httpx.TransportError as error:
            raise RateLimitUnreachable(method=request.method, path=request.url.path, limit_name=self.limit_name,
                                       cause=error) from error
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the inner transport (its connection pool)."""
        self._inner.close()
