"""``taskbuilder preview JOB.yaml``: make the job's draft and a test study, print the URL to take the task.

Registered on the ``taskbuilder`` command by one line in :mod:`flows.cli`. Nothing is published or paid
(:mod:`flows.preview`). Without ``--api-url`` (and ``PROLIFIC_API_URL``) the draft is made on the embedded
sandbox, which serves the task page only while it runs: the command then keeps it running until Enter or
Ctrl-C (``--no-hold`` ends at once). Exit codes as ``run``: 0 done, 2 input or job refused, 1 other failures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer


def preview(
    job_file: Annotated[Path, typer.Argument(help="The job spec (YAML).", exists=True, dir_okay=False)],
    api_url: Annotated[
        Optional[str], typer.Option(help="API root without /api/v1 (default: PROLIFIC_API_URL, else the embedded sandbox).")
    ] = None,
    output_dir: Annotated[Optional[str], typer.Option(help="Output folder or s3://bucket/prefix (default: the spec's).")] = None,
    hold: Annotated[bool, typer.Option(help="On the embedded sandbox, keep it serving the page until Enter.")] = True,
) -> None:
    """Create the job's draft (dataset, batch, study; not published) and a test study; print its URL."""
    from flows.cli_support import load_spec, prefect_api
    from taskbuilder.jobspec import SpecError
    from taskbuilder.preflight import PreflightFailed, check_api_url

    try:
        job = load_spec(job_file)
    except SpecError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2)
    api_url = api_url or os.environ.get("PROLIFIC_API_URL")
    if api_url:
        try:
            check_api_url(api_url)
        except PreflightFailed as error:
            typer.echo(f"Refused, nothing was created: {error}", err=True)
            raise typer.Exit(2)
        with prefect_api(announce_always=False):
            raise typer.Exit(_preview(job, api_url, output_dir, sandboxed=False))
    from flows.embedded_sandbox import running_sandbox

    typer.echo("No --api-url or PROLIFIC_API_URL: the draft is made on the embedded local sandbox (no account, no money).")
    with prefect_api(announce_always=False), running_sandbox() as sandbox_process:
        os.environ["PROLIFIC_API_TOKEN"] = sandbox_process.token
        os.environ.pop("PROLIFIC_WORKSPACE_ID", None)
        code = _preview(job, sandbox_process.base_url, output_dir, sandboxed=True)
        if code == 0 and hold:
            typer.prompt("The page is served while the sandbox runs; press Enter to stop it", default="", show_default=False)
    raise typer.Exit(code)


def _preview(job, api_url: str, output_dir: str | None, *, sandboxed: bool) -> int:
    from flows.preview import PreviewRefused, preview_job
    from taskbuilder.cost import CostRefused
    from taskbuilder.errors import ProlificError
    from taskbuilder.polling import PollSettings
    from tasks.connection import ProlificConnection
    from tasks.inputs import InputInvalid
    from tasks.job_tags import JobChanged

    connection = ProlificConnection(base_url=api_url, token_secret_block=job.token_secret_block)
    polling = PollSettings(**({"interval_seconds": 0.5, "max_interval_seconds": 2.0} if sandboxed else {}))
    try:
        summary = preview_job(job=job, connection=connection, polling=polling, output_dir=output_dir)
    except JobChanged as error:
        typer.echo(f"Refused: {error}", err=True)
        return 2
    except InputInvalid as error:
        typer.echo(f"The input has errors; nothing was created on Prolific.\n{error}", err=True)
        return 2
    except (CostRefused, PreviewRefused) as error:
        typer.echo(str(error), err=True)
        return 2
    except ProlificError as error:
        typer.echo(f"The preview failed: {error}", err=True)
        return 1
    test = summary["test_study"]
    typer.echo(f"Job {summary['job_key']}: draft study {summary['study_id']} (not published, nothing paid)")
    typer.echo(f"Take the task as a participant would: {test['study_url']}")
    return 0
