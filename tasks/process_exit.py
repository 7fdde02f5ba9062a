"""The end of a process that ran Prefect work: Prefect's queued logs and events sent, then ``os._exit``.

Used by the CLI (``flows.cli.main``) and by a worker's flow-run process (``deployments.flow_run``). Skips the
interpreter's teardown: freeing the ~200,000 objects a run leaves and Prefect's thread shutdowns, 1-2.5 s of
wall time and ~0.8 s of CPU at the end of every run (B8, B4; issue 18, NOTES.md "Lean runs").
"""

from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int | str | None) -> None:
    """End the process with ``code`` (``sys.exit`` semantics: ``None`` → 0, a string is printed, → 1) once its
    work is done: Prefect's queued logs and events are sent to the API first (what its own at-exit drains do),
    logging and the standard streams flushed, then ``os._exit``. It skips the interpreter's teardown of the
    ~200,000 objects a run leaves and Prefect's thread shutdowns, 1-2.5 s of wall time and ~0.8 s of CPU
    at the end of every run (B8, issue 18). Every file the process writes is closed by then (its ``with``
    blocks have ended); a process that raised anything but ``SystemExit`` never gets here."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    if "prefect" in sys.modules:  # a command that never imported Prefect has nothing queued
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in ("APILogWorker", "EventsWorker"):  # "Still processing items: 1 items remaining..." while the
            logging.getLogger(worker).setLevel(logging.ERROR)  # drain sends the last ones: noise after the answer
        APILogWorker.drain_all()
        EventsWorker.drain_all()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))
