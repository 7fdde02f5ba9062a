"""Start the local sandbox as a subprocess for the CLI (the embedded default of the main job).

The sandbox is a separate program (``python -m sandbox``); nothing here imports it. It prints one
line ``Sandbox API at http://127.0.0.1:PORT`` once it serves; that URL is the API root.
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

READY_LINE = re.compile(r"Sandbox API at (?P<url>http://\S+)")


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox this process started: its API root URL, its token (local only) and its log file."""

    base_url: str
    token: str
    log_path: Path


@contextmanager
def running_sandbox(
    *,
    token: str | None = None,
    settings_file: Path | None = None,
    state_file: Path | None = None,
    startup_timeout_seconds: float = 60.0,
) -> Iterator[RunningSandbox]:
    """Start ``python -m sandbox --port 0`` and yield it once it serves; stop it on exit.

    ``token``: the token the sandbox accepts (a random one by default, passed through the
    environment, never the command line). Raises ``RuntimeError`` with the sandbox's log tail when it
    does not print its ready line within ``startup_timeout_seconds``.
    """
    token = token or secrets.token_urlsafe(24)
    log_file = tempfile.NamedTemporaryFile(prefix="taskbuilder-sandbox-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", "0"]
    if settings_file is not None:
        command += ["--settings", str(settings_file)]
    if state_file is not None:
        command += ["--state", str(state_file)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=log_file,
        env={**os.environ, "SANDBOX_API_TOKEN": token},
        text=True,
        start_new_session=True,
    )
    try:
        base_url = _read_ready_line(process, startup_timeout_seconds, Path(log_file.name))
        threading.Thread(target=_drain, args=(process.stdout, log_file.name), daemon=True).start()
        yield RunningSandbox(base_url=base_url, token=token, log_path=Path(log_file.name))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log_file.close()


def _read_ready_line(process: subprocess.Popen, timeout_seconds: float, log_path: Path) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_seconds
    seen: list[str] = []
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = process.stdout.readline()
        if not line:  # the sandbox exited
            break
        seen.append(line.rstrip())
        match = READY_LINE.search(line)
        if match:
            return match.group("url").rstrip("/")
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise RuntimeError(
        f"the sandbox did not start within {timeout_seconds:.0f} s (exit code {process.poll()}).\n"
        f"stdout: {' | '.join(seen[-5:])}\nlog tail:\n{tail}"
    )


def _drain(stream, log_name: str) -> None:
    with open(log_name, "a") as log:
        for line in stream:
            log.write(line)
