"""A worker's flow run (``python -m deployments.flow_run``, the ``taskbuilder`` pool's command) cancelled from the
API ends CANCELLED and its process goes away; one whose process is killed (SIGKILL) ends CRASHED, and so does one
whose engine is killed. The runs go through the worker's preloader (``deployments.flow_run_preload``: the
engine runs in a child forked from it), which the module's first job starts. Real Prefect server, process worker
and sandbox (tests/deployments/stack.py)."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from taskbuilder.jobspec import AnnotationJob
from tests.deployments.stack import prefect_stack, wait_until
from tests.deployments.test_flow_run_preload import alive, children_of
from tests.integration.jobs import write_small_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LAUNCH = "annotation-batch/launch-annotation-batch"
POLLING = {"interval_seconds": 0.5, "max_interval_seconds": 1.0}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _preloader(stack) -> int:
    """The worker's preloader (its owner: the worker's process)."""
    worker = next(service for service in stack.services if service.name == "worker-0").process.pid

    def find():
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                        words = cmdline.read().decode().split("\0")
                except OSError:
                    continue
                if "deployments.flow_run_preload" in words and str(worker) in words:
                    return int(entry)
        return None

    return wait_until(find, 60, "the worker's preloader")


@pytest.fixture(scope="module")
def stack():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_stack(workers=1) as running, temporary_settings({PREFECT_API_URL: running.api_url}):
        # a first job, run to the end: its process starts the worker's preloader
        first = AnnotationJob.from_yaml(write_small_job(running.home / "first", name="first")).model_dump(mode="json")
        run = running.wait_for_state(running.run_deployment(LAUNCH, {"job": first, "polling": POLLING}), FINAL, 180)
        assert run["state"]["type"] == "COMPLETED", running.state_history(run["id"])
        # participants arrive so slowly that a published study stays ACTIVE: the run waits for it
        httpx.post(running.sandbox.base_url + "/_sandbox/settings", json={"participant_arrival_per_second": 0.0001},
                   timeout=30).raise_for_status()
        yield running


def _waiting_run(stack, tmp_path, name: str) -> tuple[str, int, int]:
    """Start a job that waits for its study; return (flow run id, pid of its process, pid of its engine: a child of
    the worker's preloader) once it is polling."""
    preloader = _preloader(stack)
    before = set(children_of(preloader))
    job = AnnotationJob.from_yaml(write_small_job(tmp_path / name, name=name)).model_dump(mode="json")
    flow_run_id = stack.run_deployment(LAUNCH, {"job": job, "polling": POLLING, "wait_for_completion": True})
    stack.wait_for_state(flow_run_id, {"RUNNING"}, 180)
    wait_until(lambda: "publish" in stack.flow_run_logs(flow_run_id).lower() or None, 180, f"{name} published")
    pid = int(str(stack.flow_run(flow_run_id)["infrastructure_pid"]).rsplit(":", 1)[-1])
    os.kill(pid, 0)  # alive, on this machine
    engines = set(children_of(preloader)) - before
    assert len(engines) == 1, (engines, before)  # forked by the preloader, not run in the run's own process
    return flow_run_id, pid, engines.pop()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie the worker has not reaped yet counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_cancelled_flow_run_ends_cancelled_and_its_process_goes_away(stack, tmp_path):
    flow_run_id, pid, engine = _waiting_run(stack, tmp_path, "cancel-me")
    with stack.api() as api:
        api.post(f"/flow_runs/{flow_run_id}/set_state",
                 json={"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True}).raise_for_status()
    stack.wait_for_state(flow_run_id, {"CANCELLED"}, 120)
    wait_until(lambda: _gone(pid) or None, 60, f"process {pid} of the cancelled run ending")
    wait_until(lambda: not alive(engine) or None, 60, f"engine {engine} of the cancelled run ending")


def test_a_killed_flow_run_process_ends_crashed(stack, tmp_path):
    flow_run_id, pid, engine = _waiting_run(stack, tmp_path, "kill-me")
    os.kill(pid, signal.SIGKILL)
    run = stack.wait_for_state(flow_run_id, {"CRASHED"}, 120)
    assert run["state"]["type"] == "CRASHED"
    wait_until(lambda: not alive(engine) or None, 60, f"engine {engine} of the killed run ending")


def test_a_flow_run_whose_engine_is_killed_ends_crashed(stack, tmp_path):
    flow_run_id, pid, engine = _waiting_run(stack, tmp_path, "kill-engine")
    os.kill(engine, signal.SIGKILL)  # the run's process ends by the same signal: the worker sees a crash
    run = stack.wait_for_state(flow_run_id, {"CRASHED"}, 120)
    assert run["state"]["type"] == "CRASHED"
    wait_until(lambda: _gone(pid) or None, 60, f"process {pid} of the run ending")
