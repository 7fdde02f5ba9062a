"""Typed errors of the Prolific client and the one place that decides what to do about a failure.

Families (all subclass :class:`ProlificError`):

- :class:`TransportError` — no usable HTTP answer: :class:`ConnectError` (the request was never sent),
  :class:`RequestTimeout`, :class:`ConnectionDropped`.
- :class:`APIStatusError` — Prolific answered with a 4xx/5xx status; one subclass per status
  (:class:`BadRequest` … :class:`ServiceUnavailable`). The error body is parsed from any of the three
  shapes of API doc §1.1.
- :class:`UploadError` — an S3 presigned request (upload or report download) failed:
  :class:`UploadURLExpired`, :class:`UploadSlowDown`, :class:`UploadRejected`, :class:`UploadServerError`.
- Domain errors raised by the layers above: :class:`DatasetProcessingFailed`, :class:`BatchSetupFailed`,
  :class:`WaitTimedOut`, :class:`MissingCredentials`, :class:`UnexpectedResponse`.

Each family's ``*_from_*`` function builds the right subclass from an httpx answer or exception, reading it
with :mod:`taskbuilder.error_details`. What to do about an error (retry / wait / refresh / stop) is decided
in :mod:`taskbuilder.failures`.

No message or attribute of these errors holds the API token or a presigned URL's query string: paths
are request paths only, S3 URLs go through :func:`taskbuilder.redact.redact_url`, free text through
:func:`taskbuilder.redact.redact_text`. The style follows httpx's own hierarchy (transport vs. status
errors) and toloka-kit's ``ApiError`` (status code, request id, payload on one exception type).
"""

from __future__ import annotations

from typing import Any

import httpx

from taskbuilder.error_details import (
    extract_detail,
    is_expired,
    parse_retry_after,
    request_id_of,
    response_body,
    s3_error_fields,
)
from taskbuilder.redact import redact_text, redact_url


def _restore_error(cls: type[ProlificError], args: tuple[Any, ...], state: dict[str, Any]) -> ProlificError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class BadInput(ValueError):
    """What the user gave is wrong (a file, the job spec, a name the workspace lacks): not an API failure and
    not a bug; never retried, shown as its one line, which says what to fix."""


class Refusal(RuntimeError):
    """A step the job's own rules refused (over budget, a study in the wrong status, ...): not an API
    failure and not a bug; never retried, shown as its one line."""


class ProlificError(Exception):
    """Base of every error raised by ``taskbuilder``'s client layer.

    Instances pickle and unpickle with all their attributes (Prefect may persist a failed task's
    exception), although their constructors take keyword arguments.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


class MissingCredentials(ProlificError):
    """No API token could be found (see :func:`taskbuilder.credentials.resolve_api_token`)."""


class UnexpectedResponse(ProlificError):
    """A 2xx/3xx answer that the client cannot use: not JSON, a shape the model rejects, a redirect,
    or a pagination link pointing to another host.

    Attributes: ``method``, ``path`` (request path, no query), ``status_code``, ``reason`` (text).
    Usually a bug or an API change: :func:`taskbuilder.failures.classify` says stop.
    """

    def __init__(self, *, method: str, path: str, status_code: int, reason: str) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.reason = redact_text(reason)
        super().__init__(f"{method} {path} → {status_code}: unexpected response: {self.reason}")


# --- transport ---------------------------------------------------------------------------------


class TransportError(ProlificError):
    """No usable HTTP answer arrived (httpx transport failure).

    Attributes: ``method``; ``path`` (API request path, or for S3 the redacted URL — never a
    presigned query string); ``cause`` (the original ``httpx`` exception, also chained as
    ``__cause__``).
    """

    kind = "transport failure"

    def __init__(self, *, method: str, path: str, cause: BaseException | None = None) -> None:
        self.method = method
        self.path = path
        self.cause = cause
        cause_text = f" ({type(cause).__name__}: {redact_text(str(cause))})" if cause is not None else ""
        super().__init__(f"{method} {path}: {self.kind}{cause_text}")


class ConnectError(TransportError):
    """No connection was made (refused, DNS failure, connect or pool timeout, proxy failure): the
    request was not sent, so resending cannot duplicate an effect."""

    kind = "could not connect (request not sent)"


class RequestTimeout(TransportError):
    """The connection was made but sending the request or reading the answer timed out; the server
    may or may not have processed it."""

    kind = "timed out waiting for the server (it may have processed the request)"


class ConnectionDropped(TransportError):
    """The peer closed the connection, or a read/write/protocol error happened mid-exchange; the
    server may or may not have processed the request."""

    kind = "connection dropped (the server may have processed the request)"


def transport_error_from_httpx(exc: httpx.TransportError, *, method: str, path: str) -> TransportError:
    """Map an ``httpx.TransportError`` to this module's family.

    ``httpx.ConnectError``/``ConnectTimeout``/``PoolTimeout``/``ProxyError`` → :class:`ConnectError`;
    other ``httpx.TimeoutException`` → :class:`RequestTimeout`; ``httpx.NetworkError`` and
    ``httpx.ProtocolError`` → :class:`ConnectionDropped`; anything else → :class:`TransportError`.
    ``path`` must already be safe to log (request path or redacted URL).
    """
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)):
        cls: type[TransportError] = ConnectError
    elif isinstance(exc, httpx.TimeoutException):
        cls = RequestTimeout
    elif isinstance(exc, (httpx.NetworkError, httpx.ProtocolError)):
        cls = ConnectionDropped
    else:
        cls = TransportError
    return cls(method=method, path=path, cause=exc)


# --- API status errors -------------------------------------------------------------------------


class APIStatusError(ProlificError):
    """Prolific answered with an error status (4xx/5xx).

    Attributes:
        status_code: the HTTP status.
        method: request method.
        path: request path without the query string (e.g. ``/api/v1/studies/abc/``).
        body: the parsed JSON error body, or its text (first 500 characters), or ``None`` when empty.
        detail: a readable message extracted from any error shape of API doc §1.1 (standard
            ``{"error": {title, detail, additional_information}}``, simple ``{message, detail}``, or the
            422 ``INVALID_BATCH_ITEMS`` issues, rendered as ``batch_items[p].rows[r].columns[c].items[i]``
            field paths); the reason phrase when the body says nothing.
        retry_after_seconds: the ``Retry-After`` header in seconds (delta or HTTP date), else ``None``.
        request_id: the ``X-Request-Id`` (or ``Request-Id``) response header, else ``None``.

    ``str(exc)`` is ``"{method} {path} → {status_code}: {detail}"``.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status_code: int,
        body: Any,
        detail: str,
        retry_after_seconds: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.body = body
        self.detail = redact_text(detail)
        self.retry_after_seconds = retry_after_seconds
        self.request_id = request_id
        super().__init__(f"{method} {path} → {status_code}: {self.detail}")


