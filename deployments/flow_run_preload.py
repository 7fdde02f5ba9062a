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

import os
import signal
import socket
import struct
import sys

from deployments.preload_client import (CANNOT_SERVE, CONNECT_TIMEOUT_SECONDS, FORWARDED_SIGNALS, IDLE_SECONDS,
                                        PRELOAD_MODULES, SETTINGS_FILES, receive_message, send_message)

_started_in: list[str] = []  # the preloader's working folder at its start (``sys.path[0]`` under ``-m``)

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


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _watched_files() -> dict[str, int | None]:
    """Modification times (ns) of every imported module's file and of Prefect's settings files (``None``: absent)."""
    paths = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    home = os.environ.get("PREFECT_HOME") or os.path.join(os.path.expanduser("~"), ".prefect")
    paths.update({os.path.join(home, "profiles.toml"), os.environ.get("PREFECT_PROFILES_PATH")})
    paths.update(os.path.join(os.getcwd(), name) for name in SETTINGS_FILES)
    return {path: _mtime_ns(path) for path in paths if isinstance(path, str) and path}


def _changed(snapshot: dict[str, int | None]) -> bool:
    return any(_mtime_ns(path) != before for path, before in snapshot.items())


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
    import time

    importing_since_ns = time.time_ns()

    for name in PRELOAD_MODULES + tuple(_flow_modules(project)):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a run that needs it imports it again and reports it itself
            pass
    from deployments.flow_run_engine import ENGINE_MODULE

    sys.modules.pop(ENGINE_MODULE, None)  # run as ``__main__`` by the child; its imports stay loaded
    snapshot = _watched_files()
    if any(mtime is not None and mtime >= importing_since_ns for mtime in snapshot.values()):
        return 0  # a file changed while it was imported: which code is loaded is not known; the next run starts anew
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
    bound = os.stat(path).st_ino
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
    last_active = time.monotonic()

    def stop_listening():
        """No more runs: the socket goes (if still this one's) and the lock too, so that a fresh preloader can
        start at once while this one waits for the children it has."""
        nonlocal closing
        closing = True
        try:
            if os.stat(path).st_ino == bound:
                os.unlink(path)
        except FileNotFoundError:
            pass
        listener.close()
        os.close(lock)  # releases the flock (the file stays: removing it would race another preloader's flock)

    while True:
        if closing and not children:
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
                    send_message(conn, {"code": os.waitstatus_to_exitcode(status)})
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
    import time

    try:
        conn, _ = listener.accept()
    except OSError:
        return None
    deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS  # for the whole request, however it trickles in
    fds: list[int] = []
    try:
        pid_uid_gid = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        if struct.unpack("3i", pid_uid_gid)[1] != os.getuid():
            conn.close()
            return None
        request, fds = receive_message(conn, with_fds=3, deadline=deadline)
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    if request is None or len(fds) != 3 or _native_threads() > threads_at_start:
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    go_read, go_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process to be had (EAGAIN, ENOMEM): the run runs by itself, the others go on
        for fd in (*fds, go_read, go_write):
            os.close(fd)
        conn.close()
        return None
    if pid:
        os.close(go_read)
        for fd in fds:
            os.close(fd)
        try:
            # the run's process takes the child (its ack) or, gone or given up, does not: only then a go
            send_message(conn, {"pid": pid})
            ack, _ = receive_message(conn, deadline=time.monotonic() + CONNECT_TIMEOUT_SECONDS)
            if ack == {"ack": pid}:
                os.write(go_write, b"g")
        except (OSError, ValueError):
            pass  # without a go the child ends at once
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
    except BaseException:  # noqa: BLE001 - never back into the preloader's loop
        os._exit(70)
    try:
        _become(request, fds)
    except KeyboardInterrupt:  # as Python ends on one: by SIGINT
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # noqa: BLE001 - as Python ends on an uncaught exception: its traceback, exit 1
        import traceback

        traceback.print_exc()
        _flush()
        os._exit(1)
    os._exit(0)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


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
    numpy = sys.modules.get("numpy")
    if numpy is not None:  # each run its own draws, as a process of its own has (the hash seed stays shared)
        numpy.random.seed()
    from deployments.flow_run_engine import run_engine

    run_engine()


def main(argv: list[str] | None = None) -> int:
    """``python -m deployments.flow_run_preload --folder F --key K --owner PID``: started by a flow run
    (:func:`deployments.preload_client.run_through_preloader`), not by hand."""
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
