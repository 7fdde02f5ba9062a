"""A real Prefect stack for the deployment tests: server (SQLite or PostgreSQL), work pool, rate limit,
deployments from deployments/prefect.yaml, process workers, the sandbox. Everything is started as a
subprocess in its own process group and stopped (group, then any leftover descendant by PID) at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
POOL = "taskbuilder"
RATE_LIMIT = "prolific-api"
WEBHOOK_SECRET_BLOCK = "prolific-webhook-secret"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout_seconds: float, what: str, interval_seconds: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; return it. ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout_seconds
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except (httpx.HTTPError, OSError) as error:
            result, last_error = None, error
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_seconds:.0f} s"
                               + (f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""))
        time.sleep(interval_seconds)


def _descendants(pid: int) -> list[int]:
    """PIDs of every descendant of ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class _RetryOn503(httpx.HTTPTransport):
    """Sends a request again (up to 10 times, 1 s apart) while the Prefect server answers 503, the
    status it gives for retryable database errors; Prefect's own client does the same."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(10):
            response = super().handle_request(request)
            if response.status_code != 503:
                return response
            response.read()
            response.close()
            time.sleep(1)
        return response


@dataclass
class Service:
    """A process this test session started (its own process group) and its log file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self, first_signal: int = signal.SIGTERM, grace_seconds: float = 10.0) -> None:
        """Signal the group, wait, then SIGKILL the group and every leftover descendant by PID."""
        if self.process.poll() is None:
            leftovers = _descendants(self.process.pid)
            try:
                os.killpg(self.process.pid, first_signal)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                pass
            leftovers += _descendants(self.process.pid) if self.process.poll() is None else []
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait(timeout=10)


@dataclass
class Stack:
    """The running stack: URLs, environments, services, and helpers to talk to the Prefect API."""

    home: Path
    api_url: str
    env: dict[str, str]
    worker_env: dict[str, str] = field(default_factory=dict)
    sandbox: Any = None
    services: list[Service] = field(default_factory=list)
    webhook_secret: str = field(default_factory=lambda: "whsec-" + os.urandom(12).hex())
    webhook_url: str = ""

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Service:
        log_path = self.home / f"{name}.log"
        log = open(log_path, "ab")
        process = subprocess.Popen(
            command, cwd=cwd, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def prefect(self, *args: str, timeout_seconds: float = 120) -> str:
        """Run ``prefect <args>`` against this stack's server; return stdout; raise with output on failure."""
        result = subprocess.run(
            [str(BIN / "prefect"), *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout_seconds
        )
        if result.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def api(self) -> httpx.Client:
        """An httpx client on the Prefect REST API (``…/api``) that retries 503 answers (SQLite busy)."""
        return httpx.Client(base_url=self.api_url, timeout=60, transport=_RetryOn503())

    def logs(self) -> str:
        return "\n".join(f"----- {s.name} -----\n{s.log_tail()}" for s in self.services)

    # -- flow runs ---------------------------------------------------------------------------------
    def deployment(self, name: str) -> dict:
        with self.api() as api:
            response = api.get(f"/deployments/name/{name}")
            response.raise_for_status()
            return response.json()

    def run_deployment(self, name: str, parameters: dict | None = None) -> str:
        """Create a flow run of deployment ``flow/deployment`` through the REST API; return its id."""
        deployment = self.deployment(name)
        with self.api() as api:
            response = api.post(f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters or {}})
            if response.status_code >= 300:
                raise RuntimeError(f"create_flow_run {name}: {response.status_code} {response.text}")
            return response.json()["id"]

    def flow_run(self, flow_run_id: str) -> dict:
        with self.api() as api:
            response = api.get(f"/flow_runs/{flow_run_id}")
            response.raise_for_status()
            return response.json()

    def wait_for_state(self, flow_run_id: str, state_types: set[str], timeout_seconds: float) -> dict:
        """Wait until the run's state type is in ``state_types`` (e.g. {"COMPLETED"}); fail early on
        another final state. Returns the flow run."""
        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

        seen: list[str] = []

        def check():
            run = self.flow_run(flow_run_id)
            state = run["state"]["type"] if run.get("state") else None
            seen[:] = [f"{run.get('name')} {run['state']['name'] if run.get('state') else None}: {(run.get('state') or {}).get('message')}"]
            if state in state_types:
                return run
            if state in final:
                raise AssertionError(f"flow run {run['name']} ended {run['state']['name']}: {run['state'].get('message')}\n{self.logs()}")
            return None

        try:
            return wait_until(check, timeout_seconds, f"flow run {flow_run_id} reaching {state_types}")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; last seen: {seen[0] if seen else 'nothing'}\n{self.state_history(flow_run_id)}\n{self.logs()}") from None

    def state_history(self, flow_run_id: str) -> str:
        """The run's states, oldest first, one per line (``timestamp type name: message``): what a timed-out wait
        prints, to tell a run that never moved from one that moved and came back."""
        with self.api() as api:
            states = api.get("/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
        rows = sorted(states, key=lambda s: s.get("timestamp") or "") if isinstance(states, list) else []
        return "states of the run:\n" + "\n".join(f"  {s.get('timestamp')} {s.get('type')} {s.get('name')}: {s.get('message')}" for s in rows)

    def flow_runs_of(self, deployment_name: str) -> list[dict]:
        """Every flow run of deployment ``flow/deployment``, newest first."""
        deployment = self.deployment(deployment_name)
        with self.api() as api:
            response = api.post(
                "/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 200}
            )
            response.raise_for_status()
            return response.json()

    def flow_run_logs(self, flow_run_id: str) -> str:
        with self.api() as api:
            response = api.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})
            response.raise_for_status()
            return "\n".join(entry["message"] for entry in response.json())

    def events(self, name: str, since_seconds_ago: float = 600) -> list[dict]:
        """Events named ``name`` stored by the server (``POST /api/events/filter``)."""
        import datetime as dt

        since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since_seconds_ago)).isoformat()
        with self.api() as api:
            response = api.post("/events/filter", json={"filter": {"event": {"name": [name]}, "occurred": {"since": since}}, "limit": 50})
            response.raise_for_status()
            return response.json()["events"]


