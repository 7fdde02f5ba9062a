"""The local Prefect server that stays (issue 18): started on first use under PREFECT_HOME, reused by later
runs, shared by two CLI runs at once, stopped by `taskbuilder server stop`. Each test has its own
PREFECT_HOME and stops what it started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flows.local_server import STATE_NAME, ensure_server, running_server, stop_server

from tests.integration.jobs import write_small_job

REPO = Path(__file__).resolve().parents[2]
FAST_POLL = ["--poll-seconds", "0.2", "--poll-max-seconds", "0.5"]


@pytest.fixture
def prefect_home(tmp_path):
    home = tmp_path / "prefect-home"
    yield home
    stop_server(home)


def _cli(home: Path, *args: str, token: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "PYTHONPATH": str(REPO), "TASKBUILDER_LOCAL_SERVER": "1",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    if token:
        env["PROLIFIC_API_TOKEN"] = token
    return subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_started_once_reused_and_stopped(prefect_home):
    server, started = ensure_server(prefect_home)
    assert started and httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    again, started_again = ensure_server(prefect_home)
    assert (again, started_again) == (server, False)
    status = _cli(prefect_home, "server", "status")
    assert status.wait(timeout=60) == 0 and server.url in status.stdout.read()
    stop = _cli(prefect_home, "server", "stop")
    assert stop.wait(timeout=60) == 0
    assert running_server(prefect_home) is None and not (prefect_home / STATE_NAME).exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/health", timeout=5)
    status = _cli(prefect_home, "server", "status")
    assert status.wait(timeout=60) == 3


@pytest.mark.slow
def test_two_cli_runs_at_once_share_one_server(prefect_home, tmp_path, sandbox):
    specs = [write_small_job(tmp_path / f"job{i}", wait_for_completion=False) for i in range(2)]
    runs = [_cli(prefect_home, "run", str(spec), "--api-url", sandbox.base_url, *FAST_POLL, token=sandbox.token)
            for spec in specs]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n---\n".join(o[-2000:] for o in outputs)
    started = [line for output in outputs for line in output.splitlines() if line.startswith("Started a local Prefect server")]
    assert len(started) == 1, outputs  # one run started it, the other reused it
    server = running_server(prefect_home)
    assert server is not None and server.url.removesuffix("/api") in started[0]
    with httpx.Client(base_url=server.url, timeout=30) as prefect_api:
        flow_runs = prefect_api.post("/flow_runs/filter", json={}).raise_for_status().json()
    assert sorted(r["state_type"] for r in flow_runs) == ["COMPLETED", "COMPLETED"]
    for spec in specs:
        assert (spec.parent / "out" / "run.json").exists()
