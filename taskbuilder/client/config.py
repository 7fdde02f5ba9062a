"""Client settings shared by every HTTP client of the project: timeouts, the TLS context, the API root.

Used by the API client (:mod:`taskbuilder.client`) and the presigned upload/download
(:mod:`taskbuilder.upload`).
"""

from __future__ import annotations

import functools
import ssl
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, Field

from taskbuilder.redact import redact_url

PAGE_SIZE = 200
"""``limit`` sent to list endpoints that page with limit/offset (the official CLI's default, §8 "Pagination
shapes" of the API facts)."""

USER_AGENT = "prolific-taskbuilder/0.1"


class ClientTimeouts(BaseModel):
    """HTTP timeouts and Retry-After bounds, all in seconds (counts where named ``*_attempts``).

    ``connect_seconds``/``read_seconds``/``write_seconds``/``pool_seconds`` are httpx's four timeouts for
    API calls. ``poll_read_seconds`` replaces the read timeout for single-resource GETs used when
    polling (dataset/batch/study, their status, submission counts). ``upload_read_seconds`` is the read
    timeout of S3 uploads and downloads (:mod:`taskbuilder.upload`): S3 answers only once the whole body
    is stored. ``max_retry_after_wait_seconds`` caps each wait on a 429/503 ``Retry-After`` inside the
    client, ``max_retry_after_attempts`` the number of such waits per call (0 = never wait).
    """

    connect_seconds: float = Field(5.0, gt=0, description="TCP/TLS connect timeout, seconds.")
    read_seconds: float = Field(30.0, gt=0, description="Read timeout of API calls, seconds.")
    write_seconds: float = Field(30.0, gt=0, description="Write timeout (per chunk sent), seconds.")
    pool_seconds: float = Field(5.0, gt=0, description="Wait for a free pooled connection, seconds.")
    poll_read_seconds: float = Field(10.0, gt=0, description="Read timeout of status polls, seconds.")
    upload_read_seconds: float = Field(300.0, gt=0, description="Read timeout of S3 upload/download, seconds.")
    max_retry_after_wait_seconds: float = Field(60.0, ge=0, description="Longest single Retry-After wait, seconds.")
    max_retry_after_attempts: int = Field(5, ge=0, description="Retry-After waits per call.")

    def httpx_timeout(self, read_seconds: float | None = None) -> httpx.Timeout:
        """The ``httpx.Timeout`` for one request; ``read_seconds`` overrides the read timeout."""
        return httpx.Timeout(
            connect=self.connect_seconds,
            read=read_seconds if read_seconds is not None else self.read_seconds,
            write=self.write_seconds,
            pool=self.pool_seconds,
        )


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context of every HTTP client of this process (httpx's default: certifi's CA bundle, honouring
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once.

    Building one parses the whole CA bundle (measured 0.1 s per client on a busy 2-core machine,
    ``benchmarks/bench_job.py``), and the task layer opens a client per API step. An ``ssl.SSLContext`` is
    safe to share between threads.
    """
    return httpx.create_ssl_context()


def normalise_base_url(base_url: str) -> str:
    """Return the API root without a trailing ``/`` or ``/api/v1``: ``https://api.prolific.com/api/v1/`` →
    ``https://api.prolific.com``. Raises ``ValueError`` unless it is an ``http(s)://host…`` URL without
    query, fragment or user-info."""
    url = str(base_url).strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")].rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"API base URL must look like https://api.prolific.com, got {redact_url(url)!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"API base URL must not carry a query, fragment or credentials: {redact_url(url)!r}")
    return url


def segment(value: str) -> str:
    """One path segment, percent-encoded so an id or filename cannot change the path."""
    return quote(str(value), safe="")


