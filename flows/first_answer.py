"""The CLI's first answer: every check ``taskbuilder run`` can make before Prefect starts.

Run by :mod:`flows.cli` after the spec is read and the API URL checked, before any Prefect server is
started or contacted (and before the embedded sandbox starts), so a bad input costs what
``taskbuilder validate`` costs, not a Prefect start. The flow makes the same checks again, as it must for
deployments (``tasks/preflight.py``, ``tasks/inputs.py``). In order:

1. the output location can be written and spares the inputs (:mod:`taskbuilder.preflight`);
2. the dataset file exists, and passes :func:`taskbuilder.dataset_file.validate_dataset_file` with the spec;
3. with an API URL given (not the embedded sandbox) and no Secret block named: a token is set
   (``PROLIFIC_API_TOKEN``), and the API does not refuse it (one ``GET /api/v1/users/me/``, §7 of
   ``../shared/docs/prolific-api.md``, which the current doc does not change; an API that cannot be reached is left to the flow, which
   retries and reports it).

No Prefect import on this path for a local CSV (an ``s3://`` dataset is fetched with the flow's task
function, which imports Prefect).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

INPUT_ERRORS = "The input has errors; nothing was created on Prolific."


@dataclass(frozen=True)
class Refusal:
    """Why the run stops before Prefect starts: ``message`` (what, and what to do) and ``exit_code``
    (2: the input or the settings must change)."""

    message: str
    exit_code: int = 2


def first_answer(job, *, api_url: str | None, destination: str) -> Refusal | None:
    """Check ``job`` (an :class:`~taskbuilder.jobspec.AnnotationJob`) before Prefect starts; None when it may run.

    ``api_url``: the API root the run uses, None for the embedded sandbox (no token check then).
    ``destination``: the output folder or ``s3://`` prefix. Never raises for bad input: returns a :class:`Refusal`.
    """
    from taskbuilder.preflight import PreflightFailed, check_output_location, check_outputs_spare_inputs

    try:
        check_outputs_spare_inputs(destination, [job.dataset.csv])
        check_output_location(destination)
    except PreflightFailed as error:
        return Refusal(f"Refused, nothing was created: {error}")
    refusal = _input_refusal(job)
    if refusal is None and api_url and not job.token_secret_block:
        refusal = _token_refusal(api_url)
    return refusal


def _input_refusal(job) -> Refusal | None:
    from taskbuilder.csv_table import CsvReadError
    from taskbuilder.dataset_file import validate_dataset_file

    csv = job.dataset.csv
    with tempfile.TemporaryDirectory(prefix="taskbuilder-first-answer-") as scratch:
        if csv.startswith("s3://"):
            from tasks.inputs import InputInvalid, download_s3_csv

            try:
                path = download_s3_csv.fn(csv, Path(scratch))
            except InputInvalid as error:
                return Refusal(f"{INPUT_ERRORS}\n{error}")
        else:
            path = Path(csv)
            if not path.is_file():
                return Refusal(f"{INPUT_ERRORS}\ndataset.csv: {csv} does not exist or is not a file. "
                               "Fix the path in the job spec (relative to the spec file).")
        try:
            report = validate_dataset_file(path, job)
        except CsvReadError as error:
            return Refusal(f"{INPUT_ERRORS}\ndataset.csv: {error}. Fix the path in the job spec or the file's permissions.")
    if not report.ok:
        return Refusal(f"{INPUT_ERRORS}\n{report.format_text()}")
    return None


def _token_refusal(api_url: str) -> Refusal | None:
    from taskbuilder.client import ClientTimeouts, ProlificClient
    from taskbuilder.credentials import TOKEN_ENV, resolve_api_token
    from taskbuilder.errors import Forbidden, MissingCredentials, ProlificError, Unauthorized

    try:
        token = resolve_api_token()
    except MissingCredentials as error:
        return Refusal(f"{error} Nothing was created.")
    try:
        with ProlificClient(api_url, token, timeouts=ClientTimeouts()) as client:
            client.get_me()
    except (Unauthorized, Forbidden) as error:
        status = getattr(error, "status_code", "")
        return Refusal(f"The API at {api_url} refused the token ({status} {type(error).__name__}): set {TOKEN_ENV} to a "
                       "valid API token (Prolific: Settings → API tokens; a sandbox started with `taskbuilder sandbox` takes sandbox-token unless SANDBOX_API_TOKEN is set). "
                       "Nothing was created.")
    except ProlificError:
        return None  # cannot be reached or answered oddly: the flow retries and reports it
    return None
