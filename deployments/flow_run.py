"""The process of one flow run of the ``taskbuilder`` pool: Prefect's engine, in a session of its own.

``python -m deployments.flow_run`` is the pool's ``command`` (:mod:`deployments.work_pool`). It does what
Prefect 3.9's workspace supervisor does before its engine starts, and nothing else: it leaves the worker's
session and process group (``os.setsid``), so a Ctrl-C in the worker's terminal, or a signal sent to the
worker's whole group, does not reach the flow runs the worker carries (the worker decides what happens to
them; cancelling a run still signals its process by its id). Then it runs ``prefect.engine`` as
``python -m prefect.engine`` would, in this process: same id, same arguments, same environment. When the
engine is done (the run's final state set), the process ends as the CLI does
(:func:`tasks.process_exit.exit_now`: Prefect's queued logs and events sent, then ``os._exit`` with the
engine's exit code), skipping the interpreter's teardown (~0.8 s of CPU per run, issue 18). A flow run
started by a worker runs its engine in a child forked from the worker's preloader, which has Prefect and the
flows imported already (:mod:`deployments.flow_run_preload`; ~2 s of CPU saved per run), when one serves it.

Source: Prefect 3.9 ``prefect/runner/_starter_engine.py`` (``start_new_session`` for the supervisor only),
``prefect/engine.py`` (``__main__``: the flow run id from ``PREFECT__FLOW_RUN_ID`` or the first argument).
"""

from __future__ import annotations

from deployments.flow_run_engine import ENGINE_MODULE, leave_session, run_engine

__all__ = ["ENGINE_MODULE", "main"]


def main() -> None:
    """Leave the worker's session (where the platform has sessions); run the engine in a child of the worker's
    preloader when one serves this run (:func:`deployments.preload_client.run_through_preloader`: this process
    then ends as that child did), else here (:func:`deployments.flow_run_engine.run_engine`)."""
    leave_session()
    from deployments.preload_client import run_through_preloader

    run_through_preloader()
    run_engine()


if __name__ == "__main__":
    main()
