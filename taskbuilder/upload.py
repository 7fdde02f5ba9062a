"""Requests to presigned S3 URLs: the dataset upload (API doc §2.5) and the report download (§5.1).

Each call uses its own ``httpx.Client`` with no ``Authorization`` header (the URL's query string is the
credential; an extra auth header would break the signature and leak the API token to S3). Bodies are
streamed from and to disk, never held in memory: ``local-s3.md`` §3 measured that a ``bytes`` body
costs httpcore an O(n²) copy (1.5 GB RSS, 20–40 s for 500 MB), and S3 answers a chunked body without
``Content-Length`` with ``411 MissingContentLength``.

URLs are logged and put in errors only through :func:`taskbuilder.redact.redact_url` (logger
``taskbuilder.upload``, DEBUG). The ``httpx`` logger logs full URLs at INFO: :mod:`taskbuilder.redact`
(imported here) filters its records, so they carry no signature whatever the logging set-up.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

from taskbuilder.client import ClientTimeouts, shared_ssl_context
from taskbuilder.errors import transport_error_from_httpx, upload_error_from_response
from taskbuilder.redact import redact_url

logger = logging.getLogger("taskbuilder.upload")

_USER_AGENT = "prolific-taskbuilder/0.1"
UPLOAD_CHUNK_BYTES = 1024 * 1024
"""Bytes read from disk and handed to the socket per write. httpx reads a file object 64 KiB at a time;
1 MiB chunks cut the per-chunk Python work 16-fold (presigned PUT to the sandbox's store: 75 → 102 MB/s,
curl 103 MB/s; ``benchmarks/bench_upload.py``) for 1 MiB of memory."""


def _s3_client(timeouts: ClientTimeouts | None, transport: httpx.BaseTransport | None) -> httpx.Client:
    timeouts = timeouts or ClientTimeouts()
    return httpx.Client(
        timeout=timeouts.httpx_timeout(timeouts.upload_read_seconds),
        transport=transport,
        follow_redirects=False,
        headers={"User-Agent": _USER_AGENT},
        verify=shared_ssl_context(),
    )


def _check_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"presigned URL must be http(s): {redact_url(url)!r}")
    return redact_url(url)


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    """The rest of ``file`` in pieces of :data:`UPLOAD_CHUNK_BYTES` (the request's length is sent as a header)."""
    while chunk := file.read(UPLOAD_CHUNK_BYTES):
        yield chunk


def upload_file(
    upload_url: str,
    path: Path,
    *,
    content_type: str | None = "text/csv",
    timeouts: ClientTimeouts | None = None,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """PUT the file at ``path`` to the presigned ``upload_url`` (API doc §2.5), streamed from disk.

    Sends ``Content-Length`` (the file size in bytes) and ``Content-Type: content_type`` (the seed's
    ``text/csv``; ``None`` sends none — a V4 URL may be signed for another type). Timeouts: connect,
    write and pool from ``timeouts``, read = ``timeouts.upload_read_seconds`` (S3 answers after storing
    the whole body). Any 2xx is success.

    Raises: :class:`~taskbuilder.errors.UploadURLExpired` (ask for a new URL),
    :class:`~taskbuilder.errors.UploadSlowDown`, :class:`~taskbuilder.errors.UploadRejected`,
    :class:`~taskbuilder.errors.UploadServerError`, the :class:`~taskbuilder.errors.TransportError`
    family (``path`` = the redacted URL), ``OSError`` if the file cannot be read, ``ValueError`` for a
    non-http(s) URL.
    """
    safe_url = _check_url(upload_url)
    path = Path(path)
    size_bytes = path.stat().st_size
    headers = {"Content-Length": str(size_bytes)}
    if content_type:
        headers["Content-Type"] = content_type
    started = time.monotonic()
    with _s3_client(timeouts, transport) as client, path.open("rb") as body:
        try:
            response = client.put(upload_url, content=_chunks(body), headers=headers)
        except httpx.TransportError as exc:
            raise transport_error_from_httpx(exc, method="PUT", path=safe_url) from exc
    logger.debug(
        "PUT %s (%d bytes) → %s (%.3f s)", safe_url, size_bytes, response.status_code, time.monotonic() - started
    )
    if response.status_code >= 300:
        raise upload_error_from_response(response, method="PUT", url=upload_url)


def download_to_file(
    url: str,
    path: Path,
    *,
    timeouts: ClientTimeouts | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """GET the presigned ``url`` (e.g. a batch report, API doc §5.1) into ``path``; return the number of
    bytes written (after any ``Content-Encoding`` is decoded).

    Streams to a temporary file in ``path``'s directory and renames it into place only when complete,
    so ``path`` never holds a partial download. Read timeout = ``timeouts.upload_read_seconds``.

    Raises the same errors as :func:`upload_file` (the ``Upload*`` family covers every presigned S3
    request; an expired report URL is :class:`~taskbuilder.errors.UploadURLExpired`), and ``OSError``
    if ``path`` cannot be written.
    """
    safe_url = _check_url(url)
    path = Path(path)
    written_bytes = 0
    started = time.monotonic()
    with _s3_client(timeouts, transport) as client:
        try:
            with client.stream("GET", url) as response:
                if response.status_code >= 300:
                    response.read()
                    raise upload_error_from_response(response, method="GET", url=url)
                part = tempfile.NamedTemporaryFile(
                    dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
                )
                try:
                    with part:
                        for chunk in response.iter_bytes():
                            part.write(chunk)
                            written_bytes += len(chunk)
                    os.replace(part.name, path)
                except BaseException:
                    Path(part.name).unlink(missing_ok=True)
                    raise
        except httpx.TransportError as exc:
            raise transport_error_from_httpx(exc, method="GET", path=safe_url) from exc
    logger.debug(
        "GET %s → %s, %d bytes (%.3f s)", safe_url, response.status_code, written_bytes, time.monotonic() - started
    )
    return written_bytes
