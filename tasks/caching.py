"""Cache keys for API tasks: the task's name + the API it talks to + the job key.

Not Prefect's default policy (its RUN_ID part never hits across runs) and not ``TASK_SOURCE`` (a code
edit would invalidate it and a re-run would create remote resources again): see
``prefect-notes.md`` §2. A cached create returns the id of the resource created before, so a re-run of
the same job resumes instead of creating twice. Results are persisted as JSON under Prefect's result
storage (``PREFECT_RESULTS_LOCAL_STORAGE_PATH``, default ``~/.prefect/storage``).

A cached id is checked before it is trusted (:func:`create_once`): the resource may have been deleted
since (a draft study deleted in Prolific, a sandbox reset). One that the server answers 404 for is
dropped and the create task runs again, look-up first, then create.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taskbuilder.errors import NotFound
from taskbuilder.jobkey import storage_slug

from tasks.connection import ProlificConnection, open_client
from tasks.logs import run_logger


def job_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect ``cache_key_fn``: ``<task>-…-<hash(task, base_url, job_key)>``.

    Expects the task to take ``connection`` (a :class:`tasks.connection.ProlificConnection`) and
    ``job_key`` (str) parameters.
    """
    connection = parameters["connection"]
    return storage_slug(context.task.name, connection.base_url, parameters["job_key"])


CREATE_TASK_OPTIONS: dict[str, Any] = dict(cache_key_fn=job_cache_key, result_serializer="json", persist_result=True)
"""Keyword arguments shared by the tasks whose result must survive a crash (the creates)."""


_READERS: dict[str, Callable[[Any, str], Any]] = {
    "dataset": lambda client, resource_id: client.get_dataset(resource_id),
    "batch": lambda client, resource_id: client.get_batch(resource_id),
    "study": lambda client, resource_id: client.get_study(resource_id),
}


def create_once(create_task: Any, kind: str, connection: ProlificConnection, *args: Any) -> str:
    """Run the cached create task ``create_task(connection, *args)`` of a ``kind`` (``"dataset"``,
    ``"batch"``, ``"study"``) resource and return its id.

    When the id comes from the cache, it is read on the server first (``GET`` of the dataset, batch or
    study); on 404 the cache entry is replaced by running the task again (``refresh_cache=True``: its
    look-up, then its create). Other errors of that read propagate (typed API errors).
    """
    state = create_task(connection, *args, return_state=True)
    resource_id = state.result()
    if not state.is_completed() or state.name != "Cached":
        return resource_id
    try:
        with open_client(connection) as client:
            _READERS[kind](client, resource_id)
        return resource_id
    except NotFound:
        run_logger().warning(
            "The %s %s remembered for this job is gone from %s (404): looking for the job's %s again, else creating it",
            kind, resource_id, connection.base_url, kind,
        )
    return create_task.with_options(refresh_cache=True)(connection, *args)
