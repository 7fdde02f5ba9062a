"""In-process progress listeners: how a long wait inside a task reaches a terminal progress bar.

Prefect shows a wait's progress as a progress artifact; a command that runs the flow in its own
process (the ``taskbuilder`` CLI) also wants a bar. Tasks call :func:`report_progress`; the CLI adds
a listener for the duration of the run (:func:`listening`). Listeners run in the task's thread and
must not raise (errors are swallowed so a display problem never fails a job).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressListener = Callable[[str, float, str], None]
"""``listener(key, percent 0–100, description)``."""

_listeners: list[ProgressListener] = []


def report_progress(key: str, percent: float, description: str) -> None:
    """Tell every listener that ``key`` is at ``percent`` (0–100), with a one-line ``description``."""
    for listener in list(_listeners):
        try:
            listener(key, percent, description)
        except Exception:  # noqa: BLE001 - a display must never fail the job
            pass


@contextmanager
def listening(listener: ProgressListener) -> Iterator[None]:
    """Register ``listener`` inside the ``with`` block."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
