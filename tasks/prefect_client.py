"""The Prefect API client of the project's own records: one per process and server, and a 503 from a SQLite
server's write conflict tried again within milliseconds instead of Prefect's 2-4 s back-off.

Why. A Prefect server on SQLite (the local server of ``taskbuilder run``, the test harness) answers 503 when
a write transaction finds that another connection committed after it read (``SQLITE_BUSY_SNAPSHOT``; the
``busy_timeout`` does not wait for it): the server's own services write the run's events meanwhile. The
block-document writes of the job record (``PATCH``/``POST /api/block_documents/``: the server reads, merges,
then writes) hit it: three times in every CLI run of B8's 3,000-row job (issue 18), and Prefect's client then
sleeps ``2**n`` s with jitter before it tries again: 5.4-6.5 s of a ~12 s run. The transaction was rolled
back, so sending the request again is safe.

What. :func:`prefect_client` yields a ``SyncPrefectClient`` whose transport sends such a 503'd request again
after about 0.05, 0.1, 0.2, 0.4, 0.8 and 1.6 s (jittered); only then does Prefect's own retry see it (and
each of its tries gets the same quick ones). A 503 that says maintenance (``Prefect-Maintenance``) or asks
for a wait (``Retry-After``), a 429, and a request whose body cannot be sent again are handed to Prefect at
once. The client is made once per process and server (making one costs ~20-45 ms: its TLS context) and
never closed (its connections end with the process); without ``PREFECT_API_URL`` the server is Prefect's
temporary one of this process, started as ``get_client`` starts it. Prefect's own client is used instead
when a proxy is set in the environment (this transport would bypass it).
TLS: the same context Prefect builds (``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``, ``PREFECT_API_SSL_CERT_FILE``,
else certifi); HTTP/2 as ``PREFECT_API_ENABLE_HTTP2``.
"""

from __future__ import annotations

import os
import random
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.settings import (
    PREFECT_API_AUTH_STRING,
    PREFECT_API_ENABLE_HTTP2,
    PREFECT_API_KEY,
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    PREFECT_API_URL,
    PREFECT_SERVER_EPHEMERAL_ENABLED,
)

QUICK_RETRY_DELAYS_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Waits before each quick resend of a 503'd request (each jittered by ±50%); ~3 s in all."""
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

_lock = threading.Lock()
_clients: dict[tuple[Any, ...], SyncPrefectClient] = {}


def should_resend(request: httpx.Request, response: httpx.Response) -> bool:
    """Whether ``response`` is a write conflict worth sending ``request`` again for at once: a 503 without
    ``Prefect-Maintenance: true`` or ``Retry-After``, for a request whose body is in memory."""
    return (response.status_code == 503 and response.headers.get("Prefect-Maintenance") != "true"
            and "Retry-After" not in response.headers and isinstance(request.stream, httpx.ByteStream))


class QuickRetryTransport(httpx.HTTPTransport):
    """An ``httpx.HTTPTransport`` that sends a request again after each of :data:`QUICK_RETRY_DELAYS_SECONDS`
    while :func:`should_resend` holds; returns the last response (Prefect's client decides from there)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for delay_seconds in QUICK_RETRY_DELAYS_SECONDS:
            response = super().handle_request(request)
            if not should_resend(request, response):
                return response
            response.read()
            response.close()
            time.sleep(delay_seconds * random.uniform(0.5, 1.5))
        return super().handle_request(request)


def _tls_context() -> ssl.SSLContext:
    """The TLS context Prefect's client would build (``SyncPrefectClient.__init__``, Prefect 3.9)."""
    if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import certifi

    return ssl.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())


def _temporary_server_url() -> str | None:
    """Without ``PREFECT_API_URL``: the URL of Prefect's temporary server of this process, started as
    ``get_client`` starts it (``SubprocessASGIServer``, one per process; Prefect 3.9), when that is enabled."""
    if not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    return server.api_url


@contextmanager
def prefect_client() -> Iterator[SyncPrefectClient]:
    """A started sync Prefect client for the current ``PREFECT_API_URL`` (see the module docstring); use it as
    ``with prefect_client() as client:``. Errors are Prefect's (``PrefectHTTPStatusError``, ``ObjectNotFound``,
    ...)."""
    api = PREFECT_API_URL.value() or _temporary_server_url()
    if not isinstance(api, str) or not api.startswith(("http://", "https://")) or any(os.environ.get(v) for v in PROXY_VARIABLES):
        with get_client(sync_client=True) as client:
            yield client
        return
    key = (api, PREFECT_API_KEY.value(), PREFECT_API_AUTH_STRING.value(), PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value(),
           PREFECT_API_SSL_CERT_FILE.value(), PREFECT_API_ENABLE_HTTP2.value())
    with _lock:
        client = _clients.get(key)
        if client is None:
            context = _tls_context()
            transport = QuickRetryTransport(verify=context, http2=bool(PREFECT_API_ENABLE_HTTP2.value()), retries=3)
            client = get_client(sync_client=True, httpx_settings={"transport": transport, "verify": context})
            client.__enter__()  # never left: one client per process and server
            _clients[key] = client
    yield client
