"""The flow run's side of a worker's preloader (:mod:`deployments.flow_run_preload`): find the worker's preloader,
start one when none listens and wait for it, hand it this run, then end as the child it forked ended; and what
both sides share: the socket folder, the key of a preloader, the messages.

Only the standard library is imported here (and :mod:`taskbuilder.private_folder`, itself standard library only):
this runs in every flow run's process before anything else.

Source: Linux ``unix(7)`` (``SCM_RIGHTS``), ``flock(2)``; Python ``socket.send_fds``/``recv_fds``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import sys

SWITCH = "TASKBUILDER_FLOW_RUN_PRELOAD"
"""Environment variable: ``0`` (or ``false``, ``no``, ``off``) runs every flow run's engine in its own process."""
IDLE_SECONDS = 900.0
"""A preloader with no flow run for this long ends (``TASKBUILDER_FLOW_RUN_PRELOAD_IDLE_SECONDS``)."""
PRELOAD_MODULES = ("prefect.engine", "prefect.flow_engine", "prefect.task_engine", "tasks.process_exit",
                   "deployments.flow_run_engine")
"""Imported by the preloader before the flow modules of ``deployments/prefect.yaml``."""
FORWARDED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1",
                                                             "SIGUSR2") if hasattr(signal, name))
RUN_CONTEXT_PREFIX = "PREFECT__"
"""Variables a worker sets per flow run (``PREFECT__FLOW_RUN_ID``, ``PREFECT__WORKER_NAME`` ...): not settings."""
CONNECT_TIMEOUT_SECONDS = 5.0
ANSWER_TIMEOUT_SECONDS = 30.0
"""A preloader that does not answer a run's request this soon is given up on (the run runs by itself)."""
STATUS_AFTER_EXIT_SECONDS = 5.0
"""After its child ended, a run waits this long for the preloader's report of how."""
STARTUP_WAIT_SECONDS = 30.0
"""A run that finds a preloader starting (or starts one) waits this long at most for it to listen."""
STARTUP_POLL_SECONDS = 0.05
FAILED_START_SECONDS = 600.0
"""After a preloader failed to start (``<key>.failed``), runs of its key run by themselves this long."""
MAX_SOCKET_PATH_BYTES = 107
"""A Unix socket's path on Linux (``sun_path``, 108 bytes with its NUL)."""
CANNOT_SERVE = 2
SETTINGS_FILES = ("prefect.toml", ".env", "pyproject.toml")
"""Files Prefect reads its settings from in the working folder (Prefect 3.9 ``prefect/settings/sources.py``)."""
_HEADER = struct.Struct("!I")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""A request holds a process's environment: far below this."""


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether flow runs may go through a preloader here: Linux with ``os.pidfd_open`` and ``os.fork``, and
    :data:`SWITCH` not off."""
    environ = os.environ if environ is None else environ
    if environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


def socket_folder() -> str | None:
    """``<temp folder>/taskbuilder-flow-runs-<uid>``, made with mode 0700; ``None`` when it exists but is not this
    user's alone (nothing is served from a folder another user can write):
    :func:`taskbuilder.private_folder.private_temp_folder`."""
    from taskbuilder.private_folder import private_temp_folder

    return private_temp_folder("taskbuilder-flow-runs")


def settings_folder(cwd: str) -> str:
    """``cwd`` when it holds one of :data:`SETTINGS_FILES` (Prefect's settings at import depend on it), else ``""``:
    a worker runs each flow run in a new temporary folder, which changes nothing at import."""
    return cwd if any(os.path.exists(os.path.join(cwd, name)) for name in SETTINGS_FILES) else ""


def preloader_key(executable: str, cwd: str, environ: dict[str, str], owner_pid: int) -> str:
    """The preloader a flow run may use: its interpreter, :func:`settings_folder`, worker's pid and environment
    (every variable but :data:`RUN_CONTEXT_PREFIX` ones), as 24 hex digits of a SHA-256."""
    cwd = settings_folder(cwd)
    settled = sorted((k, v) for k, v in environ.items() if not k.startswith(RUN_CONTEXT_PREFIX))
    blob = json.dumps([executable, cwd, owner_pid, settled], separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def send_message(conn: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(conn, [_HEADER.pack(len(data)) + data], fds)
    else:
        conn.sendall(_HEADER.pack(len(data)) + data)


def receive_message(conn: socket.socket, with_fds: int = 0,
                    deadline: float | None = None) -> tuple[dict | None, list[int]]:
    """One message and the file descriptors (at most ``with_fds``) sent with its first bytes; ``(None, [])`` at end
    of stream. ``deadline`` (``time.monotonic()``): the whole message by then, else ``TimeoutError`` (an
    ``OSError``); ``None``: the socket's own timeout per read. Descriptors are closed when it raises."""
    import time

    fds: list[int] = []

    def read(size: int) -> bytes:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the message did not come in time")
            conn.settimeout(left)
        if with_fds and not fds and not received:
            data, new_fds, _, _ = socket.recv_fds(conn, size, with_fds)
            fds.extend(new_fds)
            return data
        return conn.recv(size)

    received = bytearray()
    try:
        while len(received) < _HEADER.size:
            more = read(_HEADER.size - len(received))
            if not more:
                raise EOFError
            received += more
        (size,) = _HEADER.unpack(bytes(received))
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"a message of {size} bytes")
        body = bytearray()
        while len(body) < size:
            more = read(size - len(body))
            if not more:
                raise EOFError
            body += more
        return json.loads(bytes(body)), fds
    except EOFError:
        for fd in fds:
            os.close(fd)
        return None, []
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def run_through_preloader() -> None:
    """Run this flow run's engine in a child of the worker's preloader and end this process as the child ended.
    Returns (having done nothing that changes the run) when no preloader can serve it; the caller then runs the
    engine itself. Starts a preloader for later runs when none listens. Never returns once a child started."""
    if not enabled() or not os.environ.get("PREFECT__FLOW_RUN_ID"):
        return  # by hand (a flow run id as argument) or switched off: the engine runs here
    folder = socket_folder()
    owner = os.getppid()
    if folder is None or owner <= 1:
        return
    environ = dict(os.environ)
    key = preloader_key(sys.executable, os.getcwd(), environ, owner)
    path = os.path.join(folder, key + ".sock")
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        return  # a long TMPDIR: no Unix socket there
    conn = _connect(folder, key, owner, environ)
    if conn is None:
        return
    import time

    try:
        # a child starts its engine only once this process has acknowledged its pid: until then, giving up (no
        # answer in ANSWER_TIMEOUT_SECONDS, a refusal, the preloader gone) leaves no child running
        send_message(conn, {"argv": sys.argv, "environ": environ, "cwd": os.getcwd()}, [0, 1, 2])
        answer, _ = receive_message(conn, deadline=time.monotonic() + ANSWER_TIMEOUT_SECONDS)
    except (OSError, ValueError):
        answer = None
    if not answer or "pid" not in answer:
        conn.close()  # refused (a changed file, a thread) or gone: no child runs; the next run starts a fresh one
        return
    child = int(answer["pid"])

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    try:
        conn.settimeout(None)
        send_message(conn, {"ack": child})
    except OSError:
        conn.close()  # the ack did not go: the child ends without running
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        return
    _end_as(child, _wait_for_status(conn, child))


