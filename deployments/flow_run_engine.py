"""Prefect's engine run in this process, in a session of its own, ended as the CLI ends.

Used by a flow run's process (:mod:`deployments.flow_run`) when it runs its engine itself, and by a child forked
from a worker's preloader (:mod:`deployments.flow_run_preload`) for the run it serves.

Source: Prefect 3.9 ``prefect/engine.py`` (``__main__``: the flow run id from ``PREFECT__FLOW_RUN_ID`` or the
first argument), ``prefect/runner/_starter_engine.py`` (``start_new_session`` for the supervisor only).
"""

from __future__ import annotations

import os
import runpy

ENGINE_MODULE = "prefect.engine"


def leave_session() -> None:
    """Start a session of this process's own (where the platform has sessions; nothing when it leads one)."""
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except PermissionError:  # already a session leader: nothing to leave
            pass


def run_engine() -> None:
    """Run :data:`ENGINE_MODULE` as ``__main__`` in a session of this process's own, then end with the engine's
    exit code (0 when it returned, its ``SystemExit`` code otherwise) through :func:`tasks.process_exit.exit_now`.
    Any other exception (``KeyboardInterrupt``, ...) propagates as it would from ``python -m prefect.engine``."""
    leave_session()
    try:
        runpy.run_module(ENGINE_MODULE, run_name="__main__", alter_sys=True)
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    from tasks.process_exit import exit_now

    exit_now(code)
