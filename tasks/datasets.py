"""Prefect tasks for datasets: create (V4 with a schema, or V3), upload the file through the presigned URL,
wait for the import job (V4) or for READY (V3).

Endpoints (``../shared/docs/prolific-api-current.md`` §1): ``POST /api/v1/data-collection/datasets``,
``GET …/datasets/{id}``, ``GET …/datasets/{id}/upload-url/{filename}``, ``PUT <presigned url>``,
``GET …/datasets/{id}/imports/{import_id}`` (V4), ``GET …/datasets/{id}/status`` (V3).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.errors import DatasetProcessingFailed, UnexpectedResponse, UploadSlowDown, UploadURLExpired
from taskbuilder.failures import classify
from taskbuilder.models import DatasetStatus, ImportJob, ImportStatus, UploadURL
from taskbuilder.polling import PollSettings, wait_for_status
from taskbuilder.redact import redact_url
from taskbuilder.upload import upload_file

from tasks.caching import CREATE_TASK_OPTIONS
from tasks.connection import ProlificConnection, open_client
from tasks.job_tags import of_job
from tasks.logs import run_logger
from tasks.reconcile import oldest, settle_before_lookup
from tasks.records import known_job_record, update_job_record
from tasks.retry import API_TASK_OPTIONS

UPLOAD_URL_MARGIN_SECONDS = 60.0
"""A presigned URL that expires sooner than this is not used; a fresh one is requested."""
NO_REASON = "the server gave no reason"
UPLOAD_ATTEMPTS = 4
"""Upload attempts inside one task run (URL refreshes and SlowDown back-offs)."""


@task(name="create-dataset", **API_TASK_OPTIONS, **CREATE_TASK_OPTIONS)
def create_dataset(
    connection: ProlificConnection, job_key: str, name: str, workspace_id: str, schema: dict[str, Any] | None = None,
    batch_name: str | None = None,
) -> str:
    """Return the id of the job's dataset, creating it only when the job has no batch yet.

    The API has no dataset look-up, but the job's batch (named ``batch_name``, which carries the job
    key and work tag) names its dataset: when the workspace has a batch under that job key
    (``GET …/batches?workspace_id=``, the oldest if several), its ``dataset_id`` is the job's dataset,
    whatever this host remembers (a re-run from another machine or Prefect home creates nothing). A
    batch under the key made from other work raises :class:`tasks.job_tags.JobChanged` (nothing created). Else ``POST
    /api/v1/data-collection/datasets`` with ``{name, workspace_id, schema?}`` (→ 201, §1.1): with a
    ``schema`` a V4 dataset, without one a V3 dataset. The result is cached under the job key. When a
    create's response is lost (the server made it, the client never heard) the retry makes a second one:
    the first stays behind, empty and free of charge. Each attempt is counted in the job record and such
    a leftover is written to its ``notes`` (and so to ``run.json``).
    """
    logger = run_logger()
    found = _dataset_of_job_batch(connection, workspace_id, batch_name) if batch_name else None
    if found:
        logger.info("The job's batch uses dataset %s: not creating another", found)
        update_job_record(job_key, connection.base_url, dataset_id=found)
        return found
    record = known_job_record(job_key, connection.base_url) or {}
    # a create whose answer was recorded (the record names its dataset) is not a lost answer: that dataset is
    # gone from the server (a sandbox restarted empty), and this create starts the count again
    attempts = 1 if record.get("dataset_id") else int(record.get("dataset_create_attempts", 0)) + 1
    notes = []
    if attempts > 1:
        notes.append(
            "a dataset create was attempted before without a recorded answer: the server may hold one "
            "extra empty dataset from this job (no cost; the API has no dataset look-up or delete)"
        )
        logger.warning("Dataset create attempt %d for job %r: %s", attempts, job_key, notes[0])
    update_job_record(job_key, connection.base_url, dataset_create_attempts=attempts, notes=notes)
    with open_client(connection) as client:
        dataset = client.create_dataset(name=name, workspace_id=workspace_id, schema=schema)
    version = 4 if schema is not None else 3
    update_job_record(job_key, connection.base_url, dataset_id=dataset.id, dataset_version=version,
                      statuses={"dataset": str(dataset.status)})
    logger.info("Created V%d dataset %s (%s)", version, dataset.id, name)
    return dataset.id


def _dataset_of_job_batch(connection: ProlificConnection, workspace_id: str, batch_name: str) -> str | None:
    """The dataset id of the oldest batch of the job (the job key of ``batch_name``) in the workspace, else
    ``None``; :class:`tasks.job_tags.JobChanged` when one was made from other work."""
    with open_client(connection) as client:
        batches = of_job(client.list_batches(workspace_id), batch_name, "batch", connection.base_url)
    if not batches:
        return None
    batch = oldest(batches)
    return batch.dataset_id or next((dataset.id for dataset in batch.datasets or []), None)


@task(name="upload-dataset-file", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def upload_dataset_file(connection: ProlificConnection, dataset_id: str, csv_path: Path, filename: str) -> str:
    """Upload ``csv_path`` to the dataset unless it already has data; return the status seen first.

    State is checked first (``GET …/datasets/{id}/status``): only an ``UNINITIALISED`` dataset is
    uploaded to. Then ``GET …/upload-url/{filename}`` and a raw ``PUT`` streamed from disk with
    Content-Length (``Content-Type: text/csv``). A URL within 60 s of ``expires_at`` is replaced before
    use (a fresh URL is used as it is, however short its life); an expiry answer from S3 (recognised
    from its XML body) gets a fresh URL; ``SlowDown`` (or a 429) backs off, for its Retry-After when
    given. Raises the typed errors of :mod:`taskbuilder.errors`; transient ones are retried by Prefect.
    """
    logger = run_logger()
    with open_client(connection) as client:
        status = str(client.get_dataset_status(dataset_id))
        if status != DatasetStatus.UNINITIALISED:
            logger.info("Dataset %s is %s: its file was uploaded before, not uploading again", dataset_id, status)
            return status
        _put_file(client, connection, dataset_id, csv_path, filename)
        return status



def _put_file(client: Any, connection: ProlificConnection, dataset_id: str, path: Path, filename: str,
              on_url: Callable[[UploadURL], None] | None = None) -> UploadURL:
    """Ask for an upload URL and PUT ``path`` to it, with the returned ``content_type`` (``text/csv`` when the
    answer has none, as V3 does); refresh an expiring or expired URL and back off on SlowDown, up to
    ``UPLOAD_ATTEMPTS``. ``on_url`` sees each URL answer before its PUT (the import job is recorded there).
    Returns the URL answer the file went to."""
    logger = run_logger()
    size_bytes = path.stat().st_size
    upload_url = None
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        if upload_url is None or _seconds_left(upload_url) < UPLOAD_URL_MARGIN_SECONDS:
            if upload_url is not None:
                logger.info("Upload URL expires in %.0f s: asking for a fresh one", _seconds_left(upload_url))
            upload_url = client.get_dataset_upload_url(dataset_id, filename)
            if on_url is not None:
                on_url(upload_url)
        started = time.monotonic()
        content_type = upload_url.content_type or "text/csv"
        try:
            upload_file(upload_url.upload_url, path, content_type=content_type, timeouts=connection.timeouts)
        except (UploadURLExpired, UploadSlowDown) as exc:
            if attempt == UPLOAD_ATTEMPTS:
                raise
            decision = classify(exc)
            delay = 0.0
            if decision.action == "refresh":
                upload_url = None
            else:
                delay = decision.wait_seconds if decision.wait_seconds is not None else min(2.0**attempt, 30.0)
            logger.warning("Upload: %s; attempt %d in %.1f s", decision.reason, attempt + 1, delay)
            time.sleep(delay)
            continue
        logger.info(
            "Uploaded %s (%d bytes, %s) to %s in %.2f s",
            path.name, size_bytes, content_type, redact_url(upload_url.upload_url), time.monotonic() - started,
        )
        return upload_url
    raise AssertionError("unreachable")  # pragma: no cover


@task(name="upload-dataset-import", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def upload_dataset_import(connection: ProlificConnection, job_key: str, dataset_id: str, path: Path, filename: str) -> str:
    """Upload ``path`` to the V4 dataset once; return the import job's id (§1.4–§1.6).

    State first: an import job of the dataset (``GET …/datasets/{id}``, ``imports``) that got data (any status
    but ``uninitialised``) means the file went up before: nothing is uploaded again (a second upload would add every record twice). Otherwise ``GET …/upload-url/{filename}``
    (each call opens an import job; its id is written to the job record before the PUT), then the PUT with
    the returned ``content_type``. On a retry after an attempt without an answer the look-up waits first
    (:func:`tasks.reconcile.settle_before_lookup`): the object store may have the file already.
    """
    logger = run_logger()
    settle_before_lookup(connection)
    with open_client(connection) as client:
        used = [job for job in client.get_dataset(dataset_id).imports or [] if str(job.status) != ImportStatus.UNINITIALISED]
        if used:
            logger.info("Dataset %s has import %s (%s): its file was uploaded before, not uploading again",
                        dataset_id, used[0].import_id, used[0].status)
            update_job_record(job_key, connection.base_url, import_id=used[0].import_id)
            return used[0].import_id

        def record(upload_url: UploadURL) -> None:
            if not upload_url.import_id:
                raise UnexpectedResponse(method="GET", path=f"/api/v1/data-collection/datasets/{dataset_id}/upload-url/",
                                         status_code=200, reason="a V4 upload URL answer without import_id")
            update_job_record(job_key, connection.base_url, import_id=upload_url.import_id)

        return str(_put_file(client, connection, dataset_id, path, filename, on_url=record).import_id)


@task(name="wait-for-import", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def wait_for_import(connection: ProlificConnection, dataset_id: str, import_id: str, polling: PollSettings) -> int:
    """Poll ``GET …/datasets/{id}/imports/{import_id}`` (§1.6) until ``complete``; return ``accepted_count``.

    ``partial`` (some records rejected), ``failed`` and ``pending_schema`` stop the job at once with
    :class:`DatasetProcessingFailed`, whose reason lists the rejected records (record number from 1, field,
    reason); :class:`WaitTimedOut` after ``polling.dataset_timeout_seconds``.
    """
    logger = run_logger()
    seen: dict[str, ImportJob] = {}
    with open_client(connection) as client:

        def status() -> str:
            seen["job"] = client.get_import_job(dataset_id, import_id)
            return str(seen["job"].status)

        wait_for_status(
            status,
            resource="dataset import",
            resource_id=import_id,
            done={ImportStatus.COMPLETE},
            failed={ImportStatus.PARTIAL, ImportStatus.FAILED, ImportStatus.PENDING_SCHEMA},
            on_failed=lambda _: DatasetProcessingFailed(dataset_id=dataset_id, reason=import_problem(seen["job"])),
            timeout_seconds=polling.dataset_timeout_seconds,
            settings=polling,
            on_poll=lambda current, elapsed: logger.info("Import %s of dataset %s is %s after %.1f s",
                                                         import_id, dataset_id, current, elapsed),
        )
    accepted = int(seen["job"].accepted_count or 0)
    logger.info("Import %s is complete: %d records accepted", import_id, accepted)
    return accepted


def import_problem(job: ImportJob, most: int = 20) -> str:
    """Why an import job stopped the job: its status, counts, ``reason`` and the first ``most`` rejected records
    (``record N`` counted from 1, as the CLI prints ``record_index + 1``; the field; the reason)."""
    if str(job.status) == ImportStatus.PENDING_SCHEMA:
        return f"import {job.import_id} is pending_schema: the dataset has no schema (create it with one)"
    parts = [f"import {job.import_id} is {job.status}"]
    if job.accepted_count is not None or job.rejected_count is not None:
        parts.append(f"{job.accepted_count or 0} records accepted, {job.rejected_count or 0} rejected")
    if job.reason:
        parts.append(job.reason)
    lines = [f"record {error.record_index + 1}, field {error.field or '?'}: {error.reason or NO_REASON}"
             for error in (job.errors or [])[:most]]
    if job.errors and len(job.errors) > most:
        lines.append(f"... and {len(job.errors) - most} more")
    text = "; ".join(parts)
    return text + (". Rejected:\n  " + "\n  ".join(lines) if lines else "") + ". Nothing else was created: fix those records and run again"


@task(name="wait-for-dataset", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def wait_for_dataset(connection: ProlificConnection, dataset_id: str, polling: PollSettings) -> str:
    """Poll ``GET …/datasets/{id}/status`` until READY; return ``"READY"``.

    Raises :class:`DatasetProcessingFailed` at once on ERROR (with the server's reason from
    ``GET …/datasets/{id}``), :class:`WaitTimedOut` after ``polling.dataset_timeout_seconds``.
    """
    logger = run_logger()
    with open_client(connection) as client:

        def failed(status: str) -> Exception:
            dataset = client.get_dataset(dataset_id)
            return DatasetProcessingFailed(dataset_id=dataset_id, reason=dataset.error_reason or NO_REASON)

        return wait_for_status(
            lambda: client.get_dataset_status(dataset_id),
            resource="dataset",
            resource_id=dataset_id,
            done={DatasetStatus.READY},
            failed={DatasetStatus.ERROR},
            on_failed=failed,
            timeout_seconds=polling.dataset_timeout_seconds,
            settings=polling,
            on_poll=lambda status, elapsed: logger.info("Dataset %s is %s after %.1f s", dataset_id, status, elapsed),
        )


def _seconds_left(upload_url: Any) -> float:
    """Seconds until a presigned upload URL expires (``expires_at`` from the upload-url answer)."""
    return (upload_url.expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
