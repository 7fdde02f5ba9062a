"""Cache keys for API tasks: the task's name + the API it talks to + the job key.

Not Prefect's default policy (its RUN_ID part never hits across runs) and not ``TASK_SOURCE`` (a code
edit would invalidate it and a re-run would create remote resources again): see
``prefect-notes.md`` §2. A cached create returns the id of the resource created before, so a re-run of
the same job resumes instead of creating twice. Results are persisted as JSON under Prefect's result
storage (``PREFECT_RESULTS_LOCAL_STORAGE_PATH``, default ``~/.prefect/storage``).
"""

from __future__ import annotations

from typing import Any

from taskbuilder.jobkey import storage_slug


def job_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect ``cache_key_fn``: ``<task>-…-<hash(task, base_url, job_key)>``.

    Expects the task to take ``connection`` (a :class:`tasks.connection.ProlificConnection`) and
    ``job_key`` (str) parameters.
    """
    connection = parameters["connection"]
    return storage_slug(context.task.name, connection.base_url, parameters["job_key"])


CREATE_TASK_OPTIONS: dict[str, Any] = dict(cache_key_fn=job_cache_key, result_serializer="json", persist_result=True)
"""Keyword arguments shared by the tasks whose result must survive a crash (the creates)."""
