"""The `taskbuilder` command: run, preview or validate a job, pause, resume, stop or add places to its study, start the sandbox, run the demo.

An entry point like a deployment: it sits on top of the flows. Without ``--api-url`` (and without
``PROLIFIC_API_URL``) ``run`` starts the local sandbox and runs the job there, so nothing real is
created and no money is spent. ``run`` answers bad input, a refused token and unusable outputs before
Prefect starts (:mod:`flows.first_answer`), then runs the flow on the Prefect API the environment names,
else on the local server that stays (:mod:`flows.local_server`; ``taskbuilder server status|stop``).

Exit codes: 0 done; 2 the input (CSV or job spec) has errors, or the job was refused (budget,
approval); 1 anything else failed (the message says what, and what to do).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli_support import load_spec as _load_spec, prefect_api as _prefect_api, refusals_without_traceback
from tasks.process_exit import exit_now

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
    study_deadline_minutes: Annotated[
        Optional[int],
        typer.Option(min=1, help="How long to wait for the study to finish, in minutes (default: the spec's "
                     "study_deadline_minutes, 10080 = 7 days); then the run stops waiting and says how to resume."),
    ] = None,
) -> None:
    """Run the job in JOB_FILE: validate, create dataset, batch and study, publish if allowed, collect."""
    overrides = {"interval_seconds": poll_seconds, "max_interval_seconds": poll_max_seconds,
                 "study_timeout_seconds": study_deadline_minutes * 60 if study_deadline_minutes else None}
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
    file: Annotated[
        Optional[Path],
        typer.Argument(help="The CSV, TSV or JSONL file; default: the spec's own dataset.csv (with --job).", exists=True, dir_okay=False),
    ] = None,
    job: Annotated[Optional[Path], typer.Option(help="The job spec, for its column and limit checks.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    delimiter: Annotated[
        Optional[str], typer.Option(help="Field separator when it is not the file's usual one: ',', ';' or 'tab'.")
    ] = None,
) -> None:
    """Check FILE (and the job spec) without touching the API. Exit 0 ok, 2 errors, 1 tool failure.

    With --job and no FILE, the file checked is the one the spec names (dataset.csv), the one `run`
    uploads; a FILE that is not that file is checked with a warning naming both. Every problem is
    reported in one pass: when the spec itself has errors, the file is still checked on its own
    (without the spec's column checks) and both lists are shown.
    """
    from taskbuilder.jobspec import SpecError
    from taskbuilder.dataset_file import validate_dataset_file

    if delimiter is not None and delimiter not in DELIMITERS:
        typer.echo(f"--delimiter must be one of {', '.join(repr(d) for d in DELIMITERS)}, not {delimiter!r}", err=True)
        raise typer.Exit(2)
    if file is None and job is None:
        typer.echo("Give the file to check, or --job JOB.yaml to check the file the spec names.", err=True)
        raise typer.Exit(2)
    spec_problems: list[dict] = []
    spec = None
    try:
        spec = _load_spec(job) if job else None
    except SpecError as error:
        spec_problems = [_spec_entry("spec_invalid", "error", p.path, p.message, p.hint) for p in error.problems]
        if not as_json:
            typer.echo(str(error))
    notes: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="taskbuilder-validate-") as scratch:
        file, notes = _file_to_validate(file, spec, Path(scratch))
        if file is None:  # nothing to check: the spec is invalid, or its file cannot be read
            _print_validate_result(None, spec_problems + notes, [], as_json, job)
            raise typer.Exit(2)
        try:
            report = validate_dataset_file(file, spec, delimiter_hint=delimiter)
        except Exception as error:  # the tool itself failed
            typer.echo(f"taskbuilder validate failed: {error}", err=True)
            raise typer.Exit(1)
    warnings = [_spec_entry("spec_warning", "warning", w.path, w.message, w.hint) for w in (spec.warnings() if spec else [])]
    ok = report.ok and not spec_problems and not any(n["severity"] == "error" for n in notes)
    _print_validate_result(report, spec_problems + notes, warnings, as_json, job, ok=ok)
    raise typer.Exit(0 if ok else 2)


def _spec_entry(code: str, severity: str, column: str, message: str, hint: str) -> dict:
    return {"code": code, "severity": severity, "record": None, "line": None, "column": column, "message": message, "hint": hint}


def _file_to_validate(file: Path | None, spec, scratch: Path) -> tuple[Path | None, list[dict]]:
    """The file `validate` checks, and notes about it: the spec's own dataset.csv when FILE is omitted
    (fetched when it is ``s3://``), else FILE with a warning when it is not the spec's file."""
    if spec is None:
        return file, []
    csv = spec.dataset.csv
    if file is not None:
        if csv.startswith("s3://") or not _same_file(file, Path(csv)):
            return file, [_spec_entry(
                "dataset_file_differs", "warning", "dataset.csv",
                f"{file} is not the spec's dataset.csv ({csv}): this checks {file}, but `run` uploads {csv}",
                "validate without FILE to check the spec's own file, or point dataset.csv at this file")]
        return file, []
    if not csv.startswith("s3://"):
        if Path(csv).is_file():
            return Path(csv), []
        return None, [_spec_entry("dataset_missing", "error", "dataset.csv", f"{csv} does not exist or is not a file",
                                  "fix dataset.csv in the job spec (a path relative to the spec file)")]
    from tasks.inputs import InputInvalid, download_s3_csv

    try:
        return download_s3_csv.fn(csv, scratch), []
    except InputInvalid as error:
        return None, [_spec_entry("dataset_missing", "error", "dataset.csv", str(error), "")]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _print_validate_result(report, problems: list[dict], warnings: list[dict], as_json: bool, job: Path | None, ok: bool = False) -> None:
    errors_first = [p for p in problems if p["severity"] == "error"] + [p for p in problems if p["severity"] != "error"]
    if as_json:
        body = report.to_dict() if report is not None else {"problems": []}
        body["ok"] = ok
        body["problems"] = errors_first + warnings + body["problems"]
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    for note in problems:
        if note["code"] != "spec_invalid":
            typer.echo(f"{note['severity']}: {job}: {note['column']}: {note['message']}" + (f" (hint: {note['hint']})" if note["hint"] else ""))
    for warning in warnings:
        typer.echo(f"warning: {job}: {warning['column']}: {warning['message']} (hint: {warning['hint']})")
    if report is None:
        return
    if any(p["code"] == "spec_invalid" for p in problems):
        typer.echo("The file, checked without the spec (fix the spec to get its column checks too):")
    typer.echo(report.format_text())


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


server_app = typer.Typer(no_args_is_help=True, help="The local Prefect server that `run` starts and reuses.")
app.add_typer(server_app, name="server")


@server_app.command("status")
def server_status() -> None:
    """Say whether the local Prefect server of PREFECT_HOME runs (its URL, pid, log). Exit 0 running, 3 not."""
    from flows.local_server import default_prefect_home, running_server

    home = default_prefect_home()
    server = running_server(home)
    if server is None:
        typer.echo(f"No local Prefect server runs for PREFECT_HOME {home}; `taskbuilder run` starts one.")
        raise typer.Exit(3)
    minutes = (time.time() - server.started_at) / 60
    typer.echo(f"Local Prefect server at {server.url.removesuffix('/api')} (API {server.url}), pid {server.pid}, "
               f"up {minutes:.0f} min, log {server.log}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server of PREFECT_HOME (its database stays). Exit 0 stopped or none ran."""
    from flows.local_server import default_prefect_home, stop_server

    home = default_prefect_home()
    server = stop_server(home)
    typer.echo(f"Stopped the local Prefect server at {server.url} (pid {server.pid})." if server
               else f"No local Prefect server runs for PREFECT_HOME {home}.")


def _run_job(
    job_file: Path, *, api_url: str | None, output_dir: str | None, embedded: bool = False, polling: dict | None = None
) -> int:
    from taskbuilder.jobspec import SpecError
    from taskbuilder.preflight import PreflightFailed, check_api_url

    try:
        job = _load_spec(job_file)
    except SpecError as error:
        typer.echo(str(error), err=True)
        return 2
    api_url = None if embedded else (api_url or os.environ.get("PROLIFIC_API_URL"))
    if api_url:
        try:
            check_api_url(api_url)
        except PreflightFailed as error:
            typer.echo(f"Refused, nothing was created: {error}", err=True)
            return 2
    from flows.first_answer import first_answer

    refused = first_answer(job, api_url=api_url, destination=output_dir or job.output_dir)
    if refused is not None:
        typer.echo(refused.message, err=True)
        return refused.exit_code
    if api_url:
        with _prefect_api(announce_always=False):
            return _run_flow(job, api_url, output_dir, sandboxed=False, polling=polling or {})
    from flows.embedded_sandbox import running_sandbox

    typer.echo("No --api-url or PROLIFIC_API_URL: running on the embedded local sandbox (no account, no money).")
    with _prefect_api(announce_always=embedded), running_sandbox() as sandbox_process:
        os.environ["PROLIFIC_API_TOKEN"] = sandbox_process.token
        os.environ.pop("PROLIFIC_WORKSPACE_ID", None)
        return _run_flow(job, sandbox_process.base_url, output_dir, sandboxed=True, polling=polling or {})


def _run_flow(job, api_url: str, output_dir: str | None, *, sandboxed: bool, polling: dict) -> int:
    from flows.annotation_batch import CostRefused, JobChanged, PublishRejected, annotation_batch
    from tasks.connection import ProlificConnection
    from tasks.batches import LegacyInstructionsRetired
    from tasks.inputs import InputInvalid
    from tasks.results import ReportNotParsed
    from taskbuilder.errors import ProlificError
    from taskbuilder.polling import PollSettings
    from taskbuilder.preflight import PreflightFailed

    connection = ProlificConnection(base_url=api_url, token_secret_block=job.token_secret_block)
    sandbox_polling = {"interval_seconds": 0.5, "max_interval_seconds": 2.0} if sandboxed else {}
    deadline = {"study_timeout_seconds": job.study_deadline_minutes * 60}
    polling = PollSettings(**{**sandbox_polling, **deadline, **polling})
    try:
        refusals = (JobChanged, InputInvalid, CostRefused, PublishRejected, PreflightFailed, LegacyInstructionsRetired)
        with _progress_bar(), refusals_without_traceback(refusals):
            summary = annotation_batch(job=job, connection=connection, polling=polling, output_dir=output_dir)
    except PreflightFailed as error:
        typer.echo(f"Refused, nothing was created: {error}", err=True)
        return 2
    except JobChanged as error:
        typer.echo(f"Refused: {error}", err=True)
        return 2
    except InputInvalid as error:
        typer.echo(f"The input has errors; nothing was created on Prolific.\n{error}", err=True)
        return 2
    except (CostRefused, PublishRejected, LegacyInstructionsRetired) as error:
        typer.echo(str(error), err=True)
        return 2
    except (ProlificError, ReportNotParsed) as error:
        typer.echo(f"The job failed: {error}", err=True)
        return 1
    typer.echo(f"Job {summary['job_key']}: study {summary['study_id']} is {summary['statuses']['study']}")
    for line in closing_lines(summary):
        typer.echo(f"  {line}")
    for name, location in summary["outputs"].items():
        typer.echo(f"  {name}: {location}")
    return 0


def closing_lines(summary: dict) -> list[str]:
    """What the run cost and paid, in the words of its summary (``run.json``): why it stopped early (``stopped``,
    first, when set), that it resumed a job published before (``resumed``), the study's checked cost (or the quote; round 1's in a job in rounds), every round's studies and their total, the spending read after the study (rewards, fees, tax,
    bonuses) and the bonus payment's state. Amounts are cents in the summary, shown in the study's currency."""
    from taskbuilder.cost import money

    cost = summary.get("cost") or {}
    checked, quote = cost.get("checked"), cost.get("quote") or {}
    currency = (checked or quote).get("currency_code", "")
    lines = [f"stopped: {summary['stopped']}"] if summary.get("stopped") else []
    if summary.get("resumed") and not summary.get("rounds"):
        lines.append("resumed: the job's study was published by an earlier run; this run created and published nothing")
    label = "cost of round 1" if summary.get("rounds") else "cost"
    if checked:
        lines.append(f"{label}: {money(checked['checked_cents'], currency)} (the study's own cost, checked before publishing)")
    elif quote.get("quote_cents") is not None:
        lines.append(f"{label}: {money(quote['quote_cents'], currency)} quoted by the account's calculator"
                     + ("" if summary.get("published") else "; nothing spent (not published)"))
    if summary.get("rounds"):
        studies = ", ".join(f"{r['kind']} {r['study_id']}" for r in summary["rounds"])
        lines.append(f"rounds: {len(summary['rounds'])} ({studies}); total {money(summary['total_cost_cents'], currency)}")
        if summary.get("below_target"):
            lines.append(f"below the target confidence: {len(summary['below_target'])} datapoint(s) (summary.json below_target)")
    payments = summary.get("payments") or {}
    spent = payments.get("spent")
    if spent and any(spent.get(k) for k in ("rewards_cents", "fees_cents", "tax_cents", "bonuses_cents")):
        unit = spent.get("currency") or currency
        lines.append("spent: " + ", ".join(f"{name} {money(spent[f'{name}_cents'] or 0, unit)}"
                                           for name in ("rewards", "fees", "tax", "bonuses")))
    bonus = payments.get("bonus")
    if bonus:  # one unit, the study's currency, as the other lines: the amount and what it costs with fees and VAT
        unit = bonus.get("currency") or (spent or {}).get("currency") or currency
        with_fees = f" ({money(bonus['total_amount_cents'], unit)} with fees and VAT)" if bonus.get("total_amount_cents") else ""
        lines.append(f"bonus: {bonus.get('participants', 0)} participant(s), {money(bonus.get('amount_cents') or 0, unit)}"
                     f"{with_fees}, {bonus.get('state')}")
    if payments.get("rejected_submissions"):
        lines.append(f"rejected: {len(payments['rejected_submissions'])} submission(s)")
    return lines


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


app.add_typer(__import__("flows.webhooks_cli", fromlist=["app"]).app, name="webhooks")  # taskbuilder webhooks subscribe
app.add_typer(__import__("flows.study_cli", fromlist=["app"]).app, name="study")  # taskbuilder study pause|resume|stop|add-places
app.add_typer(__import__("flows.pay_cli", fromlist=["app"]).app, name="pay")  # taskbuilder pay settle
app.command()(__import__("flows.preview_cli", fromlist=["preview"]).preview)  # taskbuilder preview JOB.yaml


def main() -> None:
    """Console entry point (``taskbuilder``): runs the command, then ends the process at once with its exit
    code (:func:`tasks.process_exit.exit_now`: Prefect's logs and events sent first, no interpreter teardown)."""
    try:
        app()
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


if __name__ == "__main__":
    main()
