"""Look-up-before-create for resources whose create may still be in flight on the server.

A create whose answer never came (time-out, dropped connection) may still be running on the server
when Prefect retries it, so a look-up straight away can miss it and the retry would create a second
one. Two guards, both here:

1. :func:`settle_before_lookup`: on a retry after an attempt that got no answer, wait one client
   read timeout before looking up, so a request the server was still working on has finished (or
   failed) by then;
2. :func:`oldest`: after a create, the caller lists again; if two resources carry the job key, every
   run keeps the oldest (so concurrent or retried runs converge on the same one) and handles the rest
   (studies: deleted while UNPUBLISHED; batches: the API cannot delete them, so they are reported).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

from tasks.connection import ProlificConnection
from tasks.logs import run_logger
from tasks.retry import previous_attempt_unanswered

R = TypeVar("R")


def settle_before_lookup(connection: ProlificConnection) -> None:
    """Sleep ``connection.timeouts.read_seconds`` when an earlier attempt of the current task run got
    no answer (see :func:`tasks.retry.previous_attempt_unanswered`); return at once otherwise."""
    from prefect.runtime import task_run

    if task_run.get_run_count() > 1 and previous_attempt_unanswered(task_run.get_id()):
        wait_seconds = connection.timeouts.read_seconds
        run_logger().info("Retry of a create: waiting %.1f s for a request still in flight before looking up", wait_seconds)
        time.sleep(wait_seconds)


def oldest(resources: Sequence[R]) -> R:
    """The resource created first (``created_at`` / ``date_created``, then id); ``resources`` non-empty."""
    def key(resource: Any) -> tuple[str, str]:
        extra = getattr(resource, "model_extra", None) or {}
        created = getattr(resource, "created_at", None) or extra.get("created_at") or extra.get("date_created") or ""
        return (str(created), str(resource.id))

    return min(resources, key=key)
