"""Launch an annotation job from a spec as written: a path, an ``s3://`` URI or YAML pasted into the form,
with the money switches (``publish``, ``max_budget``, ``require_approval``) as overrides.

The alternative to the typed form of ``annotation-batch``: the spec is read by the one loader (strict YAML,
every problem at once, ``taskbuilder.jobspec``), the overrides are applied to the parsed mapping before
validation, and the job runs in this flow run (``annotation_batch``'s body), so an approval suspends this
run and its artifacts are this run's. Where relative paths resolve:

- a spec path: itself against the form's base (``TASKBUILDER_FORM_BASE_DIR`` on the worker, else its working
  directory; ``flows.form_launch.form_base_dir``), the paths inside it against the spec file's folder (as
  ``taskbuilder run``);
- an ``s3://bucket/key`` spec: the paths inside it against the spec's folder in the bucket;
- pasted YAML: the paths inside it against the form's base.

Errors name the resolved path or URI.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from prefect import flow

from taskbuilder.jobspec import AnnotationJob, SpecError
from taskbuilder.jobspec.loading import read_spec_file

from flows.annotation_batch import annotation_batch
from flows.form_launch import FORM_BASE_ENV, form_base_dir
from tasks.inputs import InputInvalid

PASTED_SOURCE = "the pasted spec (launch form)"


@flow(name="annotation-batch-from-spec", log_prints=False)
def annotation_batch_from_spec(
    spec: str,
    publish: bool | None = None,
    max_budget: int | None = None,
    require_approval: bool | None = None,
    wait_for_completion: bool | None = None,
    output_dir: str | None = None,
) -> dict[str, Any]:
    """Run the job described by ``spec``; return the run summary (as ``annotation-batch``).

    Parameters:
        spec: the job spec: a path to a YAML file (relative = against TASKBUILDER_FORM_BASE_DIR, else the
            worker's working directory), an s3://bucket/key URI, or the YAML itself pasted here.
        publish: overrides the spec's publish (true spends money). Empty = the spec's.
        max_budget: overrides the spec's max_budget, in cents (fees and VAT included). Empty = the spec's.
        require_approval: overrides the spec's require_approval (a reviewer approves before publishing).
            Empty = the spec's.
        wait_for_completion: wait for the study and write the results in this run (true), or end after
            publishing (false: the deployment's default; collect-report writes them). Empty = the spec's.
        output_dir: folder for the results or s3://bucket/prefix (relative = against the form's base).
            Empty = the spec's output_dir.

    Raises ``InputInvalid`` (a spec that cannot be read, naming the resolved path or URI; every problem of
    an invalid spec), and whatever ``annotation-batch`` raises.
    """
    overrides = {"publish": publish, "max_budget": max_budget, "require_approval": require_approval}
    job = load_spec(spec, {name: value for name, value in overrides.items() if value is not None})
    return annotation_batch.fn(job=job, wait_for_completion=wait_for_completion, output_dir=output_dir)


def load_spec(spec: str, overrides: dict[str, Any]) -> AnnotationJob:
    """The job of ``spec`` (path, ``s3://`` URI or YAML text; see the module docstring) with ``overrides``
    (top-level spec fields) applied before validation. Raises ``InputInvalid``."""

    def adjust(data: dict) -> None:
        data.update(overrides)

    try:
        if spec.startswith("s3://"):
            return _load_s3(spec, adjust)
        if "\n" in spec.strip() or ":" in spec and not spec.strip().lower().endswith((".yaml", ".yml")):
            return AnnotationJob.from_text(spec, source=PASTED_SOURCE, base_dir=form_base_dir(), adjust=adjust)
        path = Path(spec.strip()).expanduser()
        resolved = path if path.is_absolute() else form_base_dir() / path
        if not resolved.is_file():
            raise InputInvalid(f"spec: {resolved} does not exist or is not a file (written {spec.strip()!r}; a relative "
                               f"path resolves against {FORM_BASE_ENV}, else the worker's working directory)")
        return AnnotationJob.from_text(read_spec_file(resolved), source=resolved, base_dir=resolved.parent, adjust=adjust)
    except SpecError as error:
        raise InputInvalid(str(error)) from None


def _load_s3(uri: str, adjust: Any) -> AnnotationJob:
    """The spec at ``s3://bucket/key``; relative ``dataset.csv``, ``output_dir`` and ``bonus.csv`` in it point into
    the spec's folder in the bucket (a bonus file in S3 is refused when the spec is read)."""
    import boto3

    bucket, _, key = uri[len("s3://"):].partition("/")
    s3 = boto3.client("s3")
    try:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except s3.exceptions.NoSuchKey:
        raise InputInvalid(f"spec: no object at {uri}; give the URI of the spec's YAML file") from None
    folder = posixpath.dirname(key)

    def into_bucket(data: dict) -> None:
        adjust(data)
        dataset = data.get("dataset")
        if isinstance(dataset, dict) and isinstance(dataset.get("csv"), str):
            dataset["csv"] = _in_bucket(bucket, folder, dataset["csv"])
        data["output_dir"] = _in_bucket(bucket, folder, str(data.get("output_dir") or "out/")) + "/"
        bonus = data.get("bonus")
        if isinstance(bonus, dict) and isinstance(bonus.get("csv"), str):  # never a same-named file of the worker's
            bonus["csv"] = _in_bucket(bucket, folder, bonus["csv"])

    return AnnotationJob.from_text(text, source=uri, adjust=into_bucket)


def _in_bucket(bucket: str, folder: str, value: str) -> str:
    if value.startswith("s3://") or value.startswith("/"):
        return value.rstrip("/") if value.startswith("s3://") else value
    return f"s3://{bucket}/" + posixpath.normpath(posixpath.join(folder, value)).lstrip("/").rstrip("/")
