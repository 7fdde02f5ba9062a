"""The process of one flow run of the ``taskbuilder`` pool: Prefect's engine, in a session of its own.

``python -m deployments.flow_run`` is the pool's ``command`` (:mod:`deployments.work_pool`). It does what
Prefect 3.9's workspace supervisor does before its engine starts, and nothing else: it leaves the worker's
session and process group (``os.setsid``), so a Ctrl-C in the worker's terminal, or a signal sent to the
worker's whole group, does not reach the flow runs the worker carries (the worker decides what happens to
them; cancelling a run still signals its process by its id). Then it runs ``prefect.engine`` as
``python -m prefect.engine`` would, in this process: same id, same arguments, same environment. When the
engine is done (the run's final state set), the process ends as the CLI does
(:func:`tasks.process_exit.exit_now`: Prefect's queued logs and events sent, then ``os._exit`` with the
engine's exit code), skipping the interpreter's teardown (~0.8 s of CPU per run, issue 18).

Source: Prefect 3.9 ``prefect/runner/_starter_engine.py`` (``start_new_session`` for the supervisor only),
``prefect/engine.py`` (``__main__``: the flow run id from ``PREFECT__FLOW_RUN_ID`` or the first argument).
"""

from __future__ import annotations

import os
import runpy

ENGINE_MODULE = "prefect.engine"


def main() -> None:
    """Leave the worker's session (where the platform has sessions), run :data:`ENGINE_MODULE` as ``__main__``,
    then end with the engine's exit code (0 when it returned, its ``SystemExit`` code otherwise) through
    :func:`tasks.process_exit.exit_now`. Any other exception (``KeyboardInterrupt``, ...) propagates as it would
    from ``python -m prefect.engine``."""
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except PermissionError:  # already a session leader: nothing to leave
            pass
    try:
        runpy.run_module(ENGINE_MODULE, run_name="__main__", alter_sys=True)
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    from tasks.process_exit import exit_now

    exit_now(code)


if __name__ == "__main__":
    main()
