"""What the ``taskbuilder`` commands share (:mod:`flows.cli`, :mod:`flows.preview_cli`): the Prefect API a
command's flow runs on, and the one spec loader. Heavy imports stay inside the functions (CLI start-up)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer


@contextmanager
def prefect_api(*, announce_always: bool) -> Iterator[None]:
    """Run the flow against the Prefect API to use: an explicit one (``PREFECT_API_URL`` in the environment
    or the profile, a test harness) wins; else the local server that stays (:mod:`flows.local_server`),
    started when none runs, unless ``TASKBUILDER_LOCAL_SERVER=0`` (Prefect's temporary server then).
    Says so when it starts the server (always, with ``announce_always``), and how to stop it."""
    from flows.local_server import LocalServerError, ensure_server, local_server_wanted

    if not local_server_wanted() or os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    settings = get_current_settings()
    if settings.api.url:
        yield
        return
    try:
        server, started = ensure_server(Path(settings.home))
    except LocalServerError as error:
        typer.echo(f"Could not start the local Prefect server: {error}", err=True)
        raise typer.Exit(1)
    ui = server.url.removesuffix("/api")
    if started:
        typer.echo(f"Started a local Prefect server at {ui} (PREFECT_HOME {settings.home}); it keeps running for "
                   f"the next runs: `{_stop_command()}` stops it.")
    with temporary_settings({PREFECT_API_URL: server.url}):
        yield
    if announce_always and not started:
        typer.echo(f"The local Prefect server at {ui} keeps running: `{_stop_command()}` stops it.")


def _stop_command() -> str:
    """``taskbuilder server stop`` as this process was started: by its bare name when that is on PATH, else by the
    path it was run as (``.venv/bin/taskbuilder`` from ``make demo``)."""
    import shutil
    import sys

    invoked = Path(sys.argv[0])
    on_path = shutil.which("taskbuilder")
    if invoked.name != "taskbuilder" or (on_path and Path(on_path).resolve() == invoked.resolve()):
        return "taskbuilder server stop"
    return f"{sys.argv[0]} server stop"


def load_spec(path: Path):
    """The job spec in `path`, read by the one spec loader every entry point uses. Raises ``SpecError``."""
    from taskbuilder.jobspec import AnnotationJob

    return AnnotationJob.from_yaml(path)


class _DropTraceback(logging.Filter):
    """On a console handler: log an expected refusal (one of ``kinds``) as its one line, without the
    traceback Prefect attaches when a flow run raises; the CLI then prints what to do."""

    def __init__(self, kinds: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.kinds):
            record.exc_info, record.exc_text = None, None
        return True


@contextmanager
def refusals_without_traceback(kinds: tuple[type[BaseException], ...]) -> Iterator[None]:
    """While running the flow, Prefect's console handlers print refusals (budget, approval, a changed re-run,
    bad input) without a traceback. Other exceptions keep theirs."""
    handlers = {h for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "")
                for h in logging.getLogger(name).handlers if isinstance(h, logging.StreamHandler)}
    quiet = _DropTraceback(kinds)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def spec_job_key(job, given: str | None) -> str | None:
    """The job key of a command about a job that ran: ``given`` (``--job-key``), else the spec's ``name``, else the
    key derived from the spec and its dataset file (as ``run`` derives it for a file uploaded as it is); ``None``
    when it cannot be derived here (no name, and the dataset file is in S3 or not on this machine)."""
    if given is not None:
        return given
    if job.name:
        return job.name
    if job.dataset.csv.startswith("s3://") or not Path(job.dataset.csv).is_file():
        return None
    from taskbuilder.jobkey import sha256_file

    return job.job_key(sha256_file(Path(job.dataset.csv)))


def job_on_api(job_file: Path, api_url: str | None, job_key: str | None, *, needs_token: bool = False):
    """``(job, API root, job key)`` of a command about a job that ran (``taskbuilder study …``, ``pay settle``), or
    the line to print (exit 2) when one is missing: the spec (its ``SpecError``), the API root (``--api-url``, else
    ``PROLIFIC_API_URL``), with ``needs_token`` the token (checked before Prefect starts, as ``run`` does; a spec
    naming a Secret block has its own), the job key (:func:`spec_job_key`)."""
    from taskbuilder.jobspec import SpecError

    try:
        job = load_spec(job_file)
    except SpecError as error:
        return str(error)
    base_url = api_url or os.environ.get("PROLIFIC_API_URL")
    if not base_url:
        return "No API root: give --api-url or set PROLIFIC_API_URL (the API the job ran on)."
    if needs_token and not job.token_secret_block:
        from taskbuilder.credentials import MissingCredentials, resolve_api_token

        try:
            resolve_api_token()
        except MissingCredentials as error:
            return str(error)
    job_key = spec_job_key(job, job_key)
    if job_key is None:
        return "The spec has no name and its dataset file is not here: give --job-key."
    return job, base_url, job_key
