"""Fixtures for the sandbox tests: one sandbox subprocess per test session, reset before each test.

The sandbox is started exactly as users start it (``python -m sandbox --host 127.0.0.1 --port 0
--token T``); the printed line gives the base URL. Tests talk to it over real HTTP with httpx.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-sandbox"
START_TIMEOUT_SECONDS = 60


@dataclass
class RunningSandbox:
    """A started sandbox: ``base_url`` (without ``/api/v1``), ``token``, the process."""

    base_url: str
    token: str
    process: subprocess.Popen


def start_sandbox(*extra_args: str, token: str | None = TOKEN, env_token: str | None = None,
                  stderr_path: Path | None = None) -> RunningSandbox:
    """Start ``python -m sandbox`` on a free port and wait for its ``Sandbox API at`` line.

    ``token`` goes to ``--token`` (None: not passed); ``env_token`` to ``SANDBOX_API_TOKEN`` (None: unset).
    The returned ``token`` is the one the sandbox should accept.
    """
    stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_API_TOKEN"}
    if env_token is not None:
        env["SANDBOX_API_TOKEN"] = env_token
    token_args = ["--token", token] if token is not None else []
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", "0", *token_args, *extra_args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_SECONDS)
    if not lines or not lines[0].startswith("Sandbox API at http://127.0.0.1:"):
        stop_sandbox(process)
        raise RuntimeError(f"sandbox did not start: {lines!r}")
    accepted = token or env_token or "sandbox-token"
    return RunningSandbox(lines[0].removeprefix("Sandbox API at ").strip(), accepted, process)


def stop_sandbox(process: subprocess.Popen) -> None:
    """Terminate the sandbox process (SIGTERM, then SIGKILL after 15 s)."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> RunningSandbox:
    """The session's sandbox subprocess; killed at teardown."""
    running = start_sandbox(stderr_path=tmp_path_factory.mktemp("sandbox") / "stderr.log")
    yield running
    stop_sandbox(running.process)


@pytest.fixture(scope="session")
def default_settings(sandbox) -> dict:
    """The settings the sandbox started with (without the read-only object store fields)."""
    settings = httpx.get(sandbox.base_url + "/_sandbox/settings").json()
    return {k: v for k, v in settings.items() if not k.startswith("object_store_")}


@pytest.fixture
def control(sandbox, default_settings):
    """An httpx client on the sandbox root (control plane); the sandbox is reset and its settings
    restored before the test."""
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as client:
        client.delete("/_sandbox/faults").raise_for_status()
        client.post("/_sandbox/settings", json=default_settings).raise_for_status()
        client.post("/_sandbox/reset").raise_for_status()
        yield client


@pytest.fixture
def api(sandbox, control):
    """An httpx client on ``{base}/api/v1`` with the token (the sandbox was just reset)."""
    with httpx.Client(base_url=sandbox.base_url + "/api/v1",
                      headers={"Authorization": f"Token {sandbox.token}"}, timeout=30) as client:
        yield client


@pytest.fixture
def workspace_id(api) -> str:
    """Id of the default workspace."""
    return api.get("/workspaces/").json()["results"][0]["id"]