def _wait_healthy(stack: Stack, server: Service, timeout_seconds: float) -> None:
    def healthy():
        if server.process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited ({server.process.returncode}):\n{server.log_tail()}")
        return httpx.get(f"{stack.api_url}/health", timeout=5).status_code == 200

    wait_until(healthy, timeout_seconds, "Prefect server /api/health")


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster (trust auth, loopback, free port) in a temporary folder owned
    by user ``postgres`` (``runuser``: tests run as root); yields the SQLAlchemy URL
    ``postgresql+asyncpg://postgres@127.0.0.1:PORT/prefect``; stops the cluster and removes the folder."""
    if not (PG_BIN / "initdb").exists():
        import pytest

        pytest.skip(f"PostgreSQL 15 is not installed at {PG_BIN}")
    home = Path(tempfile.mkdtemp(prefix="taskbuilder-pg-"))
    data, socket_dir = home / "data", home / "sock"
    socket_dir.mkdir()
    shutil.chown(home, "postgres")
    shutil.chown(socket_dir, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*command: str, timeout_seconds: float = 120) -> None:
        result = subprocess.run([*as_postgres, *command], capture_output=True, text=True, timeout=timeout_seconds)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {socket_dir} -c max_connections=200 -c fsync=off"
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "postgres.log"), "-w", "-t", "60", "start")
        try:
            run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect")
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
        finally:
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


REQUEST_COUNTER = REPO / "benchmarks" / "prefect_request_counter"
"""Folder whose ``sitecustomize`` makes a process count its Prefect API requests (one JSON line at exit)."""


def request_counting_env(counts_file: Path) -> dict[str, str]:
    """Environment (``worker_env_extra``) that makes every process of the workers' environment count its Prefect
    API requests into ``counts_file`` (:data:`REQUEST_COUNTER`)."""
    return {"TASKBUILDER_COUNT_PREFECT_REQUESTS": str(counts_file),
            "PYTHONPATH": os.pathsep.join(p for p in (str(REQUEST_COUNTER), os.environ.get("PYTHONPATH", "")) if p)}


def set_up_server(api_url: str, rate_limit: tuple[int, float], webhook_secret: str) -> None:
    """The one-off set-up of deployments/README.md, done from this process (no CLI start-up cost): the
    ``taskbuilder`` process pool (``python -m deployments.work_pool``), the ``prolific-api`` rate limit
    (``prefect gcl create``), the job-record block type (``prefect block register -m tasks.records``)
    and a Secret block (the first block document, which makes the server create its encryption key)."""
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.work_pool import set_up_work_pool
    from tasks.records import JobRecord

    with temporary_settings({PREFECT_API_URL: api_url}):
        set_up_work_pool(POOL)
        with get_client(sync_client=True) as client:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=RATE_LIMIT, limit=rate_limit[0], slot_decay_per_second=rate_limit[1])
            )
        JobRecord.register_type_and_schema()
        Secret(value=webhook_secret).save(WEBHOOK_SECRET_BLOCK, overwrite=True)


