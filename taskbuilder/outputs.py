"""Write a job's output files to a local folder or an ``s3://bucket/prefix`` (boto3).

What is written depends on the value given for each file name:

- ``pandas.DataFrame`` → CSV (``index=False``, UTF-8, ``lineterminator="\\n"``; text cells unchanged, so
  ``read_csv(dtype=str, keep_default_na=False)`` gives them back), plus ``<stem>.parquet`` when
  ``parquet=True`` (needs pyarrow);
- ``dict`` → JSON (UTF-8, indented, strict: NaN is refused);
- ``pathlib.Path`` → the file copied byte for byte (the downloaded ``report.csv``).

S3 uploads use boto3's ``upload_file`` (streamed, multipart for large files) for tables and copied files,
``put_object`` for JSON. Tables go to S3 through a temporary local file, so the bytes are the same in
both destinations.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

OutputValue = Path | pd.DataFrame | dict


def default_s3_client() -> Any:
    """A boto3 S3 client resolved the usual way (env ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, config files), with
    SigV4 and checksums only when required (S3-compatible servers such as rclone differ from AWS there,
    see docs/local-s3.md §2.1)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4",
                                            request_checksum_calculation="when_required",
                                            response_checksum_validation="when_required"))


def _split_s3(destination: str) -> tuple[str, str]:
    bucket, _, prefix = destination[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"output destination {destination!r}: no bucket; use s3://bucket/prefix")
    return bucket, prefix.strip("/")


def _write_local(folder: Path, name: str, value: OutputValue) -> Path:
    target = folder / name
    if isinstance(value, pd.DataFrame):
        value.to_csv(target, index=False, encoding="utf-8", lineterminator="\n")
    elif isinstance(value, dict):
        target.write_text(json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    elif not (target.exists() and os.path.samefile(value, target)):
        shutil.copyfile(value, target)
    return target


def _files_to_write(files: dict[str, OutputValue], parquet: bool) -> dict[str, OutputValue | tuple[str, pd.DataFrame]]:
    """Check names and types; add ``<stem>.parquet`` entries (marked as tuples) when asked."""
    plan: dict[str, Any] = {}
    for name, value in files.items():
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"output file name {name!r} must be a plain file name (no folder)")
        if not isinstance(value, (Path, pd.DataFrame, dict)):
            raise TypeError(f"output {name!r}: expected a Path, DataFrame or dict, got {type(value).__name__}")
        plan[name] = value
        if parquet and isinstance(value, pd.DataFrame):
            plan[f"{Path(name).stem}.parquet"] = ("parquet", value)
    if parquet:
        try:
            import pyarrow  # noqa: F401  (pandas' Parquet engine)
        except ImportError as error:
            raise RuntimeError("Parquet output needs the pyarrow package, which is not installed: run "
                               "`pip install 'pyarrow>=15'` in this environment, or turn Parquet output off") from error
    return plan


def output_location(destination: str, name: str) -> str:
    """Where :func:`write_outputs` puts ``name`` under ``destination``: ``<s3 prefix>/<name>`` for an ``s3://``
    prefix, else the absolute local path (as :func:`write_outputs` returns it)."""
    if destination.startswith("s3://"):
        return f"{destination.rstrip('/')}/{name}"
    return str(Path(destination).resolve() / name)


def write_outputs(destination: str | Path, *, files: dict[str, OutputValue], parquet: bool = False,
                  s3_client: Any = None) -> dict[str, str]:
    """Write ``files`` (file name → DataFrame | dict | Path, encodings in the module docstring) to
    ``destination``.

    Args:
        destination: a local folder (created with parents) or ``s3://bucket/prefix`` (the bucket must exist).
        files: e.g. ``{"labels.csv": df, "participants.csv": df, "summary.json": {...},
            "responses.csv": df, "report.csv": Path("…/report.csv")}``.
        parquet: also write ``<stem>.parquet`` for every DataFrame.
        s3_client: a boto3 S3 client for ``s3://`` destinations; default :func:`default_s3_client`.

    Returns:
        File name → location (absolute local path, or ``s3://bucket/key``), in the order written.

    Raises:
        ValueError: a name with a folder part, or an ``s3://`` destination without a bucket.
        TypeError: a value of another type. RuntimeError: ``parquet=True`` without pyarrow (before
        anything is written). botocore ``ClientError``/``BotoCoreError``: an S3 request failed.
    """
    plan = _files_to_write(files, parquet)
    locations: dict[str, str] = {}
    if not str(destination).startswith("s3://"):
        folder = Path(destination).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in plan.items():
            if isinstance(value, tuple):
                value[1].to_parquet(folder / name, index=False)
            else:
                _write_local(folder, name, value)
            locations[name] = str(folder / name)
        return locations

    bucket, prefix = _split_s3(str(destination))
    client = s3_client or default_s3_client()
    with tempfile.TemporaryDirectory(prefix="taskbuilder-outputs-") as scratch:
        for name, value in plan.items():
            key = f"{prefix}/{name}" if prefix else name
            if isinstance(value, dict):
                body = json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
                client.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"),
                                  ContentType="application/json; charset=utf-8")
            else:
                if isinstance(value, tuple):
                    source = Path(scratch) / name
                    value[1].to_parquet(source, index=False)
                elif isinstance(value, pd.DataFrame):
                    source = _write_local(Path(scratch), name, value)
                else:
                    source = value
                client.upload_file(str(source), bucket, key)
            locations[name] = f"s3://{bucket}/{key}"
    return locations
