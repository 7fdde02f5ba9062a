"""`taskbuilder run` answers bad input, a missing or refused token and a missing file before Prefect starts:
one message saying what to do, exit 2, no traceback, nothing created (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

from tests.integration.jobs import SMALL_CSV, write_small_job

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
DUPLICATE_ID = SMALL_CSV + "006,Same id again,positive\n"

PROBE = """
import json, sys
from flows.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"exit": code, "prefect_imported": "prefect" in sys.modules}))
"""


def _cli_in_fresh_process(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """Run the CLI in a new interpreter with its own PREFECT_HOME, the local server on and no token; return
    the probe's verdict (exit code, whether Prefect was imported) and stderr."""
    environment = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PYTHONPATH": str(REPO),
                   "TASKBUILDER_LOCAL_SERVER": "1"}
    for name in ("PREFECT_API_URL", "PROLIFIC_API_TOKEN", "PROLIFIC_API_URL"):
        environment.pop(name, None)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=environment, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_bad_csv_is_answered_without_prefect_or_a_server(tmp_path):
    spec = write_small_job(tmp_path / "job", rows=DUPLICATE_ID)
    verdict, stderr = _cli_in_fresh_process(tmp_path, "run", str(spec))  # the embedded sandbox's path
    assert verdict == {"exit": 2, "prefect_imported": False}, stderr
    assert "id_duplicate" in stderr and "record 7" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "prefect-home").exists(), "a Prefect home (server, database) was made for bad input"


def test_missing_token_is_one_line_before_prefect(tmp_path):
    spec = write_small_job(tmp_path / "job")
    verdict, stderr = _cli_in_fresh_process(tmp_path, "run", str(spec), "--api-url", "https://api.example.invalid")
    assert verdict == {"exit": 2, "prefect_imported": False}, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "PROLIFIC_API_TOKEN" in lines[0], stderr


def test_missing_dataset_file_is_refused_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "t")
    spec = write_small_job(tmp_path / "job")
    (tmp_path / "job" / "data.csv").unlink()
    result = runner.invoke(app, ["run", str(spec), "--api-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert "dataset.csv" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_refused_token_is_answered_before_anything_is_created(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "not-the-sandbox-token")
    spec = write_small_job(tmp_path / "job")
    result = runner.invoke(app, ["run", str(spec), "--api-url", sandbox.base_url])
    assert result.exit_code == 2, result.output
    assert "refused the token (401" in result.output and "PROLIFIC_API_TOKEN" in result.output
    assert "not-the-sandbox-token" not in result.output
    api = [(r["method"], r["path"]) for r in sandbox.requests() if r["target"] == "api"]
    assert api == [("GET", "/api/v1/users/me/")], api


def test_bad_csv_with_an_api_url_reaches_no_api(tmp_path, sandbox):
    spec = write_small_job(tmp_path / "job", rows=DUPLICATE_ID)
    result = runner.invoke(app, ["run", str(spec), "--api-url", sandbox.base_url])
    assert result.exit_code == 2 and "id_duplicate" in result.output, result.output
    assert [r for r in sandbox.requests() if r["target"] == "api"] == []
