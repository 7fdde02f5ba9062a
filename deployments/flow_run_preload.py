"""A worker's flow runs forked from a process that has Prefect and the project's flows imported already.

Why. Every flow run of the ``taskbuilder`` pool is a new Python process (:mod:`deployments.flow_run`), and about
two thirds of its CPU is imports: Prefect's engine and its pydantic models, pandas, the project's flows (~2 s of
CPU per run on this machine, measured with py-spy and ``-X importtime`` on B4's stack; issue 18, NOTES.md "Lean
runs"). A process that imported them once and forks a child per flow run pays them once per worker.

How. The first flow run of a worker finds no preloader for its worker and environment: it starts one
(``python -m deployments.flow_run_preload``, a session of its own, stdio on ``/dev/null``) and waits for it to
listen (its imports take about what the run's own would). The preloader imports :data:`PRELOAD_MODULES` and the
flow modules of ``deployments/prefect.yaml``, then listens on a Unix socket in a folder only this user can open.
Each flow run of the worker (``python -m deployments.flow_run``, still the pool's command, still the process the
worker watches and signals) connects, sends its arguments, environment and working folder, and its standard
streams as file descriptors; the preloader forks a child that takes them (``dup2``), starts a session of its
own and runs ``prefect.engine`` as ``__main__``, exactly what the process would have run. The flow run's process
stays the worker's view of the run:

- signals it gets (a cancel's SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2) are sent on to the child;
- it ends with the child's exit code, or by the same signal when the child was killed (a crash stays a crash);
- when it is killed itself (SIGKILL, where nothing can be sent on), the preloader sees its connection close and
  kills the child.

When the preloader cannot serve (not Linux, switched off, another user's folder, a socket path too long for
``TMPDIR``, a module file it imported has changed since, a thread running in it, one that failed to start in the
last 10 minutes, anything unexpected), the flow run runs its engine itself: the preloader only ever saves time. A changed file makes the preloader refuse and end; the next run starts a fresh one. It
ends with its worker (a pidfd on the worker's process), or after :data:`IDLE_SECONDS` without a flow run; its
running children first.

What is kept the same as a process of its own: the environment (one preloader per worker, interpreter, working
folder and environment: every variable but the run's ``PREFECT__*`` context, so Prefect's settings, read at
import, are the run's own), ``sys.argv``, the working folder, the session, the exit code. Prefect's profile and
``prefect.toml`` / ``.env`` / ``pyproject.toml`` in the working folder are watched like the modules.

Switch it off with ``TASKBUILDER_FLOW_RUN_PRELOAD=0`` in the worker's environment.

Source: Linux ``fork(2)``, ``pidfd_open(2)``, ``unix(7)`` (``SCM_RIGHTS``, ``SO_PEERCRED``); Python ``os.fork``,
``socket.send_fds``/``recv_fds``; Prefect 3.9 ``prefect/engine.py`` (``__main__``), ``prefect/workers/base.py``
(the ``PREFECT__*`` variables a worker sets per flow run).
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
STARTUP_WAIT_SECONDS = 60.0
"""A run that finds a preloader starting (or starts one) waits this long at most for it to listen."""
STARTUP_POLL_SECONDS = 0.05
FAILED_START_SECONDS = 600.0
"""After a preloader failed to start (``<key>.failed``), runs of its key run by themselves this long."""
MAX_SOCKET_PATH_BYTES = 107
"""A Unix socket's path on Linux (``sun_path``, 108 bytes with its NUL)."""
CANNOT_SERVE = 2
SETTINGS_FILES = ("prefect.toml", ".env", "pyproject.toml")
"""Files Prefect reads its settings from in the working folder (Prefect 3.9 ``prefect/settings/sources.py``)."""
_started_in: list[str] = []  # the preloader's working folder at its start (``sys.path[0]`` under ``-m``)
_HEADER = struct.Struct("!I")


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether flow runs may go through a preloader here: Linux with ``os.pidfd_open`` and ``os.fork``, and
    :data:`SWITCH` not off."""
    environ = os.environ if environ is None else environ
    if environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux") and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


def socket_folder() -> str | None:
    """``<temp folder>/taskbuilder-flow-runs-<uid>``, made with mode 0700; ``None`` when it exists but is not this
    user's alone (nothing is served from a folder another user can write)."""
    import tempfile

    folder = os.path.join(tempfile.gettempdir(), f"taskbuilder-flow-runs-{os.getuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    info = os.lstat(folder)
    import stat

    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


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


def _send(conn: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(conn, [_HEADER.pack(len(data)) + data], fds)
    else:
        conn.sendall(_HEADER.pack(len(data)) + data)


def _receive(conn: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message (``None`` at end of stream) and the file descriptors sent with its first bytes."""
    fds: list[int] = []
    if with_fds:
        first, fds, _, _ = socket.recv_fds(conn, _HEADER.size, with_fds)
    else:
        first = conn.recv(_HEADER.size)
    while first and len(first) < _HEADER.size:
        more = conn.recv(_HEADER.size - len(first))
        if not more:
            break
        first += more
    if len(first) < _HEADER.size:
        for fd in fds:
            os.close(fd)
        return None, []
    (size,) = _HEADER.unpack(first)
    body = b""
    while len(body) < size:
        more = conn.recv(size - len(body))
        if not more:
            for fd in fds:
                os.close(fd)
            return None, []
        body += more
    return json.loads(body), fds


# --- the flow run's side -------------------------------------------------------------------------------------


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
    try:
        # no time limit from here: a child starts its engine only once the preloader has sent us its pid
        conn.settimeout(None)
        _send(conn, {"argv": sys.argv, "environ": environ, "cwd": os.getcwd()}, [0, 1, 2])
        answer, _ = _receive(conn)
    except OSError:
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
        status, _ = _receive(conn)
    except OSError:
        status = None
    _end_as(child, status)


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
    if status is None:  # the preloader is gone: wait for the child, whose exit code is lost
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
        signal.signal(-code, signal.SIG_DFL)
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


# --- the preloader -------------------------------------------------------------------------------------------


def _flow_modules(project: str) -> list[str]:
    """``flows.x`` for each ``flows/x.py`` entrypoint of ``deployments/prefect.yaml`` (none when it is missing)."""
    import re

    try:
        with open(os.path.join(project, "deployments", "prefect.yaml"), encoding="utf-8") as spec:
            text = spec.read()
    except OSError:
        return []
    found = re.findall(r"^\s*entrypoint:\s*([\w/]+)\.py:\w+\s*$", text, flags=re.MULTILINE)
    return sorted({path.replace("/", ".") for path in found})


def _watched_files() -> dict[str, int | None]:
    """Modification times (ns) of every imported module's file and of Prefect's settings files (``None``: absent)."""
    paths = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    home = os.environ.get("PREFECT_HOME") or os.path.join(os.path.expanduser("~"), ".prefect")
    paths.update({os.path.join(home, "profiles.toml"), os.environ.get("PREFECT_PROFILES_PATH")})
    paths.update(os.path.join(os.getcwd(), name) for name in ("prefect.toml", ".env", "pyproject.toml"))
    times: dict[str, int | None] = {}
    for path in paths:
        if isinstance(path, str) and path:
            try:
                times[path] = os.stat(path).st_mtime_ns
            except OSError:
                times[path] = None
    return times


def _changed(snapshot: dict[str, int | None]) -> bool:
    for path, before in snapshot.items():
        try:
            now: int | None = os.stat(path).st_mtime_ns
        except OSError:
            now = None
        if now != before:
            return True
    return False


def _native_threads() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 1


def serve(folder: str, key: str, owner: int, idle_seconds: float = IDLE_SECONDS) -> int:
    """The preloader: import, listen on ``<folder>/<key>.sock``, fork a child per flow run, report each child's end.
    Returns 0 when it ends (its worker gone, idle, a changed file), 1 when it need not start (another preloader
    holds ``<key>.lock``, the worker is gone already), :data:`CANNOT_SERVE` when it cannot (a thread started by an
    import)."""
    import fcntl
    import select
    import threading

    lock = os.open(os.path.join(folder, key + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 1
    try:
        owner_fd = os.pidfd_open(owner)
    except OSError:
        return 1
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _started_in.append(os.getcwd())
    import importlib

    for name in PRELOAD_MODULES + tuple(_flow_modules(project)):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a run that needs it imports it again and reports it itself
            pass
    from deployments.flow_run_engine import ENGINE_MODULE

    sys.modules.pop(ENGINE_MODULE, None)  # run as ``__main__`` by the child; its imports stay loaded
    snapshot = _watched_files()
    if threading.active_count() > 1:
        return CANNOT_SERVE  # something started a Python thread at import: a fork would lose it
    threads_at_start = _native_threads()  # (OpenBLAS's pool; it stops and starts itself around a fork)
    path = os.path.join(folder, key + ".sock")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    listener.listen(16)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    terminated: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: terminated.append(signum))
    children: dict[int, socket.socket] = {}  # child pid → its flow run's connection
    killed: set[int] = set()  # children whose flow run's process ended first
    closing = False
    import time

    last_active = time.monotonic()

    def stop_listening():
        nonlocal closing
        closing = True
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener.close()

    while True:
        if closing and not children:
            try:
                os.unlink(os.path.join(folder, key + ".lock"))  # its key names a worker that is gone or idle
            except FileNotFoundError:
                pass
            return 0
        watch = [wake_read, owner_fd, *(c for p, c in children.items() if p not in killed)]
        watch += [] if closing else [listener]
        timeout = None if children or closing else max(0.0, idle_seconds - (time.monotonic() - last_active))
        ready, _, _ = select.select(watch, [], [], timeout)
        if not ready and not children:
            stop_listening()
            continue
        if wake_read in ready:
            try:
                while os.read(wake_read, 512):
                    pass
            except BlockingIOError:
                pass
        for pid, conn in list(children.items()):  # reap whatever ended
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 256
            if done:
                try:
                    _send(conn, {"code": os.waitstatus_to_exitcode(status)})
                except OSError:
                    pass
                conn.close()
                del children[pid]
                killed.discard(pid)
                last_active = time.monotonic()
        for pid, conn in list(children.items()):
            if conn in ready and pid not in killed:  # its flow run's process ended first (killed): kill it too
                killed.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if (owner_fd in ready or terminated) and not closing:
            stop_listening()
        if not closing and listener in ready:
            last_active = time.monotonic()
            if _changed(snapshot):
                _refuse_waiting(listener)
                stop_listening()
                continue
            _accept_and_fork(listener, [lock, owner_fd, wake_read, wake_write], children, threads_at_start)


def _refuse_waiting(listener: socket.socket) -> None:
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    conn.close()


def _accept_and_fork(listener: socket.socket, own_fds: list[int], children: dict[int, socket.socket],
                     threads_at_start: int) -> None:
    """Accept one flow run and fork its child; in the preloader, record the child. The child never returns: it
    waits until the flow run's process has its pid (a ``go`` on a pipe; without it, it ends at once), then runs
    the engine and ends."""
    conn, _ = listener.accept()
    conn.settimeout(CONNECT_TIMEOUT_SECONDS)
    fds: list[int] = []
    try:
        pid_uid_gid = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        if struct.unpack("3i", pid_uid_gid)[1] != os.getuid():
            conn.close()
            return None
        request, fds = _receive(conn, with_fds=3)
    except (OSError, ValueError):
        conn.close()
        return None
    if request is None or len(fds) != 3 or _native_threads() > threads_at_start:
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(go_read)
        for fd in fds:
            os.close(fd)
        try:
            _send(conn, {"pid": pid})
            os.write(go_write, b"g")
        except OSError:
            pass  # the flow run's process is gone: without a go the child ends at once
        os.close(go_write)
        conn.settimeout(None)
        children[pid] = conn
        return None
    # --- the child: this flow run's process from here on
    try:
        os.close(go_write)
        if os.read(go_read, 1) != b"g":
            os._exit(70)
        os.close(go_read)
        listener.close()
        conn.close()
        for other in children.values():
            other.close()
        signal.set_wakeup_fd(-1)
        for fd in own_fds:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _become(request, fds)
    except BaseException:  # noqa: BLE001 - never back into the preloader's loop
        os._exit(70)
    os._exit(0)


def _become(request: dict, fds: list[int]) -> None:
    """In a forked child: take the flow run's streams, folder, environment and arguments, then run its engine."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=stream.isatty())
        except (AttributeError, ValueError, OSError):
            pass
    os.chdir(request["cwd"])
    if _started_in and sys.path and sys.path[0] == _started_in[0]:
        sys.path[0] = request["cwd"]  # as ``python -m`` started there would have it
    os.environ.clear()
    os.environ.update(request["environ"])
    sys.argv = list(request["argv"])
    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import random

    random.seed()
    from deployments.flow_run_engine import run_engine

    run_engine()


def main(argv: list[str] | None = None) -> int:
    """``python -m deployments.flow_run_preload --folder F --key K --owner PID``: started by a flow run
    (:func:`run_through_preloader`), not by hand."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m deployments.flow_run_preload")
    parser.add_argument("--folder", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--owner", type=int, required=True)
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the worker's terminal is not this process's to end
    idle = float(os.environ.get("TASKBUILDER_FLOW_RUN_PRELOAD_IDLE_SECONDS") or IDLE_SECONDS)
    try:
        code = serve(args.folder, args.key, args.owner, idle)
    except Exception:  # noqa: BLE001 - its runs run by themselves; they must not start another one each
        code = CANNOT_SERVE
    if code == CANNOT_SERVE:
        with open(os.path.join(args.folder, args.key + ".failed"), "w"):
            pass
    return code


if __name__ == "__main__":
    sys.exit(main())
