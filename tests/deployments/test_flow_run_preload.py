"""A worker's flow runs forked from its preloader (``deployments.flow_run_preload``): real processes, real Unix
sockets, Prefect's real engine (no Prefect server: a flow run id it refuses, or an API that never answers, so the
engine exits 1 or waits). The test process plays the worker: it is the parent of each ``python -m
deployments.flow_run`` and so the preloader's owner."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from deployments import preload_client as preload
from tests.deployments.stack import wait_until

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not preload.enabled({}), reason="flow-run preloading needs Linux (fork, pidfd_open)")]

REPO = Path(__file__).resolve().parents[2]


class Runs:
    """The environment of this module's flow runs and what they started."""

    def __init__(self, temp: Path, api_url: str):
        self.temp = temp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TASKBUILDER_", "PYTEST_"))}
        self.env.update(TMPDIR=str(temp), PREFECT_HOME=str(temp / "prefect"), PREFECT_API_URL=api_url,
                        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
                        TASKBUILDER_FLOW_RUN_PRELOAD_IDLE_SECONDS="120")
        self.folder = temp / f"taskbuilder-flow-runs-{os.getuid()}"
        self.started: list[subprocess.Popen] = []

    def start(self, flow_run_id: str, cwd: Path | None = None, **extra_env: str) -> subprocess.Popen:
        """``python -m deployments.flow_run`` as a worker starts it: ``PREFECT__FLOW_RUN_ID`` set, a working folder of
        its own, output to pipes."""
        cwd = cwd or Path(tempfile.mkdtemp(dir=self.temp, prefix="run-"))
        process = subprocess.Popen([sys.executable, "-m", "deployments.flow_run"], cwd=cwd, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   env={**self.env, "PREFECT__FLOW_RUN_ID": flow_run_id, "PYTHONPATH": str(REPO),
                                        **extra_env})
        process.run_folder = cwd
        self.started.append(process)
        return process

    def preloaders(self) -> list[int]:
        """Live preloaders of this module's runs (owner: this process; socket folder: this module's)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    words = (entry / "cmdline").read_bytes().decode().split("\0")
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue
                if ("deployments.flow_run_preload" in words and str(self.folder) in words
                        and str(os.getpid()) in words and state != "Z"):
                    found.append(int(entry.name))
        return found

    def serving_besides(self, old: int) -> int:
        """A preloader listening other than ``old`` (which may still be reaping its children)."""
        return wait_until(lambda: next((p for p in self.preloaders() if p != old), None)
                          and list(self.folder.glob("*.sock")) and next(p for p in self.preloaders() if p != old),
                          120, "a fresh preloader listening")

    def serving(self) -> int:
        """The one preloader listening, once it listens (its socket is there)."""
        return wait_until(lambda: len(self.preloaders()) == 1 and list(self.folder.glob("*.sock"))
                          and self.preloaders()[0], 120, "a preloader listening")


def children_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def runs():
    silent = socket.socket()  # an API that takes connections and never answers: the engine waits on it
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    temp = Path(tempfile.mkdtemp(prefix="tbpl-", dir="/tmp"))  # short: a Unix socket path has 108 bytes
    made = Runs(temp, f"http://127.0.0.1:{silent.getsockname()[1]}/api")
    try:
        yield made
    finally:
        for process in made.started:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        for pid in made.preloaders():
            for child in children_of(pid):
                os.kill(child, signal.SIGKILL)
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not made.preloaders() or None, 30, "the preloaders ending")
        silent.close()
        shutil.rmtree(temp, ignore_errors=True)


def _refused(runs: Runs, **extra_env: str) -> str:
    """Run a flow run whose id the engine refuses; its exit code must be 1; return its output."""
    process = runs.start("not-a-flow-run-id", **extra_env)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 1, out
    assert "Invalid flow run id" in out, out
    return out


def _waiting_child(runs: Runs, preloader: int, before: set[int]) -> tuple[subprocess.Popen, int]:
    """A flow run whose engine waits on the silent API; (its process, its child forked by ``preloader``)."""
    process = runs.start(str(uuid.uuid4()))
    child = wait_until(lambda: next(iter(set(children_of(preloader)) - before), None), 60, "the run's child")
    return process, child


def test_the_first_run_starts_a_preloader_and_every_run_is_forked_from_it(runs):
    assert not runs.preloaders()
    by_itself = _refused(runs, TASKBUILDER_FLOW_RUN_PRELOAD="0")  # what a run of its own prints
    assert not runs.preloaders()
    first = _refused(runs)  # starts the preloader, waits for it, is forked from it
    preloader = runs.serving()
    second = _refused(runs)  # forked: the child's output reached the run's own pipe, its exit code the run's
    # the same sys.argv (the forked engine's logging is set up already, so its line has Prefect's prefix)
    received = [[line[line.index("Invalid"):] for line in out.splitlines() if "Received arguments" in line]
                for out in (by_itself, first, second)]
    assert received[0] == received[1] == received[2] and len(received[0]) == 1, received
    assert "| ERROR   | prefect.engine" not in by_itself and "| ERROR   | prefect.engine" in first, first  # forked
    assert "RuntimeWarning" not in first + second  # nothing a run of its own would not print
    assert runs.preloaders() == [preloader]

    process, child = _waiting_child(runs, preloader, set())  # its own id (env), its own folder (cwd)
    assert Path(f"/proc/{child}/cwd").resolve() == process.run_folder.resolve()
    assert os.getsid(child) == child  # a session of its own, as the run's process has
    process.kill()
    process.wait(10)


def test_signals_reach_the_child_and_the_run_ends_as_its_child_did(runs):
    preloader = runs.serving()
    process, child = _waiting_child(runs, preloader, set(children_of(preloader)))
    process.send_signal(signal.SIGTERM)  # a cancel: the engine has not taken SIGTERM yet, so it ends by it
    process.wait(30)
    assert process.returncode == -signal.SIGTERM
    wait_until(lambda: not alive(child) or None, 30, "the child ending")


def test_a_killed_run_process_takes_its_child_with_it(runs):
    preloader = runs.serving()
    process, child = _waiting_child(runs, preloader, set(children_of(preloader)))
    process.kill()  # SIGKILL: nothing to send on; the preloader sees the connection close
    process.wait(10)
    wait_until(lambda: not alive(child) or None, 30, "the child of a killed run ending")
    assert runs.preloaders() == [preloader]  # and it goes on serving
    _refused(runs)


def test_a_child_killed_outright_ends_its_run_by_the_same_signal(runs):
    preloader = runs.serving()
    process, child = _waiting_child(runs, preloader, set(children_of(preloader)))
    os.kill(child, signal.SIGKILL)  # the OOM killer, say: the worker must see -9, as from a run by itself
    process.wait(30)
    assert process.returncode == -signal.SIGKILL, process.communicate()[0][-2000:]


def test_two_runs_at_once_are_two_children(runs):
    preloader = runs.serving()
    one, child_one = _waiting_child(runs, preloader, set(children_of(preloader)))
    two, child_two = _waiting_child(runs, preloader, set(children_of(preloader)))
    assert child_one != child_two and {child_one, child_two} <= set(children_of(preloader))
    for process in (one, two):
        process.send_signal(signal.SIGINT)  # the engine's KeyboardInterrupt: it ends by SIGINT, as by itself
        process.wait(30)
        assert process.returncode == -signal.SIGINT
    wait_until(lambda: not (alive(child_one) or alive(child_two)) or None, 30, "both children ending")


def test_a_changed_settings_file_makes_the_preloader_refuse_and_end(runs):
    preloader = runs.serving()
    profiles = Path(runs.env["PREFECT_HOME"]) / "profiles.toml"  # absent when it imported Prefect
    profiles.parent.mkdir(parents=True, exist_ok=True)
    profiles.write_text('active = "default"\n\n[profiles.default]\n')
    try:
        _refused(runs)  # refused by the preloader: the run's engine ran in its own process
        wait_until(lambda: not alive(preloader) or None, 30, "the stale preloader ending")
        assert not list(runs.folder.glob("*.sock"))
        _refused(runs)  # starts a fresh one, which imported with the file there
        assert runs.serving() != preloader
    finally:
        profiles.unlink()
    _refused(runs)  # the fresh one saw the file go: refused again, and ends
    wait_until(lambda: not runs.preloaders() or None, 30, "that preloader ending")


def test_a_change_while_a_run_goes_on_does_not_hold_up_the_next_runs(runs):
    _refused(runs)  # starts one (the test before ended its)
    preloader = runs.serving()
    process, child = _waiting_child(runs, preloader, set(children_of(preloader)))
    profiles = Path(runs.env["PREFECT_HOME"]) / "profiles.toml"
    profiles.parent.mkdir(parents=True, exist_ok=True)
    profiles.write_text('active = "default"\n\n[profiles.default]\n')
    try:
        _refused(runs)  # refused: by itself; the old preloader stops listening but keeps its running child
        started = time.monotonic()
        _refused(runs)  # a fresh preloader starts at once (the old one let go of the key's lock)
        assert time.monotonic() - started < 20
        fresh = runs.serving_besides(preloader)
        assert fresh != preloader and alive(preloader) and alive(child)
    finally:
        process.kill()
        process.wait(10)
        profiles.unlink()
    wait_until(lambda: not alive(preloader) or None, 30, "the old preloader ending after its last child")


def test_switched_off_or_by_hand_no_preloader(runs):
    for pid in runs.preloaders():  # none from the tests before
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not runs.preloaders() or None, 30, "no preloader")
    _refused(runs, TASKBUILDER_FLOW_RUN_PRELOAD="0")
    by_hand = subprocess.run([sys.executable, "-m", "deployments.flow_run", "not-a-flow-run-id"], cwd=runs.temp,
                             env={**runs.env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert by_hand.returncode == 1 and "Invalid flow run id" in by_hand.stdout + by_hand.stderr
    time.sleep(3)  # a preloader would have started by now (it starts at once, in the background)
    assert not runs.preloaders()


def test_a_long_temp_folder_or_a_failed_start_means_runs_by_themselves(runs):
    for pid in runs.preloaders():
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not runs.preloaders() or None, 30, "no preloader")
    deep = runs.temp / ("d" * 60) / ("e" * 60)  # a socket path there is longer than Linux allows
    deep.mkdir(parents=True)
    out = _refused(runs, TMPDIR=str(deep))
    assert "| ERROR   | prefect.engine" not in out  # by itself
    time.sleep(2)
    assert not runs.preloaders() and not list(deep.glob("*/*")), "a preloader was started there"

    marked = {**runs.env, "TASKBUILDER_MARK": "failed-start"}  # another key: its own preloader
    key = preload.preloader_key(sys.executable, str(runs.temp), {**marked, "PYTHONPATH": str(REPO)}, os.getpid())
    runs.folder.mkdir(exist_ok=True)
    (runs.folder / f"{key}.failed").touch()  # one of this key failed to start a moment ago
    out = _refused(runs, TASKBUILDER_MARK="failed-start")
    assert "| ERROR   | prefect.engine" not in out
    assert not runs.preloaders() and not (runs.folder / f"{key}.lock").exists()


def test_the_key_is_the_environment_but_not_the_runs_context_nor_a_temporary_folder(tmp_path):
    base = {"PATH": "/bin", "PREFECT_API_URL": "http://a/api"}
    key = preload.preloader_key("/py", str(tmp_path), base, 10)
    assert preload.preloader_key("/py", "/elsewhere", {**base, "PREFECT__FLOW_RUN_ID": "x"}, 10) == key
    assert preload.preloader_key("/py", str(tmp_path), {**base, "PREFECT_API_URL": "http://b/api"}, 10) != key
    assert preload.preloader_key("/py", str(tmp_path), base, 11) != key  # another worker
    assert preload.preloader_key("/other/py", str(tmp_path), base, 10) != key
    (tmp_path / "prefect.toml").write_text("")  # settings Prefect reads at import, from this folder
    assert preload.preloader_key("/py", str(tmp_path), base, 10) != key


def test_a_socket_folder_others_can_open_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # read TMPDIR again
    try:
        folder = tmp_path / f"taskbuilder-flow-runs-{os.getuid()}"
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
        assert preload.socket_folder() is None
        folder.chmod(0o700)
        assert preload.socket_folder() == str(folder)
    finally:
        tempfile.tempdir = None
