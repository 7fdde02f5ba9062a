"""The local Prefect server that stays: started on first use in the background, reused by later CLI runs.

A CLI run without an explicit Prefect API (``PREFECT_API_URL`` in the environment or the active profile)
runs its flow against this server instead of starting Prefect's temporary server each time (about 10 s
per run on a 2-core machine, ``../shared/docs/prefect-notes.md`` §0). It is ``prefect server start`` on
loopback, on a free port, with the database of ``PREFECT_HOME`` (the same one the temporary server uses),
detached from the terminal so it outlives the run that started it. What it is lives in
``$PREFECT_HOME/taskbuilder-server.json`` (``url``, ``pid``, ``port``, ``log``, ``started_at``); its log in
``$PREFECT_HOME/taskbuilder-server.log``. ``taskbuilder server status|stop`` read and stop it.

Several runs at once: the first that finds no server starts it under a file lock
(``$PREFECT_HOME/taskbuilder-server.lock``); the others wait on the lock and reuse it.
Nothing here imports Prefect (the server is a child process; health is ``GET /api/health``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from filelock import FileLock

STATE_NAME = "taskbuilder-server.json"
LOG_NAME = "taskbuilder-server.log"
LOCK_NAME = "taskbuilder-server.lock"
DISABLE_ENV = "TASKBUILDER_LOCAL_SERVER"
"""Set to ``0`` (or ``off``/``false``) to keep Prefect's own default (a temporary server per run)."""
STARTUP_TIMEOUT_SECONDS = 180.0


class LocalServerError(RuntimeError):
    """The local Prefect server could not be started; the message names its log file."""


@dataclass(frozen=True)
class LocalServer:
    """A running local server: ``url`` (the API root, ``http://127.0.0.1:PORT/api``), ``pid``, ``port``,
    ``log`` (its log file) and ``started_at`` (Unix seconds)."""

    url: str
    pid: int
    port: int
    log: str
    started_at: float


def local_server_wanted(env: dict[str, str] | os._Environ = os.environ) -> bool:
    """False when ``TASKBUILDER_LOCAL_SERVER`` is ``0``/``off``/``false``/``no`` (Prefect's temporary server then)."""
    return (env.get(DISABLE_ENV) or "1").strip().lower() not in {"0", "off", "false", "no"}


def default_prefect_home(env: dict[str, str] | os._Environ = os.environ) -> Path:
    """``PREFECT_HOME`` as Prefect reads it (default ``~/.prefect``), without importing Prefect."""
    return Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()


def running_server(home: Path) -> LocalServer | None:
    """The server recorded under ``home`` when its process lives and ``/api/health`` answers, else None
    (a stale record of a dead server is removed)."""
    state = home / STATE_NAME
    try:
        server = LocalServer(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(server.pid) and _healthy(server.url, timeout_seconds=5.0):
        return server
    if not _alive(server.pid):
        state.unlink(missing_ok=True)
    return None


def ensure_server(home: Path, *, startup_timeout_seconds: float = STARTUP_TIMEOUT_SECONDS) -> tuple[LocalServer, bool]:
    """The local server under ``home``, started when none runs; returns ``(server, started_now)``.

    Concurrent callers serialise on ``home/taskbuilder-server.lock``: one starts, the others reuse.
    Raises :class:`LocalServerError` (with the log's tail) when it does not answer ``/api/health``
    within ``startup_timeout_seconds``.
    """
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / LOCK_NAME), timeout=startup_timeout_seconds + 30):
        server = running_server(home)
        if server is not None:
            return server, False
        return _start(home, startup_timeout_seconds), True


def stop_server(home: Path, *, timeout_seconds: float = 30.0) -> LocalServer | None:
    """Stop the server recorded under ``home`` (SIGTERM to its process group, SIGKILL after
    ``timeout_seconds``) and remove its record; returns what was stopped, or None when none ran."""
    state = home / STATE_NAME
    try:
        server = LocalServer(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(server.pid) and _is_prefect_server(server.pid):
        _signal_group(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_seconds
        while _alive(server.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(server.pid):
            _signal_group(server.pid, signal.SIGKILL)
    state.unlink(missing_ok=True)
    return server


def _start(home: Path, startup_timeout_seconds: float) -> LocalServer:
    port = _free_port()
    log_path = home / LOG_NAME
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=home, start_new_session=True)
    server = LocalServer(url=f"http://127.0.0.1:{port}/api", pid=process.pid, port=port, log=str(log_path),
                         started_at=time.time())
    deadline = time.monotonic() + startup_timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _healthy(server.url, timeout_seconds=2.0):
            (home / STATE_NAME).write_text(json.dumps(asdict(server)))
            return server
        time.sleep(0.2)
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
    raise LocalServerError(
        f"the local Prefect server did not start within {startup_timeout_seconds:.0f} s (exit code {process.poll()}); "
        f"its log is {log_path}. Set PREFECT_API_URL to a Prefect server you run, or {DISABLE_ENV}=0 for Prefect's "
        f"temporary server.\nlog tail:\n{tail}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str, *, timeout_seconds: float) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=timeout_seconds).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _is_prefect_server(pid: int) -> bool:
    """True when ``pid``'s command line is ``... prefect server start ...`` (so a reused pid is never
    signalled); True where ``/proc`` is not there to ask."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return False
    return b"prefect" in command and b"server" in command


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
