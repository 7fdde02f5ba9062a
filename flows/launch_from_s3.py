"""Launch an annotation job when a CSV lands in an S3 bucket (event ``s3.object.created``).

The job spec sits beside the CSV as ``<key>.job.yaml`` (``data/reviews.csv`` →
``data/reviews.csv.job.yaml``; upload it *before* the CSV), or is named by ``job_spec_key``. In the
spec, ``dataset.csv`` becomes ``s3://<bucket>/<key>``, and a relative ``output_dir`` resolves against
the CSV's folder in the bucket, the way a local spec's paths resolve against its folder.

The job is started as a run of the ``annotation-batch/launch-annotation-batch`` deployment with
``wait_for_completion: false`` (not as a subflow), so an approval suspends that run and frees the
worker, and this flow ends at once. The run's idempotency key is the object's bucket, key and ETag:
the same upload announced twice starts one run; the job key (spec + CSV bytes) keeps the remote
resources single even across different uploads of the same file.

S3 access: boto3's default credential chain and ``AWS_ENDPOINT_URL`` (local store) of the worker.
See deployments/README.md for relaying real S3 notifications to Prefect.
"""

from __future__ import annotations

import posixpath
from typing import Any

import boto3
from prefect import flow
from prefect.deployments import run_deployment

from taskbuilder.jobspec import AnnotationJob

from flows.form_launch import job_form_values
from tasks.logs import run_logger

LAUNCH_DEPLOYMENT = "annotation-batch/launch-annotation-batch"
SPEC_SUFFIX = ".job.yaml"


class JobSpecMissing(FileNotFoundError):
    """The job spec for an uploaded CSV is not in the bucket."""


@flow(name="launch-from-s3", log_prints=False)
def launch_from_s3(
    bucket: str, key: str, job_spec_key: str | None = None, deployment_name: str = LAUNCH_DEPLOYMENT
) -> dict[str, Any]:
    """Start the annotation job for ``s3://<bucket>/<key>``; return what was launched.

    Parameters:
        bucket: the bucket the CSV was uploaded to.
        key: the CSV's object key. Keys ending in .yaml/.yml (a job spec upload) are ignored.
        job_spec_key: object key of the job spec in the same bucket; empty = ``<key>.job.yaml``.
        deployment_name: the deployment that runs the job (flow/deployment).

    Returns ``{"csv", "job_spec", "flow_run_id", "flow_run_name"}``, or ``{"skipped": reason}`` for a
    spec upload. Raises :class:`JobSpecMissing`, ``taskbuilder.jobspec.SpecError`` (every problem of the
    spec, naming its S3 location), or boto3's errors.
    """
    logger = run_logger()
    if key.endswith((".yaml", ".yml")):
        logger.info("s3://%s/%s is a YAML file, not a CSV: nothing to launch", bucket, key)
        return {"skipped": f"s3://{bucket}/{key} is not a CSV"}
    spec_key = job_spec_key or key + SPEC_SUFFIX
    s3 = boto3.client("s3")
    job = load_job_from_s3(s3, bucket, key, spec_key)
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    flow_run = run_deployment(
        deployment_name,
        parameters={"job": job_form_values(job), "wait_for_completion": False},  # the form's shape: "Run again" shows fields
        timeout=0,
        idempotency_key=f"launch-from-s3:{bucket}/{key}@{etag}",
    )
    logger.info("Launched %s as flow run %s (%s)", job.dataset.csv, flow_run.name, flow_run.id)
    return {"csv": job.dataset.csv, "job_spec": f"s3://{bucket}/{spec_key}", "flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name}


def load_job_from_s3(s3: Any, bucket: str, key: str, spec_key: str) -> AnnotationJob:
    """Read the YAML spec at ``s3://bucket/spec_key`` and point it at the CSV ``s3://bucket/key``.

    A relative ``output_dir`` (default ``out/``) becomes ``s3://bucket/<CSV folder>/<output_dir>``.
    Raises :class:`JobSpecMissing` when the spec object does not exist, ``SpecError`` when it is invalid.
    """
    from taskbuilder.jobspec import SpecError, SpecProblem

    source = f"s3://{bucket}/{spec_key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=spec_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise JobSpecMissing(
            f"no job spec at {source} for the CSV s3://{bucket}/{key}: upload the spec there before the CSV, "
            "or give job_spec_key"
        ) from None

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError([SpecProblem(path="", message=f"the spec is not UTF-8 text ({error.reason} at byte {error.start})",
                                     hint="save the spec as UTF-8 and upload it again")], source) from None

    def point_at_upload(data: dict) -> None:
        data.setdefault("dataset", {})
        if isinstance(data["dataset"], dict):
            data["dataset"]["csv"] = f"s3://{bucket}/{key}"
        output_dir = str(data.get("output_dir") or "out/")
        if not (output_dir.startswith("s3://") or output_dir.startswith("/")):
            prefix = posixpath.normpath(posixpath.join(posixpath.dirname(key), output_dir)).lstrip("/")
            data["output_dir"] = f"s3://{bucket}/" + ("" if prefix == "." else prefix + "/")

    # the one spec loader (strict YAML: repeated keys, alias bombs and retyped text refused, as in `run`)
    return AnnotationJob.from_text(text, source=source, adjust=point_at_upload)
