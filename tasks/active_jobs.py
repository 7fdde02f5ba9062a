"""The index of active jobs: which job records the study monitor still has to read.

A job is active from the moment its record has a study (``study_id``) until it is collected
(``collected_at``): exactly the records :func:`flows.monitor_studies.monitor_studies` acts on. Each active
job is a Prefect Variable ``taskbuilder-active-<slug>`` (the slug of its record's name, value: the record's
block name), created by :func:`tasks.records.update_job_record` when it stores a ``study_id`` and deleted
when it stores ``collected_at``. The monitor lists them with one request per 200
(``POST /api/variables/filter``, name like the prefix) and reads those records in bulk
(:func:`tasks.records.read_job_records`): a finished-and-collected job is never read again, so a monitor run
costs what the active jobs cost, not every job ever run. One variable per job, not one list in one variable:
a create (409 when it exists) and a delete are each atomic, so concurrent runs never lose an entry, and a
variable holds at most 5,000 characters.

Records written before the index existed are found once: while the marker variable
``taskbuilder-index-of-active-jobs`` is absent the monitor lists every record, indexes the active ones and
then creates the marker (:func:`index_is_built`, :func:`mark_index_built`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tasks.prefect_client import prefect_client
from prefect.client.schemas.actions import VariableCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

ACTIVE_PREFIX = "taskbuilder-active-"
MARKER = "taskbuilder-index-of-active-jobs"
PAGE_SIZE = 200
"""Variables per listing request (the Prefect API's default limit)."""


def active_variable_name(record_name: str, record_prefix: str) -> str:
    """The Variable marking the record named ``record_name`` active (its slug after ``record_prefix``)."""
    return ACTIVE_PREFIX + record_name.removeprefix(record_prefix)


def mark_active(client: Any, variable: str, record_name: str) -> None:
    """Index a record as active (``POST /api/variables/``); already indexed is fine."""
    try:
        client.create_variable(VariableCreate(name=variable, value=record_name, tags=["taskbuilder-active-job"]))
    except ObjectAlreadyExists:
        pass


def mark_done(client: Any, variable: str) -> None:
    """Drop a record from the index (``DELETE /api/variables/name/{name}``); not indexed is fine."""
    try:
        client.delete_variable_by_name(variable)
    except ObjectNotFound:
        pass


def active_record_names() -> list[str]:
    """The block names of every active job's record (``POST /api/variables/filter``, 200 per request)."""
    names: list[str] = []
    offset = 0
    with prefect_client() as client:
        while True:
            page = client.request("POST", "/variables/filter", json={
                "variables": {"name": {"like_": ACTIVE_PREFIX}}, "offset": offset, "limit": PAGE_SIZE}).json()
            offset += len(page)
            names += [str(v["value"]) for v in page if str(v.get("name", "")).startswith(ACTIVE_PREFIX)]
            if len(page) < PAGE_SIZE:
                return names


def index_is_built() -> bool:
    """Whether records written before the index have been indexed on this Prefect server."""
    with prefect_client() as client:
        return client.read_variable_by_name(MARKER) is not None


def mark_index_built() -> None:
    """Record that every earlier record was indexed (the marker variable)."""
    with prefect_client() as client:
        try:
            client.create_variable(VariableCreate(name=MARKER, value=dt.datetime.now(dt.timezone.utc).isoformat()))
        except ObjectAlreadyExists:
            pass
