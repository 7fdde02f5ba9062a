"""The run logger, or a plain logger when a task's function is called outside a Prefect run."""

from __future__ import annotations

import logging


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow/task run; ``logging.getLogger("taskbuilder")`` elsewhere."""
    try:
        from prefect.logging import get_run_logger

        return get_run_logger()
    except Exception:  # MissingContextError outside a run
        return logging.getLogger("taskbuilder")