class BadRequest(APIStatusError):
    """400: the request was invalid (e.g. setup on a dataset that is not READY)."""


class Unauthorized(APIStatusError):
    """401: the API token is missing or wrong."""


class Forbidden(APIStatusError):
    """403: the token may not act on this resource."""


class NotFound(APIStatusError):
    """404: no such resource (or not visible to this token)."""


class Conflict(APIStatusError):
    """409: the resource is in a state that forbids the request."""


class Gone(APIStatusError):
    """410: the endpoint or resource was retired (e.g. the legacy instructions endpoint after its Sunset)."""


class UnprocessableEntity(APIStatusError):
    """422: semantically invalid (``batch_items`` validation; legacy instructions on a batch_items batch)."""


class RateLimited(APIStatusError):
    """429: too many requests; ``retry_after_seconds`` says how long to wait when the server said so."""


class ServerError(APIStatusError):
    """5xx (500–599): a failure on Prolific's side."""


class ServiceUnavailable(ServerError):
    """503: temporarily unavailable; ``retry_after_seconds`` when the server said how long."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: UnprocessableEntity,
    429: RateLimited,
    503: ServiceUnavailable,
}


def api_status_error_from_response(response: httpx.Response, *, method: str, path: str) -> APIStatusError:
    """Build the :class:`APIStatusError` subclass for an error ``response`` (status ≥ 400).

    The subclass follows the status (400 → :class:`BadRequest` … 503 → :class:`ServiceUnavailable`,
    other 5xx → :class:`ServerError`, other 4xx → :class:`APIStatusError`). ``path`` must be the
    request path without query. The response body must already be read.
    """
    status = response.status_code
    cls = _STATUS_CLASSES.get(status) or (ServerError if 500 <= status <= 599 else APIStatusError)
    body = response_body(response)
    return cls(
        method=method,
        path=path,
        status_code=status,
        body=body,
        detail=extract_detail(body, response.reason_phrase or f"HTTP {status}"),
        retry_after_seconds=parse_retry_after(response.headers.get("retry-after")),
        request_id=request_id_of(response),
    )


# --- S3 (presigned URL) errors -----------------------------------------------------------------


class UploadError(ProlificError):
    """A request to a presigned S3 URL (dataset upload, report download) failed with a status.

    Attributes: ``method``; ``url`` (redacted: scheme, host, path); ``status_code``; ``s3_code`` and
    ``s3_message`` (from the S3 XML error body ``<Error><Code/><Message/></Error>``, ``None`` when
    absent); ``request_id`` (``x-amz-request-id``). The raw body is not kept: for a signature
    mismatch S3 echoes the signature and canonical request in it.
    """

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status_code: int,
        s3_code: str | None,
        s3_message: str | None,
        request_id: str | None = None,
    ) -> None:
        self.method = method
        self.url = redact_url(url)
        self.status_code = status_code
        self.s3_code = s3_code
        self.s3_message = redact_text(s3_message) if s3_message else s3_message
        self.request_id = request_id
        said = ": ".join(part for part in (s3_code, self.s3_message) if part) or "no S3 error code"
        request = f" (S3 request id {request_id})" if request_id else ""
        super().__init__(f"{method} {self.url} → {status_code}: {said}{request}")


class UploadURLExpired(UploadError):
    """The presigned URL has expired: ask the API for a new one. Recognised from the body, not the
    status: AWS ``403 AccessDenied`` "Request has expired"; rclone ``400`` "…difference between the
    request time and the server's time…"."""


