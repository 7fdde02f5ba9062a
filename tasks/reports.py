"""Prefect tasks for the results: fetch the batch report, turn it into outputs.

Endpoint (API doc §5.1): ``GET /api/v1/data-collection/batches/{id}/report/`` → a JSON pointer
``{url, expires_at, http_method}`` to a presigned CSV (what the API answers today), or the CSV inline
(what the seed describes).
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.redact import redact_url
from taskbuilder.upload import download_to_file

from tasks.connection import ProlificConnection, open_client
from tasks.logs import run_logger
from tasks.retry import API_TASK_OPTIONS


@task(name="fetch-report", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def fetch_report(connection: ProlificConnection, batch_id: str, destination: Path) -> Path:
    """Download the batch report to ``destination`` exactly as served; return the path.

    Pointer delivery: the presigned URL is fetched with a client that sends no token (streamed to
    disk). Inline delivery: the body is written as received (UTF-8).
    """
    logger = run_logger()
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open_client(connection) as client:
        location = client.get_batch_report(batch_id)
    if location.url:
        size_bytes = download_to_file(location.url, destination, timeouts=connection.timeouts)
        logger.info("Downloaded the report of batch %s from %s (%d bytes)", batch_id, redact_url(location.url), size_bytes)
    else:
        destination.write_bytes((location.csv_text or "").encode("utf-8"))
        logger.info("The report of batch %s came inline (%d bytes)", batch_id, destination.stat().st_size)
    return destination
