"""The ``taskbuilder`` process work pool, set up so that each flow run is one process, not two.

Why. Without a ``command``, Prefect 3.9's process worker starts every flow run as a supervisor
(``python -m prefect.runner._workspace_supervisor``: it imports Prefect, reads the flow run and the
deployment, runs the pull steps), which then ``exec``s ``python -m prefect.engine``: that imports Prefect
again, reads the same flow run and deployment, runs the same pull steps, and runs the flow. Measured on the
two-worker PostgreSQL stack (B4, issue 18): a flow run's process used 4.8 s of CPU this way and 3.4 s with
the engine started directly. The supervisor prepares what this project does not use (``uv run`` when the
deployment's project has a lock file and uv, a workspace ``PYTHONPATH``); the engine alone runs the
deployment's ``set_working_directory`` pull step itself (``prefect.flows.load_flow_from_flow_run``).

What. The pool's base job template is Prefect's default for ``process`` with the ``command`` variable's
default set to ``<this interpreter> -m deployments.flow_run`` (Prefect's engine, in a session of its own as
the supervisor would start it: :mod:`deployments.flow_run`): the project's virtual environment, which lives in
the project folder that every worker machine already needs at the same path (the deployments' pull step).
A deployment or a run can still set ``command`` itself (``job_variables``). Run once per Prefect server,
from the project's environment::

    python -m deployments.work_pool            # creates the pool, or updates its command if it exists

Source: Prefect 3.9 ``prefect/workers/process.py`` (a configured ``command`` starts the engine directly),
``prefect/runner/_workspace_supervisor.py``; ``../shared/docs/prefect-notes.md``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

POOL_NAME = "taskbuilder"


FLOW_RUN_MODULE = "deployments.flow_run"
"""Prefect's engine in a session of its own (:mod:`deployments.flow_run`)."""
ENGINE_MODULES = (FLOW_RUN_MODULE, "prefect.engine")
"""The modules an engine command of this project runs (``prefect.engine``: an earlier set-up's)."""


def engine_command(python: str | None = None) -> str:
    """``"<python> -m deployments.flow_run"`` for ``python`` (default: this interpreter), quoted for the worker's
    ``shlex`` split."""
    from prefect.utilities.processutils import command_to_string

    return command_to_string([python or sys.executable, "-m", FLOW_RUN_MODULE])


def is_engine_command(command: str) -> bool:
    """Whether ``command`` is ``<some interpreter> -m <one of ENGINE_MODULES>`` (this project's, maybe from another
    path or an earlier set-up)."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return len(words) == 3 and words[1] == "-m" and words[2] in ENGINE_MODULES


def pool_template(python: str | None = None) -> dict[str, Any]:
    """Prefect's default base job template of a ``process`` pool, the ``command`` variable defaulting to
    :func:`engine_command` (JSON-shaped dict: ``job_configuration`` and ``variables``)."""
    from prefect.workers.process import ProcessWorker

    template = copy.deepcopy(ProcessWorker.get_default_base_job_template())
    template["variables"]["properties"]["command"]["default"] = engine_command(python)
    return template


def set_up_work_pool(name: str = POOL_NAME, python: str | None = None) -> str:
    """Create the process pool ``name`` with :func:`pool_template`, or set that ``command`` default in the
    template of the pool that exists (its other settings kept). A pool whose ``command`` default is a command
    of the user's own (not :func:`is_engine_command`) is left as it is. Uses the current
    ``PREFECT_API_URL``.

    Returns ``"created"``, ``"updated"``, ``"unchanged"`` or ``"kept"`` (the user's own command). Raises ``ValueError`` when a pool of that name
    exists with another type; Prefect's errors (``PrefectHTTPStatusError``, ``httpx.HTTPError``) propagate.
    Source: Prefect's ``POST /api/work_pools/``, ``PATCH /api/work_pools/{name}``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    command = engine_command(python)
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=pool_template(python)))
            return "created"
        if pool.type != "process":
            raise ValueError(f"work pool {name!r} exists with type {pool.type!r}; this project's deployments need a "
                             "'process' pool: delete it (prefect work-pool delete) or pick another name")
        template = copy.deepcopy(pool.base_job_template) or pool_template(python)
        variable = template.setdefault("variables", {}).setdefault("properties", {}).setdefault("command", {})
        current = variable.get("default")
        if current == command:
            return "unchanged"
        if current and not is_engine_command(current):
            return "kept"
        variable["default"] = command
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        return "updated"


def main(argv: list[str] | None = None) -> int:
    """``python -m deployments.work_pool [--name taskbuilder]``: one line saying what was done; 0. A pool of another
    type, or a Prefect server that does not answer or answers an error: one line on stderr saying so; 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=POOL_NAME, help=f"the pool's name (default {POOL_NAME}; the deployments use it)")
    args = parser.parse_args(argv)
    import httpx
    from prefect.settings import PREFECT_API_URL

    server = PREFECT_API_URL.value() or "Prefect's temporary local server (PREFECT_API_URL is not set)"
    try:
        outcome = set_up_work_pool(args.name)
    except ValueError as error:
        print(f"work pool {args.name!r} not set up: {error}", file=sys.stderr)
        return 1
    except httpx.HTTPError as error:
        answer = (f"answered {error.response.status_code}" if isinstance(error, httpx.HTTPStatusError)
                  else f"did not answer ({type(error).__name__}: {error})")
        print(f"work pool {args.name!r} not set up: the Prefect server at {server} {answer}; start it "
              "(prefect server start) or point PREFECT_API_URL at yours", file=sys.stderr)
        return 1
    if outcome == "kept":
        print(f"work pool {args.name!r} kept: its template's command is one of your own, not changed "
              f"(this project's is {engine_command()}; prefect work-pool inspect {args.name} shows yours)")
    else:
        print(f"work pool {args.name!r} {outcome}: each flow run starts as {engine_command()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
