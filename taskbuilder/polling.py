"""Waiting for a remote status: a deadline, a poll interval that backs off to a cap, progress callbacks.

Source of the statuses: ``GET /api/v1/data-collection/datasets/{id}/status``,
``GET /api/v1/data-collection/batches/{id}/status`` and ``GET /api/v1/studies/{id}/`` (API doc §2.4,
§3.2, §6.3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from pydantic import BaseModel, Field

from taskbuilder.errors import WaitTimedOut


class PollSettings(BaseModel):
    """How to wait for datasets, batches and studies (all in seconds).

    The interval starts at ``interval_seconds`` and is multiplied by ``backoff`` after every poll that
    saw no change, up to ``max_interval_seconds``; it drops back to the start when the status changes.
    """

    interval_seconds: float = Field(2.0, gt=0, description="First poll interval, seconds.")
    max_interval_seconds: float = Field(30.0, gt=0, description="Longest poll interval, seconds.")
    backoff: float = Field(1.5, ge=1.0, description="Interval multiplier after a poll with no change.")
    dataset_timeout_seconds: float = Field(1800, gt=0, description="Deadline for a dataset to be READY.")
    batch_timeout_seconds: float = Field(1800, gt=0, description="Deadline for a batch to be READY.")
    study_timeout_seconds: float = Field(
        7 * 24 * 3600, gt=0, description="Deadline for a study to reach AWAITING REVIEW or COMPLETED."
    )


def wait_for_status(
    get_status: Callable[[], str],
    *,
    resource: str,
    resource_id: str,
    done: Collection[str],
    failed: Collection[str] = (),
    on_failed: Callable[[str], Exception] | None = None,
    timeout_seconds: float,
    settings: PollSettings,
    on_poll: Callable[[str, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Call ``get_status()`` until it returns a status in ``done``; return that status.

    Raises ``on_failed(status)`` at once when a status in ``failed`` is seen, and
    :class:`taskbuilder.errors.WaitTimedOut` when ``timeout_seconds`` pass first (the work may still
    finish on the server; a re-run resumes the wait). ``on_poll(status, elapsed_seconds)`` is called
    after each poll (progress logging). Exceptions from ``get_status`` propagate unchanged.
    """
    started = clock()
    interval = settings.interval_seconds
    last: str | None = None
    while True:
        status = str(get_status())
        elapsed = clock() - started
        if on_poll is not None:
            on_poll(status, elapsed)
        if status in done:
            return status
        if status in failed:
            raise (on_failed(status) if on_failed else RuntimeError(f"{resource} {resource_id} is {status}"))
        if elapsed >= timeout_seconds:
            raise WaitTimedOut(resource=resource, id=resource_id, last_status=status, waited_seconds=elapsed)
        interval = settings.interval_seconds if status != last else min(interval * settings.backoff, settings.max_interval_seconds)
        last = status
        sleep(min(interval, max(timeout_seconds - elapsed, 0.0)) or interval)
