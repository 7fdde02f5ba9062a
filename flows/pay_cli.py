"""``taskbuilder pay settle JOB.yaml``: record a bonus payment whose outcome the job could not tell as settled.

A run stops with "Check study …'s bonuses in Prolific's app" when a pay call's outcome stays unclear
(:class:`tasks.payments.PayEvidenceUnclear`): the job then never sends that pay call again, and every re-run stops
at the same place until someone has checked. After checking (and paying it in the app if it was not paid),
``settle`` records the payment as paid, settled by hand (:func:`tasks.payments.settle_bonus_payment`), and the next
run goes on past the pay step. It sends nothing to Prolific. The job is the one of JOB.yaml (its ``name``, else the
key derived from the spec and its dataset file; ``--job-key`` names it otherwise) on ``--api-url`` (else
``PROLIFIC_API_URL``); the job record is on ``PREFECT_API_URL``, else the local server ``run`` keeps.

Exit codes: 0 settled, 2 nothing to settle (no record, no payment, or one not waiting on a check), 1 another failure.
"""

from __future__ import annotations

import typer

from flows.cli_support import job_on_api
from flows.study_cli import ApiUrl, JobFile, JobKey, _job_records_server

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Settle a job's bonus payment after checking it by hand.")


@app.command()
def settle(job_file: JobFile, api_url: ApiUrl = None, job_key: JobKey = None) -> None:
    """Record the job's bonus payment as paid, once you checked it in Prolific's app.

    Use it after a run stopped saying "Check study ...'s bonuses in Prolific's app" (pay it there first if it was
    not paid). The job never sends its pay call again; its next run goes on. Sends nothing to Prolific."""
    target = job_on_api(job_file, api_url, job_key)
    if isinstance(target, str):
        typer.echo(target, err=True)
        raise typer.Exit(2)
    _, base_url, job_key = target
    from tasks.pay_lock import PayLockUnavailable
    from tasks.payments import NothingToSettle, settle_bonus_payment

    try:
        with _job_records_server():
            message = settle_bonus_payment(job_key, base_url)
    except NothingToSettle as error:
        typer.echo(f"Nothing settled: {error}", err=True)
        raise typer.Exit(2)
    except PayLockUnavailable as error:
        typer.echo(f"Nothing settled: {error}", err=True)
        raise typer.Exit(1)
    typer.echo(message)
