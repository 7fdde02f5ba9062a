"""The CLI ends its process at once after a command (no interpreter teardown, issue 18's B8), and only after
Prefect's queued logs and events were sent: a flow run's last log line still reaches the API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": REPO, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env=environment, cwd=REPO)


def test_exit_code_and_output_are_kept():
    done = run_python("""
        from tasks.process_exit import exit_now
        print("written before the exit", end="")
        exit_now(3)
        print("never")
    """)
    assert (done.returncode, done.stdout) == (3, "written before the exit"), done.stderr
    message = run_python("from tasks.process_exit import exit_now; exit_now('what to do')")
    assert message.returncode == 1 and message.stderr.strip() == "what to do"
    assert run_python("from tasks.process_exit import exit_now; exit_now(None)").returncode == 0


def test_a_flow_runs_last_log_line_reaches_the_api_before_the_process_ends(prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL

    marker = f"last-line-{uuid.uuid4().hex}"
    done = run_python(f"""
        from prefect import flow, get_run_logger
        from prefect.runtime import flow_run
        from tasks.process_exit import exit_now

        @flow(name="exit-now-check")
        def check():
            get_run_logger().info("{marker}")
            return flow_run.id

        print(check())
        exit_now(0)  # a plain os._exit here loses the queued line (tried: the test fails)
    """, PREFECT_API_URL=str(PREFECT_API_URL.value()), PREFECT_LOGGING_TO_API_ENABLED="true",
       PREFECT_LOGGING_TO_API_BATCH_INTERVAL="30")  # a batch still queued at the end: only the drain sends it
    assert done.returncode == 0, done.stderr[-3000:]
    flow_run_id = done.stdout.strip().splitlines()[-1]
    messages: list[str] = []
    for _ in range(20):  # the server stores what it was sent a moment later
        with get_client(sync_client=True) as client:
            messages = [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(flow_run_id)])))]
        if marker in messages:
            break
        time.sleep(0.5)
    assert marker in messages, messages


def test_the_drain_of_queued_events_says_nothing_after_the_answer(prefect_harness):
    from prefect.settings import PREFECT_API_URL

    done = run_python("""
        from prefect.events import emit_event
        from tasks.process_exit import exit_now

        for n in range(50):  # queued: the drain at exit sends them
            emit_event(event="taskbuilder.test.exit-drain", resource={"prefect.resource.id": f"taskbuilder.test.{n}"})
        print("the answer")
        exit_now(0)
    """, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    assert done.returncode == 0 and done.stdout.strip() == "the answer", done.stderr[-2000:]
    assert "Still processing items" not in done.stderr, done.stderr[-2000:]
