"""The retry policy of every API task, built on :func:`taskbuilder.failures.classify`.

Only transient failures are retried (connection errors, timeouts, 5xx, an exhausted Retry-After
wait); anything the server refused (400/401/403/404/409/410/422) or a failed dataset/batch stops at
once, with the reason in the log. Delays are exponential with jitter, capped; the base delay can be
shortened with ``TASKBUILDER_RETRY_BASE_SECONDS`` (tests set it to a fraction of a second).
"""

from __future__ import annotations

import os
from typing import Any

from taskbuilder.errors import ConnectError, TransportError
from taskbuilder.failures import classify

from tasks.logs import run_logger

RETRIES = int(os.environ.get("TASKBUILDER_RETRIES", "4"))
RETRY_BASE_SECONDS = float(os.environ.get("TASKBUILDER_RETRY_BASE_SECONDS", "2"))
RETRY_MAX_SECONDS = 60.0


def retry_delays_seconds(retries: int = RETRIES, base_seconds: float = RETRY_BASE_SECONDS) -> list[float]:
    """Exponential delays ``base, 2·base, 4·base, …`` capped at 60 s, one per retry (seconds)."""
    return [min(base_seconds * 2**attempt, RETRY_MAX_SECONDS) for attempt in range(retries)]


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: True when the task's failure is worth another attempt.

    Signature per Prefect 3.9 (``prefect-notes.md`` §1). ``state.result()`` re-raises the task's
    exception; :func:`classify` decides. ``wait`` (Retry-After already waited out in the client, or S3
    SlowDown) and ``retry`` are retried; ``stop`` and ``refresh`` are not (a refresh is handled inside
    the upload task itself).
    """
    logger = run_logger()
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - we classify whatever the task raised
        decision = classify(exc)
        retry = decision.action in ("retry", "wait")
        if isinstance(exc, TransportError) and not isinstance(exc, ConnectError):  # ConnectError: never sent
            _UNANSWERED_RUNS.add(str(task_run.id))
        logger.warning(
            "%s failed: %s → %s",
            getattr(task, "name", "task"),
            decision.reason,
            "retrying" if retry else "not retrying",
        )
        return retry
    return True


_UNANSWERED_RUNS: set[str] = set()


def previous_attempt_unanswered(task_run_id: str) -> bool:
    """True when an earlier attempt of this task run ended without an answer (time-out, dropped
    connection): the server may have carried out that request, or may still be doing so."""
    return str(task_run_id) in _UNANSWERED_RUNS


API_TASK_OPTIONS: dict[str, Any] = dict(
    retries=RETRIES,
    retry_delay_seconds=retry_delays_seconds(),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_on_transient,
)
"""Keyword arguments shared by every API task's ``@task(...)``."""
