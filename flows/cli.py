"""The ``taskbuilder`` command: run a job, validate input, start the sandbox, run the demo.

An entry point like a deployment: it sits on top of the flows. Without ``--api-url`` (and without
``PROLIFIC_API_URL``) ``run`` starts the local sandbox and runs the job there, so nothing real is
created and no money is spent.

Exit codes: 0 done; 2 the input (CSV or job spec) has errors, or the job was refused (budget,
approval); 1 anything else failed (the message says what, and what to do).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

# Settings for the Prefect run this process starts (ephemeral server unless PREFECT_API_URL is set).
for _name, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}.items():
    os.environ.setdefault(_name, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
DELIMITERS = (",", ";", "tab", "\t")
EXAMPLE_JOB = Path(__file__).resolve().parent.parent / "examples" / "review-sentiment" / "job.yaml"


@app.command()
def run(
    job_file: Annotated[Path, typer.Argument(help="The job spec (YAML).", exists=True, dir_okay=False)],
    api_url: Annotated[
        Optional[str], typer.Option(help="API root without /api/v1 (default: PROLIFIC_API_URL, else the embedded sandbox).")
    ] = None,
    output_dir: Annotated[Optional[str], typer.Option(help="Output folder or s3://bucket/prefix (default: the spec's).")] = None,
    poll_seconds: Annotated[
        Optional[float], typer.Option(help="First status-poll interval in seconds (default 2; 0.5 on the sandbox).")
    ] = None,
    poll_max_seconds: Annotated[
        Optional[float], typer.Option(help="Longest status-poll interval in seconds (default 30; 2 on the sandbox).")
    ] = None,
) -> None:
    """Run the job in JOB_FILE: validate, create dataset, batch and study, publish if allowed, collect."""
    overrides = {"interval_seconds": poll_seconds, "max_interval_seconds": poll_max_seconds}
    polling = {name: value for name, value in overrides.items() if value is not None}
    raise typer.Exit(_run_job(job_file, api_url=api_url, output_dir=output_dir, polling=polling))


@app.command()
def demo(
    output_dir: Annotated[str, typer.Option(help="Where the outputs go.")] = "out/demo",
) -> None:
    """Run the example job (examples/review-sentiment) on the embedded sandbox, publish included."""
    raise typer.Exit(_run_job(EXAMPLE_JOB, api_url=None, output_dir=str(Path(output_dir).resolve()), embedded=True))


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="The CSV, TSV or JSONL file.", exists=True, dir_okay=False)],
    job: Annotated[Optional[Path], typer.Option(help="The job spec, for its column and limit checks.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    delimiter: Annotated[
        Optional[str], typer.Option(help="Field separator when it is not the file's usual one: ',', ';' or 'tab'.")
    ] = None,
) -> None:
    """Check FILE (and the job spec) without touching the API. Exit 0 ok, 2 errors, 1 tool failure.

    Every problem is reported in one pass: when the spec itself has errors, the file is still checked
    on its own (without the spec's column checks) and both lists are shown.
    """
    from taskbuilder.jobspec import AnnotationJob, SpecError
    from taskbuilder.jsonl import is_jsonl, validate_jsonl
    from taskbuilder.validation import validate_csv

    if delimiter is not None and delimiter not in DELIMITERS:
        typer.echo(f"--delimiter must be one of {', '.join(repr(d) for d in DELIMITERS)}, not {delimiter!r}", err=True)
        raise typer.Exit(2)
    spec_problems: list[dict] = []
    spec = None
    try:
        spec = AnnotationJob.from_yaml(job) if job else None
    except SpecError as error:
        spec_problems = [
            {"code": "spec_invalid", "severity": "error", "record": None, "line": None, "column": p.path,
             "message": p.message, "hint": p.hint}
            for p in error.problems
        ]
        if not as_json:
            typer.echo(str(error))
    try:
        report = validate_jsonl(file, spec) if is_jsonl(file) else validate_csv(file, spec, delimiter_hint=delimiter)
    except Exception as error:  # the tool itself failed
        typer.echo(f"taskbuilder validate failed: {error}", err=True)
        raise typer.Exit(1)
    warnings = spec.warnings() if spec else []
    ok = report.ok and not spec_problems
    if as_json:
        body = report.to_dict()
        body["ok"] = ok
        body["problems"] = spec_problems + [
            {"code": "spec_warning", "severity": "warning", "record": None, "line": None, "column": w.path,
             "message": w.message, "hint": w.hint}
            for w in warnings
        ] + body["problems"]
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        for warning in warnings:
            typer.echo(f"warning: {warning.format(str(job))}")
        if spec_problems:
            typer.echo("The file, checked without the spec (fix the spec to get its column checks too):")
        typer.echo(report.format_text())
    raise typer.Exit(0 if ok else 2)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind (loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8765,
    state: Annotated[Optional[Path], typer.Option(help="SQLite file that keeps state across restarts.")] = None,
    settings: Annotated[Optional[Path], typer.Option(help="Sandbox settings (JSON).")] = None,
) -> None:
    """Start the local Prolific sandbox in the foreground (token: SANDBOX_API_TOKEN or sandbox-token)."""
    command = [sys.executable, "-m", "sandbox", "--host", host, "--port", str(port)]
    if state:
        command += ["--state", str(state)]
    if settings:
        command += ["--settings", str(settings)]
    os.execv(sys.executable, command)


def _run_job(
    job_file: Path, *, api_url: str | None, output_dir: str | None, embedded: bool = False, polling: dict | None = None
) -> int:
    from taskbuilder.jobspec import AnnotationJob, SpecError

    try:
        job = AnnotationJob.from_yaml(job_file)
    except SpecError as error:
        typer.echo(str(error), err=True)
        return 2
    api_url = None if embedded else (api_url or os.environ.get("PROLIFIC_API_URL"))
    if api_url:
        return _run_flow(job, api_url, output_dir, sandboxed=False, polling=polling or {})
    from flows.embedded_sandbox import running_sandbox

    typer.echo("No --api-url or PROLIFIC_API_URL: running on the embedded local sandbox (no account, no money).")
    with running_sandbox() as sandbox_process:
        os.environ["PROLIFIC_API_TOKEN"] = sandbox_process.token
        os.environ.pop("PROLIFIC_WORKSPACE_ID", None)
        return _run_flow(job, sandbox_process.base_url, output_dir, sandboxed=True, polling=polling or {})


def _run_flow(job, api_url: str, output_dir: str | None, *, sandboxed: bool, polling: dict) -> int:
    from flows.annotation_batch import CostRefused, JobChanged, PublishRejected, annotation_batch
    from tasks.connection import ProlificConnection
    from tasks.batches import LegacyInstructionsRetired
    from tasks.inputs import InputInvalid
    from taskbuilder.errors import ProlificError
    from taskbuilder.polling import PollSettings

    connection = ProlificConnection(base_url=api_url, token_secret_block=job.token_secret_block)
    sandbox_polling = {"interval_seconds": 0.5, "max_interval_seconds": 2.0} if sandboxed else {}
    polling = PollSettings(**{**sandbox_polling, **polling})
    try:
        with _progress_bar(), _refusals_without_traceback((JobChanged, InputInvalid, CostRefused, PublishRejected, LegacyInstructionsRetired)):
            summary = annotation_batch(job=job, connection=connection, polling=polling, output_dir=output_dir)
    except JobChanged as error:
        typer.echo(f"Refused: {error}", err=True)
        return 2
    except InputInvalid as error:
        typer.echo(f"The input has errors; nothing was created on Prolific.\n{error}", err=True)
        return 2
    except (CostRefused, PublishRejected, LegacyInstructionsRetired) as error:
        typer.echo(str(error), err=True)
        return 2
    except ProlificError as error:
        typer.echo(f"The job failed: {error}", err=True)
        return 1
    typer.echo(f"Job {summary['job_key']}: study {summary['study_id']} is {summary['statuses']['study']}")
    for name, location in summary["outputs"].items():
        typer.echo(f"  {name}: {location}")
    return 0


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
def _refusals_without_traceback(kinds: tuple[type[BaseException], ...]) -> Iterator[None]:
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


@contextmanager
def _progress_bar() -> Iterator[None]:
    """Show a rich progress bar on stderr for each long wait of the run (fed by :mod:`tasks.progress`)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from tasks.progress import listening

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    bars: dict[str, int] = {}

    def update(key: str, percent: float, description: str) -> None:
        if not bars:
            progress.start()
        if key not in bars:
            bars[key] = progress.add_task(description, total=100)
        progress.update(bars[key], completed=percent, description=description)

    try:
        with listening(update):
            yield
    finally:
        if bars:
            progress.stop()


def main() -> None:
    """Console entry point (``taskbuilder``)."""
    app()


if __name__ == "__main__":
    main()
