"""Checks made before anything is created on Prolific: where the token goes, where the outputs go.

- :func:`check_api_url`: the API URL is ``https://``, or ``http://`` to a loopback host only (the local
  sandbox); a token sent over plain http to another host travels in clear text.
- :func:`check_output_location`: the output folder can be created and written (a small test file is
  written and removed, and so are the folders the check created), or the ``s3://`` prefix is reachable and writable with the credentials at hand (a
  small test object is written and deleted).
- :func:`check_outputs_spare_inputs`: no output file would land on an input file (the dataset CSV, the
  spec), however the paths are spelled (``..``, symlinks, hard links, a case-insensitive file system).

Each raises :class:`PreflightFailed` with one line saying what is wrong and what to do.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

OUTPUT_NAMES = ("report.csv", "responses.csv", "labels.csv", "participants.csv", "summary.json", "run.json",
                "report.parquet", "responses.parquet", "labels.parquet", "participants.parquet")
"""Every file a run may write into its output location (tasks/results.py and the flow's run.json)."""
TEST_OBJECT_PREFIX = ".taskbuilder-write-test-"


class PreflightFailed(ValueError):
    """A pre-flight check failed; nothing was created. The message is one line: what, and what to do."""


def check_api_url(base_url: str) -> None:
    """Refuse a non-https API URL unless its host is loopback (``localhost``, 127.0.0.0/8, ``::1``).

    Raises :class:`PreflightFailed`. The URL's user info and query (never expected) are not echoed.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    if parts.scheme == "http" and _is_loopback(host):
        return
    shown = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    raise PreflightFailed(
        f"API URL {shown} is not https: the API token would travel in clear text. Use https://{host or 'api.prolific.com'} "
        "(plain http is accepted only for a loopback host such as the local sandbox at http://127.0.0.1)."
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_output_location(destination: str, *, s3_client: Callable[[], Any] | None = None) -> None:
    """Make sure the outputs can be written to `destination` (a folder, created with its parents, or
    ``s3://bucket/prefix``) by writing a small test file there and removing it.

    `s3_client`: a factory of a boto3 S3 client (default: :func:`taskbuilder.outputs.default_s3_client`).
    Raises :class:`PreflightFailed`.
    """
    if destination.startswith("s3://"):
        _check_s3_location(destination, s3_client)
    else:
        _check_local_location(Path(destination).expanduser())


def _check_local_location(folder: Path) -> None:
    """Create the folder (and parents), write and remove a test file, then remove the folders it created:
    the outputs create them again when they are written."""
    what_to_do = "choose another output_dir in the job spec, or pass --output-dir FOLDER"
    folder = Path(os.path.abspath(folder))
    created = [p for p in [folder, *folder.parents] if not p.exists() and not p.is_symlink()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PreflightFailed(f"output_dir {folder} is a file, not a folder: {what_to_do}.") from None
    except NotADirectoryError:
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise PreflightFailed(f"output_dir {folder} cannot be created: {blocker} is a file, not a folder; {what_to_do}.") from None
    except OSError as error:
        raise PreflightFailed(f"output_dir {folder} cannot be created ({error.strerror}): {what_to_do}.") from None
    probe = folder / f"{TEST_OBJECT_PREFIX}{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"taskbuilder write test\n")
    except OSError as error:
        raise PreflightFailed(f"output_dir {folder} cannot be written ({error.strerror}): {what_to_do}, or fix its permissions.") from None
    finally:
        probe.unlink(missing_ok=True)
        for path in created:  # deepest first
            try:
                path.rmdir()
            except OSError:
                break


def _check_s3_location(destination: str, s3_client: Callable[[], Any] | None) -> None:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket, _, prefix = destination[len("s3://"):].partition("/")
    if not bucket:
        raise PreflightFailed(f"output_dir {destination} names no bucket: write s3://BUCKET/PREFIX.")
    if s3_client is None:
        from taskbuilder.outputs import default_s3_client as s3_client
    key = posixpath.join(prefix.strip("/"), f"{TEST_OBJECT_PREFIX}{uuid.uuid4().hex}") if prefix.strip("/") else f"{TEST_OBJECT_PREFIX}{uuid.uuid4().hex}"
    try:
        client = s3_client()
        client.put_object(Bucket=bucket, Key=key, Body=b"taskbuilder write test\n")
    except NoCredentialsError:
        raise PreflightFailed(
            f"output_dir {destination}: no AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
            "AWS_PROFILE), and AWS_ENDPOINT_URL for an S3-compatible store, or choose a local output_dir.") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "an error")
        raise PreflightFailed(
            f"output_dir {destination}: S3 refused a test write ({code}). Check that bucket {bucket} exists and that "
            "your credentials may write to it, or choose another output_dir.") from None
    except BotoCoreError as error:
        raise PreflightFailed(
            f"output_dir {destination}: S3 cannot be reached ({type(error).__name__}). Check AWS_ENDPOINT_URL and the "
            "network, or choose a local output_dir.") from None
    try:
        client.delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError):
        pass  # writing is what the run needs; a leftover test object is harmless and named as one


def check_outputs_spare_inputs(destination: str, inputs: Iterable[str], names: Iterable[str] = OUTPUT_NAMES) -> None:
    """Refuse when an output file (`names` under `destination`) would be one of the `inputs` (paths or
    ``s3://`` URLs). Local paths are compared as the file system sees them: resolved (``..``, symlinks),
    by identity when both exist (hard links, case-insensitive file systems), else by case-folded path.
    Raises :class:`PreflightFailed`.
    """
    names = list(names)
    for source in inputs:
        clash = _clash(destination, source, names)
        if clash is not None:
            raise PreflightFailed(
                f"output {clash} would overwrite the input {source}: choose another output_dir (e.g. a new folder "
                "such as out/), or pass --output-dir FOLDER; nothing was created.")


def _clash(destination: str, source: str, names: list[str]) -> str | None:
    if destination.startswith("s3://") or source.startswith("s3://"):
        if not (destination.startswith("s3://") and source.startswith("s3://")):
            return None
        folder = posixpath.normpath(destination[len("s3://"):].rstrip("/"))
        target = posixpath.normpath(source[len("s3://"):])
        return next((f"s3://{folder}/{name}" for name in names if posixpath.join(folder, name) == target), None)
    folder = Path(destination).expanduser().resolve()
    source_path = Path(source).expanduser().resolve()
    for name in names:
        target = folder / name
        if target.exists() and source_path.exists():
            if os.path.samefile(target, source_path):
                return str(target)
        elif os.path.normcase(str(target)).casefold() == os.path.normcase(str(source_path)).casefold():
            return str(target)
    return None
