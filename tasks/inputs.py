"""The user's input: fetch an ``s3://`` CSV (the ``stage-csv`` task, retried on S3 trouble), validate it and
prepare the upload file (plain functions: no API call, nothing to retry, and a task run costs the Prefect server
~30-60 ms of CPU and several requests and events; issue 18, NOTES.md "Lean runs").

Nothing here calls the Prolific API: the flow runs these first, so bad input fails before anything
is created remotely.
"""

from __future__ import annotations

from pathlib import Path

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from taskbuilder.csv_table import CsvReadError
from taskbuilder.errors import BadInput
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.upload_preparation import prepare_upload
from taskbuilder.dataset_file import validate_dataset_file
from taskbuilder.jsonl import is_jsonl
from taskbuilder.validation import ValidationReport

from tasks.logs import run_logger


class InputInvalid(BadInput):
    """The CSV or the job spec has errors; the message lists every one (file, record, column, fix)."""


def _retry_s3_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry an S3 read only on connection trouble or a 5xx, never on credentials or a missing key."""
    from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    try:
        state.result()
    except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError):
        return True
    except ClientError as error:
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    except BaseException:  # noqa: BLE001 - anything else is not worth a retry
        return False
    return True


def stage_csv(csv: str, work_dir: Path) -> Path:
    """Return a local path for the job's CSV: the path itself (a plain check, no task run), or an
    ``s3://bucket/key`` downloaded by the ``stage-csv`` task (:func:`download_s3_csv`, retried on S3 trouble).

    Raises :class:`InputInvalid` naming ``dataset.csv`` when the file is missing or S3 refuses.
    """
    if csv.startswith("s3://"):
        return download_s3_csv(csv, work_dir)
    path = Path(csv)
    if not path.is_file():
        raise InputInvalid(f"dataset.csv: {path.resolve()} does not exist or is not a file (written {csv!r}). Fix the "
                           "path in the job spec: relative to the spec file, or in a form launch to the form's base "
                           "folder (TASKBUILDER_FORM_BASE_DIR, else the worker's working directory).")
    return path


@task(name="stage-csv", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_retry_s3_transient, cache_policy=NO_CACHE)
def download_s3_csv(csv: str, work_dir: Path) -> Path:
    """Download the ``s3://bucket/key`` CSV ``csv`` into ``work_dir`` (streamed to disk) and return its path.

    S3 reads use boto3's default credential chain and ``AWS_ENDPOINT_URL``. Raises :class:`InputInvalid` naming
    ``dataset.csv`` when S3 refuses (no credentials, no such key, access denied); connection errors and 5xx are
    retried.
    """
    import boto3  # only for an s3:// CSV: a local run never pays its import (~0.15 s)
    from botocore.exceptions import ClientError, NoCredentialsError

    bucket, _, key = csv[len("s3://"):].partition("/")
    target = work_dir / Path(key).name
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        boto3.client("s3").download_file(bucket, key, str(target))
    except NoCredentialsError:
        raise InputInvalid(
            f"dataset.csv: {csv}: no AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
            "AWS_PROFILE), and AWS_ENDPOINT_URL for an S3-compatible store that is not AWS."
        ) from None
    except ClientError as error:
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status >= 500:
            raise
        code = error.response.get("Error", {}).get("Code", status)
        raise InputInvalid(f"dataset.csv: {csv}: S3 refused the download ({code}). Check the bucket, the key and your access.") from None
    run_logger().info("Fetched %s (%d bytes)", csv, target.stat().st_size)
    return target


def validate_input(csv_path: Path, job: AnnotationJob) -> ValidationReport:
    """Run every CSV and spec check (:func:`taskbuilder.dataset_file.validate_dataset_file`: CSV, TSV or JSONL) and publish the report.

    The report goes to a Prefect markdown artifact (key ``validation-report``). Raises
    :class:`InputInvalid` listing all problems when there is any error; warnings are logged.
    """
    logger = run_logger()
    try:
        report = validate_dataset_file(csv_path, job)
    except CsvReadError as error:
        raise InputInvalid(f"dataset.csv: {error}. Fix the path in the job spec or the file's permissions.") from None
    problems = [*job.warnings(), *report.problems]
    text = report.format_text()
    create_markdown_artifact(
        key="validation-report",
        markdown=f"# Validation of `{csv_path.name}`\n\n{report.rows} rows, {len(report.columns)} columns.\n\n```\n{text}\n```",
        description="CSV and job spec checks, run before anything is created on Prolific",
    )
    for warning in job.warnings():
        logger.warning("%s", warning.format())
    if not report.ok:
        raise InputInvalid(text)
    if problems:
        logger.warning("%s", text)
    logger.info("%s: %d rows, %d columns, no errors", csv_path.name, report.rows, len(report.columns))
    return report


def prepare_upload_file(csv_path: Path, report: ValidationReport, job: AnnotationJob, work_dir: Path) -> Path:
    """The file to upload: a JSONL file or a UTF-8 CSV as it is, else a checked rewrite of the CSV.

    See :func:`taskbuilder.upload_preparation.prepare_upload` (the rewrite is read back and compared cell by cell).
    """
    if is_jsonl(csv_path):
        return csv_path  # uploaded as given (§1.4: V4 datasets take .jsonl)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = prepare_upload(csv_path, report, job, work_dir)
    if path != csv_path:
        run_logger().info("Rewrote %s as UTF-8 CSV for upload (%s); every cell checked equal", csv_path.name, report.dialect)
    return path
