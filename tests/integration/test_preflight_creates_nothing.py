"""A run whose output location cannot be used, or would overwrite its input, or whose API URL is plain http
to another host, is refused in one line before any API call (C05, C08, C19 kinds), through the real CLI
and flow against the sandbox."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app

from tests.integration.jobs import write_small_job

runner = CliRunner()


def _refusal(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("Refused")]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    return lines[0]


def _api_requests(sandbox) -> list:
    return [r for r in sandbox.requests() if r["target"] == "api"]


@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_an_output_folder_under_a_file_creates_nothing(sandbox, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    spec = write_small_job(tmp_path, output_dir=str(tmp_path / "afile" / "out"))
    result = runner.invoke(app, ["run", str(spec), "--api-url", sandbox.base_url])
    assert "afile is a file, not a folder" in _refusal(result)
    assert _api_requests(sandbox) == []


@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_an_unreachable_s3_output_creates_nothing(sandbox, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    spec = write_small_job(tmp_path, output_dir="s3://nobucket/results")
    result = runner.invoke(app, ["run", str(spec), "--api-url", sandbox.base_url])
    assert "s3://nobucket/results" in _refusal(result)
    assert _api_requests(sandbox) == []


@pytest.mark.parametrize("name", ["responses.csv", "run.json"])
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_outputs_that_would_overwrite_the_input_create_nothing(sandbox, tmp_path, name):
    spec = write_small_job(tmp_path, output_dir=".")
    (tmp_path / "data.csv").rename(tmp_path / name)
    spec.write_text(spec.read_text().replace("csv: data.csv", f"csv: {name}"))
    before = (tmp_path / name).read_bytes()
    result = runner.invoke(app, ["run", str(spec), "--api-url", sandbox.base_url])
    assert "would overwrite the input" in _refusal(result)
    assert (tmp_path / name).read_bytes() == before
    assert _api_requests(sandbox) == []


def test_plain_http_to_another_host_is_refused_before_prefect_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "tok-not-sent")
    spec = write_small_job(tmp_path)
    result = runner.invoke(app, ["run", str(spec), "--api-url", "http://api.prolific.com"])
    assert "clear text" in _refusal(result) and "tok-not-sent" not in result.output
