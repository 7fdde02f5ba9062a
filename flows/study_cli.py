"""``taskbuilder study pause|resume|stop|add-places N JOB.yaml``: a hand on a job's running study.

Each command runs the matching small flow of :mod:`flows.study_control` (so it shows in the Prefect UI) and acts
once: a repeated command says "already paused" (etc.) and does nothing. The job is the one of JOB.yaml: its
``name``, else the key derived from the spec and the dataset file (as ``run`` derives it for a file uploaded as
it is; ``--job-key`` names it otherwise). The API root: ``--api-url``, else ``PROLIFIC_API_URL`` (a study lives on
a lasting API: Prolific, or a sandbox started with ``taskbuilder sandbox``); the token: ``PROLIFIC_API_TOKEN`` or
the spec's Secret block. The Prefect server: ``PREFECT_API_URL``, else the local server ``run`` keeps, when it
runs (where the job record is).

Exit codes: 0 done (or nothing to do), 2 refused (the study's status does not allow it, over budget, no study),
1 another failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Pause, resume, stop a job's study, or add places.")

JobFile = Annotated[Path, typer.Argument(help="The job spec (YAML) of the job.", exists=True, dir_okay=False)]
ApiUrl = Annotated[Optional[str], typer.Option(help="API root without /api/v1 (default: PROLIFIC_API_URL).")]
JobKey = Annotated[Optional[str], typer.Option(help="The job key, when the spec has no name and the file was rewritten for upload.")]


@app.command()
def pause(job_file: JobFile, api_url: ApiUrl = None, job_key: JobKey = None) -> None:
    """Pause the job's ACTIVE study (PAUSE); nothing when it is paused already."""
    raise typer.Exit(_control("pause", job_file, api_url, job_key))


@app.command()
def resume(job_file: JobFile, api_url: ApiUrl = None, job_key: JobKey = None) -> None:
    """Resume the job's PAUSED study (START); nothing when it is active already."""
    raise typer.Exit(_control("resume", job_file, api_url, job_key))


@app.command()
def stop(job_file: JobFile, api_url: ApiUrl = None, job_key: JobKey = None) -> None:
    """Stop the job's study (STOP): no new participants; a waiting run collects what came in."""
    raise typer.Exit(_control("stop", job_file, api_url, job_key))


@app.command("add-places")
def add_places(
    places: Annotated[int, typer.Argument(help="How many places to add.", min=1)],
    job_file: JobFile, api_url: ApiUrl = None, job_key: JobKey = None,
    again: Annotated[bool, typer.Option(help="Add them even though the same number was the last addition.")] = False,
) -> None:
    """Add PLACES places to the job's ACTIVE or PAUSED study, priced and checked against the spec's max_budget."""
    raise typer.Exit(_control("add-places", job_file, api_url, job_key, places=places, again=again))


def _control(command: str, job_file: Path, api_url: str | None, job_key: str | None, **extra) -> int:
    from flows.cli_support import job_on_api
    from taskbuilder.errors import ProlificError
    from taskbuilder.jobkey import tag_name

    target = job_on_api(job_file, api_url, job_key, needs_token=True)
    if isinstance(target, str):
        typer.echo(target, err=True)
        return 2
    job, base_url, job_key = target
    internal_name = tag_name(job.study.internal_name or job.study.name, job_key)
    from flows import study_control
    from flows.cli_support import refusals_without_traceback

    flows = {"pause": study_control.pause_study, "resume": study_control.resume_study, "stop": study_control.stop_study}
    try:
        with _job_records_server(), refusals_without_traceback((study_control.StudyControlRefused,)):
            if command == "add-places":
                outcome = study_control.add_study_places(job_key, base_url, extra["places"], extra["again"], internal_name,
                                                         job.max_budget)
            else:
                outcome = flows[command](job_key, base_url, internal_name)
    except study_control.StudyControlRefused as error:
        typer.echo(f"Refused: {error}", err=True)
        return 2
    except ProlificError as error:
        typer.echo(f"The command failed: {error}", err=True)
        return 1
    typer.echo(outcome["message"])
    return 0


@contextmanager
def _job_records_server() -> Iterator[None]:
    """Use ``PREFECT_API_URL`` (environment or profile) when set, else the local Prefect server ``run`` keeps,
    when one runs (it holds the job records); else Prefect's temporary server (the study is then found on the
    API by its name)."""
    from flows.local_server import default_prefect_home, local_server_wanted, running_server

    server = None if os.environ.get("PREFECT_API_URL") or not local_server_wanted() else running_server(default_prefect_home())
    if server is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings({PREFECT_API_URL: server.url}):
        yield