def _fresh_in_process_events() -> None:
    """Stop this process's Prefect event (and log) workers, so the next ``emit_event`` starts one on the Prefect
    API then in effect: a worker keeps the API URL it was made with, and one made for an earlier module's
    stack sent this module's events to a server that had stopped (its tests waited for runs that never came)."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10, at_exit=False)


def pause_monitor_schedule(stack: Stack) -> None:
    """Turn the monitor deployment's schedule off: monitor runs happen only when a test starts one (a scheduled
    run at deploy time or under load would announce and collect before the test looks)."""
    deployment = stack.deployment("monitor-studies/monitor-studies")
    with stack.api() as api:
        for schedule in deployment["schedules"]:
            api.patch(f"/deployments/{deployment['id']}/schedules/{schedule['id']}", json={"active": False}).raise_for_status()


@contextmanager
def prefect_stack(
    *,
    database_url: str | None = None,
    workers: int = 1,
    worker_limit: int | None = None,
    rate_limit: tuple[int, float] = (20, 10.0),
    ui: bool = False,
    worker_env_extra: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start server, pool, rate limit, sandbox, deployments and ``workers`` process workers (each running
    at most ``worker_limit`` flow runs at once); yield the :class:`Stack`; stop everything (also on
    failure). ``rate_limit`` = (limit, slot decay per second); ``ui``: the server serves its web UI too;
    ``worker_env_extra``: more environment for the workers, and so for their flow runs (``stack.worker_env``)."""
    from flows.embedded_sandbox import running_sandbox

    home = Path(tempfile.mkdtemp(prefix="taskbuilder-stack-"))
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PROLIFIC_", "AWS_", "TASKBUILDER_"))}
    env.update(
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="INFO",
        PREFECT_UI_ENABLED="true" if ui else "false",
        PREFECT_UI_API_URL=api_url,
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_API_LOG_RETRYABLE_ERRORS="true",
        PREFECT_SERVER_DATABASE_TIMEOUT="60",
        PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT="30",
        PATH=f"{BIN}:{os.environ.get('PATH', '')}",
    )
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    stack = Stack(home=home, api_url=api_url, env=env)
    started = time.monotonic()

    def step(what: str) -> None:
        print(f"[stack] {what} at +{time.monotonic() - started:.1f} s", flush=True)

    with ExitStack() as cleanup:
        succeeded: list[bool] = []
        cleanup.callback(lambda: succeeded and shutil.rmtree(home, ignore_errors=True))  # last: after the services
        cleanup.callback(lambda: [service.stop() for service in reversed(stack.services)])
        server = stack.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)])
        stack.sandbox = cleanup.enter_context(running_sandbox(token="stack-token-" + os.urandom(6).hex()))
        _wait_healthy(stack, server, 120)
        step("server healthy")
        set_up_server(stack.api_url, rate_limit, stack.webhook_secret)
        step("pool, rate limit, block type and webhook secret block created")
        settings = httpx.get(f"{stack.sandbox.base_url}/_sandbox/settings", timeout=10).json()
        stack.worker_env = {
            **env,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PROLIFIC_API_URL": stack.sandbox.base_url,
            "PROLIFIC_API_TOKEN": stack.sandbox.token,
            "PROLIFIC_RATE_LIMIT_NAME": RATE_LIMIT,
            "AWS_ENDPOINT_URL": settings["object_store_endpoint_url"],
            "AWS_ACCESS_KEY_ID": settings["object_store_access_key"],
            "AWS_SECRET_ACCESS_KEY": settings["object_store_secret_key"],
            "AWS_DEFAULT_REGION": settings["object_store_region"],
            "TASKBUILDER_LOCK_DIR": str(home / "locks"),
            "TASKBUILDER_RETRY_BASE_SECONDS": "0.2",
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
            "PYTHONUNBUFFERED": "1",
            # SQLite answers concurrent writers with "database is locked" (503 from the server): let the
            # flow runs' Prefect client retry longer than its default 5 times
            "PREFECT_CLIENT_MAX_RETRIES": "10",
            **(worker_env_extra or {}),
        }
        for number in range(workers):  # workers start while the deployments are created
            stack.start(
                f"worker-{number}",
                [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", f"worker-{number}"]
                + (["--limit", str(worker_limit)] if worker_limit else []),
                env=stack.worker_env,
            )
        stack.prefect("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml", timeout_seconds=180)
        step(f"deployed; {workers} worker(s) started")
        _fresh_in_process_events()
        cleanup.callback(_fresh_in_process_events)
        try:
            yield stack
        except BaseException:
            print(f"[stack] failed: logs and databases kept in {home}", flush=True)
            raise
        succeeded.append(True)
