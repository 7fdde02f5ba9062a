"""The Prolific API client: one method per endpoint, one private request path (build → send → map errors).

Layering follows httpx and prefect-dbt's ``DbtCloudAdministrativeClient``: a thin class around one
``httpx.Client``, endpoint methods that return pydantic models (:mod:`taskbuilder.models`), and typed
errors (:mod:`taskbuilder.errors`). The client does no retrying of its own except one case: a 429 or 503
answer carrying ``Retry-After`` (the request was not processed, so resending is safe) is waited out
here, bounded by :class:`ClientTimeouts`; everything else raises, and the caller (the Prefect task
layer, through :func:`taskbuilder.errors.classify`) decides.

Logging: logger ``taskbuilder.client``; DEBUG one line per request (method, path, status, elapsed
seconds; never headers, bodies or query strings), INFO for Retry-After waits, WARNING once per endpoint
for a ``Deprecation`` response header. Do not enable the ``httpx`` logger: it logs every full URL at
INFO (including query strings).

Endpoints: API doc (``/work/shared/docs/prolific-api.md``) §2–§7; paths keep the doc's trailing slashes.
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
import logging
import ssl
import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError

from taskbuilder.errors import (
    MissingCredentials,
    RateLimited,
    ServiceUnavailable,
    UnexpectedResponse,
    api_status_error_from_response,
    transport_error_from_httpx,
)
from taskbuilder.models import (
    Batch,
    BatchStatus,
    Dataset,
    DatasetStatus,
    HookSecret,
    HookSubscription,
    Instruction,
    Project,
    ReportLocation,
    Study,
    StudyAction,
    Submission,
    UploadURL,
    User,
    Workspace,
    WorkspaceBalance,
    parse_status,
)
from taskbuilder.redact import redact_url

logger = logging.getLogger("taskbuilder.client")

M = TypeVar("M", bound=BaseModel)

PAGE_SIZE = 200
"""``limit`` sent to list endpoints that page with limit/offset (the official CLI's default, API doc §1.2)."""

_USER_AGENT = "prolific-taskbuilder/0.1"


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


def _segment(value: str) -> str:
    """One path segment, percent-encoded so an id or filename cannot change the path."""
    return quote(str(value), safe="")


class ProlificClient:
    """Client of Prolific's REST API (or the local sandbox), authenticated with ``Authorization: Token``.

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
            headers={"Authorization": f"Token {secret}", "Accept": "application/json", "User-Agent": _USER_AGENT},
            timeout=self.timeouts.httpx_timeout(),
            transport=transport,
            follow_redirects=False,
            verify=shared_ssl_context(),
        )
        self._deprecated_paths_logged: set[str] = set()

    def __repr__(self) -> str:
        return f"ProlificClient(base_url={self.base_url!r})"

    def __enter__(self) -> ProlificClient:
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
            path = template.format_map({key: _segment(value) for key, value in (path_params or {}).items()})
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
        """GET every page of a list endpoint and return all ``results`` items (API doc §1.2).

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

    # --- user, workspaces, projects (API doc §7) -----------------------------------------------

    def get_me(self) -> User:
        """``GET /api/v1/users/me/`` → the token's user (id, currency_code, balance in minor units).
        A cheap token check: raises :class:`~taskbuilder.errors.Unauthorized` for a bad token."""
        return self._call(User, "GET", "/api/v1/users/me/")

    def list_workspaces(self) -> list[Workspace]:
        """``GET /api/v1/workspaces/`` (all pages) → the workspaces the token can see."""
        return self._list(Workspace, "/api/v1/workspaces/", page_size=PAGE_SIZE)

    def get_workspace_balance(self, workspace_id: str) -> WorkspaceBalance:
        """``GET /api/v1/workspaces/{workspace_id}/balance/`` → balances in minor units."""
        return self._call(
            WorkspaceBalance, "GET", "/api/v1/workspaces/{workspace_id}/balance/",
            path_params={"workspace_id": workspace_id},
        )

    def list_projects(self, workspace_id: str) -> list[Project]:
        """``GET /api/v1/workspaces/{workspace_id}/projects/`` (all pages) → the workspace's projects."""
        return self._list(
            Project, "/api/v1/workspaces/{workspace_id}/projects/",
            path_params={"workspace_id": workspace_id}, page_size=PAGE_SIZE,
        )

    # --- datasets (API doc §2) -----------------------------------------------------------------

    def create_dataset(self, *, name: str, workspace_id: str) -> Dataset:
        """``POST /api/v1/data-collection/datasets`` ``{name, workspace_id}`` → a new V3 dataset
        (status UNINITIALISED). Not idempotent: each call creates a dataset."""
        return self._call(
            Dataset, "POST", "/api/v1/data-collection/datasets", json={"name": name, "workspace_id": workspace_id}
        )

    def get_dataset(self, dataset_id: str) -> Dataset:
        """``GET /api/v1/data-collection/datasets/{dataset_id}`` → the dataset (poll read timeout)."""
        return self._call(
            Dataset, "GET", "/api/v1/data-collection/datasets/{dataset_id}",
            path_params={"dataset_id": dataset_id}, read_seconds=self.timeouts.poll_read_seconds,
        )

    def get_dataset_status(self, dataset_id: str) -> DatasetStatus | str:
        """``GET /api/v1/data-collection/datasets/{dataset_id}/status`` → ``{"status": …}`` as a
        :class:`DatasetStatus` (an unknown value is returned as the raw string)."""
        response = self._request(
            "GET", "/api/v1/data-collection/datasets/{dataset_id}/status",
            path_params={"dataset_id": dataset_id}, read_seconds=self.timeouts.poll_read_seconds,
        )
        return parse_status(DatasetStatus, self._status_of(response))

    def get_dataset_upload_url(self, dataset_id: str, filename: str) -> UploadURL:
        """``GET /api/v1/data-collection/datasets/{dataset_id}/upload-url/{filename}`` → a presigned PUT
        URL with its expiry (API doc §2.5). ``filename`` is sent percent-encoded as one path segment."""
        return self._call(
            UploadURL, "GET", "/api/v1/data-collection/datasets/{dataset_id}/upload-url/{filename}",
            path_params={"dataset_id": dataset_id, "filename": filename},
        )

    # --- batches (API doc §3) ------------------------------------------------------------------

    def create_batch(
        self,
        *,
        name: str,
        workspace_id: str,
        dataset_id: str | None = None,
        task_details: dict[str, Any] | None = None,
        batch_items: list[Any] | None = None,
    ) -> Batch:
        """``POST /api/v1/data-collection/batches`` → a new batch (UNINITIALISED). Optional fields are
        sent only when given; ``task_details`` = ``{task_name, task_introduction, task_steps}``;
        ``batch_items`` = pages (API doc §12). Not idempotent: each call creates a batch."""
        body: dict[str, Any] = {"name": name, "workspace_id": workspace_id}
        optional = {"dataset_id": dataset_id, "task_details": task_details, "batch_items": batch_items}
        body.update({key: value for key, value in optional.items() if value is not None})
        return self._call(Batch, "POST", "/api/v1/data-collection/batches", json=body)

    def get_batch(self, batch_id: str) -> Batch:
        """``GET /api/v1/data-collection/batches/{batch_id}`` → the batch (poll read timeout)."""
        return self._call(
            Batch, "GET", "/api/v1/data-collection/batches/{batch_id}",
            path_params={"batch_id": batch_id}, read_seconds=self.timeouts.poll_read_seconds,
        )

    def get_batch_status(self, batch_id: str) -> BatchStatus | str:
        """``GET /api/v1/data-collection/batches/{batch_id}/status`` → :class:`BatchStatus` (unknown
        values as the raw string)."""
        response = self._request(
            "GET", "/api/v1/data-collection/batches/{batch_id}/status",
            path_params={"batch_id": batch_id}, read_seconds=self.timeouts.poll_read_seconds,
        )
        return parse_status(BatchStatus, self._status_of(response))

    def list_batches(self, workspace_id: str) -> list[Batch]:
        """``GET /api/v1/data-collection/batches?workspace_id=…`` (following links if any) → batches."""
        return self._list(Batch, "/api/v1/data-collection/batches", params={"workspace_id": workspace_id})

    def update_batch(self, batch_id: str, **fields: Any) -> Batch:
        """``PATCH /api/v1/data-collection/batches/{batch_id}`` with ``fields`` as given (``name``,
        ``task_details``, ``dataset_id``, ``batch_items`` — ``batch_items=None`` clears it) → the batch."""
        return self._call(
            Batch, "PATCH", "/api/v1/data-collection/batches/{batch_id}",
            path_params={"batch_id": batch_id}, json=fields,
        )

    def get_instructions(self, batch_id: str) -> list[Instruction]:
        """``GET /api/v1/data-collection/batches/{batch_id}/instructions`` → the legacy instructions
        (API doc §4.1; deprecated endpoint). Raises :class:`~taskbuilder.errors.UnprocessableEntity` for
        a batch_items batch, :class:`~taskbuilder.errors.Gone` once retired."""
        return self._list(
            Instruction, "/api/v1/data-collection/batches/{batch_id}/instructions", path_params={"batch_id": batch_id}
        )

    def create_instructions(self, batch_id: str, instructions: list[dict[str, Any]]) -> list[Instruction]:
        """``POST /api/v1/data-collection/batches/{batch_id}/instructions`` ``{"instructions": [...]}``
        → the created instructions with ids (API doc §4.1; deprecated). Whether a second call appends
        is undocumented: callers check :meth:`get_instructions` first."""
        return self._instruction_list(
            self._request(
                "POST", "/api/v1/data-collection/batches/{batch_id}/instructions",
                path_params={"batch_id": batch_id}, json={"instructions": instructions},
            )
        )

    def replace_instructions(self, batch_id: str, instructions: list[dict[str, Any]]) -> list[Instruction]:
        """``PUT /api/v1/data-collection/batches/{batch_id}/instructions`` ``{"instructions": [...]}``:
        full replacement (items with ``id`` kept/updated, without created, omitted removed) → the list."""
        return self._instruction_list(
            self._request(
                "PUT", "/api/v1/data-collection/batches/{batch_id}/instructions",
                path_params={"batch_id": batch_id}, json={"instructions": instructions},
            )
        )

    def setup_batch(self, batch_id: str, *, dataset_id: str | None = None, tasks_per_group: int | None = None) -> None:
        """``POST /api/v1/data-collection/batches/{batch_id}/setup`` ``{dataset_id?, tasks_per_group?}`` →
        202: task generation starts (batch PROCESSING, then READY or ERROR; poll
        :meth:`get_batch_status`). Raises :class:`~taskbuilder.errors.BadRequest` if the dataset is not READY."""
        fields = {"dataset_id": dataset_id, "tasks_per_group": tasks_per_group}
        self._request(
            "POST", "/api/v1/data-collection/batches/{batch_id}/setup",
            path_params={"batch_id": batch_id}, json={key: value for key, value in fields.items() if value is not None},
        )

    def get_batch_report(self, batch_id: str) -> ReportLocation:
        """``GET /api/v1/data-collection/batches/{batch_id}/report/`` → where the report CSV is (API doc §5.1).

        A JSON answer ``{"url", "expires_at", "http_method"}`` gives a presigned URL (download it with
        :func:`taskbuilder.upload.download_to_file`); a ``text/csv`` answer is the CSV itself, returned
        as ``csv_text`` (decoded with the response charset, default UTF-8).
        """
        response = self._request(
            "GET", "/api/v1/data-collection/batches/{batch_id}/report/", path_params={"batch_id": batch_id}
        )
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "text/csv":
            text = response.content.decode(response.charset_encoding or "utf-8")
            return ReportLocation(csv_text=text)
        return self._parse(ReportLocation, self._json(response), response)

    def get_batch_responses(self, batch_id: str) -> list[dict[str, Any]]:
        """``GET /api/v1/data-collection/batches/{batch_id}/responses`` (all pages) → one dict per
        (participant, task, instruction) answer, as sent (API doc §5.2)."""
        return self._collect("/api/v1/data-collection/batches/{batch_id}/responses", path_params={"batch_id": batch_id})

    # --- studies and submissions (API doc §6) --------------------------------------------------

    def create_study(self, payload: dict[str, Any]) -> Study:
        """``POST /api/v1/studies/`` with ``payload`` (API doc §6.1; for a batch:
        ``data_collection_method="AI_TASK_BUILDER_BATCH"``, ``data_collection_id``,
        ``data_collection_metadata.annotators_per_task``; ``reward`` in minor units) → the draft study
        (UNPUBLISHED). Not idempotent: each call creates a study."""
        return self._call(Study, "POST", "/api/v1/studies/", json=payload)

    def get_study(self, study_id: str) -> Study:
        """``GET /api/v1/studies/{study_id}/`` → the study (poll read timeout)."""
        return self._call(
            Study, "GET", "/api/v1/studies/{study_id}/",
            path_params={"study_id": study_id}, read_seconds=self.timeouts.poll_read_seconds,
        )

    def update_study(self, study_id: str, **fields: Any) -> Study:
        """``PATCH /api/v1/studies/{study_id}/`` with ``fields`` as given → the study."""
        return self._call(
            Study, "PATCH", "/api/v1/studies/{study_id}/", path_params={"study_id": study_id}, json=fields
        )

    def delete_study(self, study_id: str) -> None:
        """``DELETE /api/v1/studies/{study_id}/`` (API doc §6.2): removes an UNPUBLISHED study (a
        published one is refused by the server with 4xx)."""
        self._request("DELETE", "/api/v1/studies/{study_id}/", path_params={"study_id": study_id})

    def list_studies(self, *, status: str | None = None) -> list[Study]:
        """``GET /api/v1/studies/`` (all pages, limit/offset or ``_links.next``) → the token's studies.

        ``status`` (e.g. ``"UNPUBLISHED"``) filters here, on the client: the API's own filters
        (``published=0``, ``active=1``…, API doc §6.2) do not map one-to-one onto statuses.
        """
        studies = self._list(Study, "/api/v1/studies/", page_size=PAGE_SIZE)
        return [study for study in studies if status is None or study.status == status]

    def transition_study(self, study_id: str, action: StudyAction) -> Study:
        """``POST /api/v1/studies/{study_id}/transition/`` ``{"action": …}`` (PUBLISH, PAUSE, START,
        STOP; API doc §6.3) → the study. If the answer is empty or not a study object (undocumented), the
        study is read back with :meth:`get_study`. PUBLISH spends money: the caller checks the status first."""
        response = self._request(
            "POST", "/api/v1/studies/{study_id}/transition/",
            path_params={"study_id": study_id}, json={"action": str(StudyAction(action))},
        )
        body = self._json(response) if response.content else None
        if isinstance(body, dict) and "id" in body:
            return self._parse(Study, body, response)
        return self.get_study(study_id)

    def list_submissions(self, study_id: str) -> list[Submission]:
        """``GET /api/v1/studies/{study_id}/submissions/`` (all pages) → the study's submissions."""
        return self._list(
            Submission, "/api/v1/studies/{study_id}/submissions/",
            path_params={"study_id": study_id}, page_size=PAGE_SIZE,
        )

    def get_submission_counts(self, study_id: str) -> dict[str, int]:
        """``GET /api/v1/studies/{study_id}/submissions/counts/`` → ``{status: count}`` with the keys of
        API doc §6.4 (``"AWAITING REVIEW"``, ``"TIMED-OUT"``…, plus ``"TOTAL"``)."""
        response = self._request(
            "GET", "/api/v1/studies/{study_id}/submissions/counts/",
            path_params={"study_id": study_id}, read_seconds=self.timeouts.poll_read_seconds,
        )
        body = self._json(response)
        if not isinstance(body, dict) or not all(isinstance(value, int) for value in body.values()):
            raise UnexpectedResponse(
                method="GET", path=response.request.url.path, status_code=response.status_code,
                reason="expected an object of integer counts",
            )
        return body

    def bulk_approve_submissions(self, submission_ids: list[str]) -> None:
        """``POST /api/v1/submissions/bulk-approve/`` ``{"submission_ids": [...]}`` (API doc §6.4); the
        answer's body is ignored (success = 2xx). Pays the participants: not to be called twice blindly."""
        self._request("POST", "/api/v1/submissions/bulk-approve/", json={"submission_ids": list(submission_ids)})

    # --- webhooks (API doc §8) -----------------------------------------------------------------

    def list_hook_event_types(self) -> list[dict[str, Any]]:
        """``GET /api/v1/hooks/event-types/`` → ``[{"event_type", "description"}, …]``."""
        return self._collect("/api/v1/hooks/event-types/")

    def list_hook_secrets(self, workspace_id: str) -> list[HookSecret]:
        """``GET /api/v1/hooks/secrets/?workspace_id=…`` → the workspace's active signing secret(s)."""
        return self._list(HookSecret, "/api/v1/hooks/secrets/", params={"workspace_id": workspace_id})

    def create_hook_secret(self, workspace_id: str) -> HookSecret:
        """``POST /api/v1/hooks/secrets/`` ``{workspace_id}`` → a new signing secret; it replaces the
        workspace's previous one (one active secret per workspace)."""
        return self._call(HookSecret, "POST", "/api/v1/hooks/secrets/", json={"workspace_id": workspace_id})

    def create_hook_subscription(self, *, event_type: str, target_url: str, workspace_id: str) -> HookSubscription:
        """``POST /api/v1/hooks/subscriptions/`` ``{event_type, target_url, workspace_id}`` → the (not yet
        enabled) subscription, with the answer's ``X-Hook-Secret`` header as ``hook_secret``. Prolific
        delivers only to public https URLs."""
        response = self._request(
            "POST", "/api/v1/hooks/subscriptions/",
            json={"event_type": event_type, "target_url": target_url, "workspace_id": workspace_id},
        )
        subscription = self._parse(HookSubscription, self._json(response), response)
        handshake = response.headers.get("x-hook-secret")
        return subscription.model_copy(update={"hook_secret": SecretStr(handshake) if handshake else None})

    def confirm_hook_subscription(self, subscription_id: str, secret: SecretStr | str) -> HookSubscription:
        """``POST /api/v1/hooks/subscriptions/{subscription_id}/`` ``{"secret": <X-Hook-Secret>}`` → the
        enabled subscription."""
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        return self._call(
            HookSubscription, "POST", "/api/v1/hooks/subscriptions/{subscription_id}/",
            path_params={"subscription_id": subscription_id}, json={"secret": value},
        )

    def list_hook_subscriptions(self, workspace_id: str, *, is_enabled: bool | None = None) -> list[HookSubscription]:
        """``GET /api/v1/hooks/subscriptions/?workspace_id=…[&is_enabled=true|false]`` (all pages)."""
        params: dict[str, str] = {"workspace_id": workspace_id}
        if is_enabled is not None:
            params["is_enabled"] = "true" if is_enabled else "false"
        return self._list(HookSubscription, "/api/v1/hooks/subscriptions/", params=params, page_size=PAGE_SIZE)

    def delete_hook_subscription(self, subscription_id: str) -> None:
        """``DELETE /api/v1/hooks/subscriptions/{subscription_id}/`` → 204."""
        self._request(
            "DELETE", "/api/v1/hooks/subscriptions/{subscription_id}/", path_params={"subscription_id": subscription_id}
        )

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
        path = template.format_map({key: _segment(value) for key, value in (path_params or {}).items()})
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

    def _instruction_list(self, response: httpx.Response) -> list[Instruction]:
        """Instructions from a JSON array or ``{"results": [...]}`` answer."""
        body = self._json(response)
        items = body.get("results") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise UnexpectedResponse(
                method=response.request.method, path=response.request.url.path,
                status_code=response.status_code, reason="expected a list of instructions",
            )
        return [self._parse(Instruction, item, response) for item in items]