class UploadSlowDown(UploadError):
    """S3 ``503 SlowDown``: back off; ``retry_after_seconds`` when the server said how long."""

    def __init__(self, *, retry_after_seconds: float | None = None, **fields: Any) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(**fields)


class UploadRejected(UploadError):
    """S3 refused the request for a reason a resend will not fix (4xx: ``SignatureDoesNotMatch``,
    ``AccessDenied``, ``MissingContentLength``, ``NoSuchKey``…); see ``s3_code``/``s3_message``."""


class UploadServerError(UploadError):
    """S3 failed on its side (5xx other than ``SlowDown``; also S3's ``400 RequestTimeout``, an idle
    socket, which a resend fixes)."""


def upload_error_from_response(response: httpx.Response, *, method: str, url: str) -> UploadError:
    """Build the :class:`UploadError` subclass for a failed presigned-URL ``response`` (status ≥ 300).

    Order: expired (body message, see :class:`UploadURLExpired`) → throttling (``503 SlowDown``, or a
    ``429`` that a proxy or gateway in front of S3 may answer) → 5xx or S3 ``RequestTimeout`` →
    :class:`UploadServerError` → anything else :class:`UploadRejected`.
    ``url`` is redacted here. The response body must already be read.
    """
    status = response.status_code
    s3_code, s3_message = s3_error_fields(response.content)
    fields: dict[str, Any] = dict(
        method=method,
        url=url,
        status_code=status,
        s3_code=s3_code,
        s3_message=s3_message,
        request_id=request_id_of(response),
    )
    if is_expired(status, s3_message):
        return UploadURLExpired(**fields)
    if (status == 503 and s3_code == "SlowDown") or status == 429:
        return UploadSlowDown(retry_after_seconds=parse_retry_after(response.headers.get("retry-after")), **fields)
    if status >= 500 or s3_code == "RequestTimeout":
        return UploadServerError(**fields)
    return UploadRejected(**fields)


# --- domain errors -----------------------------------------------------------------------------


class DatasetProcessingFailed(ProlificError):
    """Prolific could not process an uploaded dataset (status ``ERROR``, API doc §2.4).

    Attributes: ``dataset_id``, ``reason`` (the server's reason if it gave one).
    """

    def __init__(self, *, dataset_id: str, reason: str) -> None:
        self.dataset_id = dataset_id
        self.reason = reason
        super().__init__(f"dataset {dataset_id} failed processing (status ERROR): {reason}")


class BatchSetupFailed(ProlificError):
    """Task generation for a batch failed (status ``ERROR``, API doc §3.2 setup).

    Attributes: ``batch_id``, ``reason``.
    """

    def __init__(self, *, batch_id: str, reason: str) -> None:
        self.batch_id = batch_id
        self.reason = reason
        super().__init__(f"batch {batch_id} setup failed (status ERROR): {reason}")


class WaitTimedOut(ProlificError):
    """A wait for a dataset/batch/study status ran past its deadline.

    Attributes: ``resource`` (e.g. ``"dataset"``), ``id``, ``last_status``, ``waited_seconds``. The work
    may still finish on Prolific's side; a re-run of the job resumes waiting instead of starting over.
    """

    def __init__(self, *, resource: str, id: str, last_status: str | None, waited_seconds: float) -> None:
        self.resource = resource
        self.id = id
        self.last_status = last_status
        self.waited_seconds = waited_seconds
        super().__init__(
            f"{resource} {id} still {last_status} after waiting {waited_seconds:.0f} s. The work may still "
            f"finish on Prolific's side; re-running the job resumes from here without creating anything twice."
        )