def _wait_for_status(conn: socket.socket, child: int) -> dict | None:
    """The child's end as the preloader reports it; ``None`` when the preloader is gone or says nothing within
    :data:`STATUS_AFTER_EXIT_SECONDS` of the child's end (a pidfd on the child: no polling)."""
    import select

    try:
        child_fd = os.pidfd_open(child)
    except OSError:
        child_fd = None
    try:
        watch = [conn] + ([child_fd] if child_fd is not None else [])
        while True:
            ready, _, _ = select.select(watch, [], [])
            if conn in ready:
                status, _ = receive_message(conn)
                return status
            watch = [conn]  # the child ended: its status is on its way, or the preloader is stuck
            ready, _, _ = select.select(watch, [], [], STATUS_AFTER_EXIT_SECONDS)
            if not ready:
                return None
            status, _ = receive_message(conn)
            return status
    except (OSError, ValueError):
        return None
    finally:
        if child_fd is not None:
            os.close(child_fd)


def _connect(folder: str, key: str, owner: int, environ: dict[str, str]) -> socket.socket | None:
    """A connection to the worker's preloader: the one listening, or one starting (started here when none is,
    waited for up to :data:`STARTUP_WAIT_SECONDS`: its imports take about as long as this run's own would).
    ``None`` when none can serve: one failed to start in the last :data:`FAILED_START_SECONDS`, or it ended
    before listening, or it took too long."""
    import time

    path = os.path.join(folder, key + ".sock")
    deadline = time.monotonic() + STARTUP_WAIT_SECONDS
    started = None
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(CONNECT_TIMEOUT_SECONDS)
            conn.connect(path)
            return conn
        except OSError:
            conn.close()
        if _failed_recently(folder, key) or time.monotonic() > deadline:
            return None
        if not _starting(folder, key):
            if started is not None and started.poll() is not None:
                return None  # the one this run started ended without listening
            if started is None:
                started = _start_preloader(folder, key, owner, environ)
                if started is None:
                    return None
        time.sleep(STARTUP_POLL_SECONDS)


def _starting(folder: str, key: str) -> bool:
    """Whether a preloader holds ``<key>.lock`` (starting or listening)."""
    import fcntl

    try:
        fd = os.open(os.path.join(folder, key + ".lock"), os.O_RDWR | os.O_NOFOLLOW)
    except OSError:  # none yet
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _failed_recently(folder: str, key: str) -> bool:
    import time

    try:
        return time.time() - os.stat(os.path.join(folder, key + ".failed")).st_mtime < FAILED_START_SECONDS
    except OSError:
        return False


def _end_as(child: int, status: dict | None) -> None:
    """End this process with the child's exit code, or by the signal that ended it."""
    if status is None:  # the preloader is gone or stuck: wait for the child, whose exit code is lost
        import time

        while True:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        os._exit(1)
    code = int(status["code"])
    if code < 0:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP: no handler to reset, they end it as they are
            pass
        os.kill(os.getpid(), -code)
        os._exit(128 - code)  # a signal whose default action does not end a process
    os._exit(code)


def _start_preloader(folder: str, key: str, owner: int, environ: dict[str, str]):
    """Start ``python -m deployments.flow_run_preload`` in a session of its own for the runs of this worker (the
    same environment without the run's :data:`RUN_CONTEXT_PREFIX` variables); its ``Popen``, ``None`` when it
    could not be started."""
    import subprocess

    env = {k: v for k, v in environ.items() if not k.startswith(RUN_CONTEXT_PREFIX)}
    try:
        return subprocess.Popen([sys.executable, "-m", "deployments.flow_run_preload", "--folder", folder, "--key", key,
                          "--owner", str(owner)], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                         cwd=settings_folder(os.getcwd()) or "/")
    except OSError:
        return None
