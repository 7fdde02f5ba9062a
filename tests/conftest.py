"""Shared test setup: Prefect isolated per session, the sandbox as a real subprocess, shared data.

Environment set here, before any test module imports Prefect: a temporary ``PREFECT_HOME`` (so no
run sees another session's database or cached results), no analytics, short task-retry delays.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="taskbuilder-tests-"))
for _name, _value in {
    "PREFECT_HOME": str(_SESSION_HOME / "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "240",
    "PREFECT_LOGGING_LEVEL": "INFO",
    # In-process flow runs keep their logs local: shipping them to the harness's API queues thousands
    # of items that Prefect drains at interpreter exit, after the harness server is gone (a CI run
    # spent its last half hour there). Subprocess stacks (tests/deployments) set their own env.
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "TASKBUILDER_RETRY_BASE_SECONDS": "0.2",
    "TASKBUILDER_LOCK_DIR": str(_SESSION_HOME / "locks"),
    # CLI runs in tests use the harness (or the PREFECT_API_URL they are given), never a local server that
    # stays; the tests of that server turn it back on with their own PREFECT_HOME and stop it.
    "TASKBUILDER_LOCAL_SERVER": "0",
}.items():
    os.environ[_name] = _value
for _name in ("PROLIFIC_API_URL", "PROLIFIC_API_TOKEN", "PROLIFIC_WORKSPACE_ID", "PREFECT_API_URL"):
    os.environ.pop(_name, None)

import httpx  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
UCI_DIR = SHARED / "data" / "sentiment-labelled-sentences"


def require_shared(path: Path = UCI_DIR) -> Path:
    """Skip the calling test with a clear reason when ``../shared`` (or ``path`` in it) is absent."""
    if not path.exists():
        pytest.skip(f"needs {path} (the shared folder beside the checkout); it is absent here")
    return path


@pytest.fixture(scope="session")
def sandbox_process():
    """One sandbox subprocess for the session (``python -m sandbox --port 0``), stopped at the end."""
    from flows.embedded_sandbox import running_sandbox

    with running_sandbox(token="test-token-not-secret-" + os.urandom(6).hex()) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_process, monkeypatch):
    """The session's sandbox, reset (resources, request log, fault rules) and with default settings
    restored for this test; ``PROLIFIC_API_TOKEN`` set to its token."""
    control = httpx.Client(base_url=sandbox_process.base_url, timeout=30)
    control.post("/_sandbox/reset").raise_for_status()
    defaults = control.get("/_sandbox/settings").json()
    monkeypatch.setenv("PROLIFIC_API_TOKEN", sandbox_process.token)
    yield SandboxHandle(sandbox_process, control)
    control.delete("/_sandbox/faults")
    writable = {k: v for k, v in defaults.items() if not k.startswith("object_store")}
    control.post("/_sandbox/settings", json=writable)
    control.close()


class SandboxHandle:
    """The running sandbox plus its control plane (``/_sandbox/…``)."""

    def __init__(self, process, control: httpx.Client):
        self.base_url = process.base_url
        self.token = process.token
        self.control = control

    def settings(self, **changes):
        """POST settings changes; return the settings after."""
        response = self.control.post("/_sandbox/settings", json=changes)
        response.raise_for_status()
        return response.json()

    def faults(self, *rules: dict) -> None:
        """Install fault rules (``POST /_sandbox/faults``)."""
        self.control.post("/_sandbox/faults", json={"rules": list(rules)}).raise_for_status()

    def requests(self) -> list[dict]:
        """The request log, in order."""
        return self.control.get("/_sandbox/requests").json()["requests"]

    def count(self, method: str, path_glob: str, target: str = "api") -> int:
        """How many logged requests match ``method`` and the glob ``path_glob`` (trailing slash ignored)."""
        from fnmatch import fnmatch

        return sum(
            1
            for r in self.requests()
            if r["target"] == target and r["method"] == method and fnmatch(r["path"].rstrip("/"), path_glob.rstrip("/"))
        )


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for the flow tests of this session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # No heartbeats in tests: a sync flow otherwise waits ~1 s on exit for its heartbeat thread
    # (prefect-notes §8). Subprocess runs (crash and deployment tests) keep them.
    with prefect_test_harness(server_startup_timeout=240), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
        _bound_harness_drain()


HARNESS_DRAIN_SECONDS = 15


def _bound_harness_drain() -> None:
    """Bound the harness's shutdown drain of Prefect's log and event workers.

    Seen in a full run under load: ``prefect_test_harness``'s exit waited forever in that drain (an
    awaited future that never completed), after every test had passed; in later full runs it did not
    finish within 60 s either. Nothing is lost by cutting it: the session's tests are all done. The drain is awaited on
    Prefect's event loop, so ``asyncio.wait_for`` can end it; the harness then stops its server as usual.
    """
    import asyncio
    import warnings

    import prefect.testing.utilities as harness_module

    original = harness_module.run_coro_as_sync

    def bounded(coroutine, *args, **kwargs):
        async def drain_with_deadline():
            try:
                return await asyncio.wait_for(coroutine, HARNESS_DRAIN_SECONDS)
            except asyncio.TimeoutError:
                warnings.warn(f"Prefect's test harness drain did not finish in {HARNESS_DRAIN_SECONDS} s; stopping anyway")

        return original(drain_with_deadline(), *args, **kwargs)

    harness_module.run_coro_as_sync = bounded


@pytest.fixture
def isolated_results(tmp_path, monkeypatch):
    """Fresh Prefect result storage for this test (cache records never leak between tests)."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: tmp_path / "storage"}):
        yield tmp_path / "storage"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N`` (``make test``), keep a module's tests on one worker when they share a
    module-scoped fixture (a Prefect stack, a PostgreSQL cluster, a started server): started once, not once
    per worker that happens to draw one of its tests. ``--dist loadgroup`` reads this group, in xdist's own
    ``pytest_collection_modifyitems`` on each worker: this hook runs first (``tryfirst``), or the group is
    added after xdist looked and a module's tests are spread over the workers, each with a stack of its own."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        scopes = {d.scope for defs in (definitions.name2fixturedefs.values() if definitions else ()) for d in defs}
        if "module" in scopes:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


_EXIT_STATUS: int | None = None


def pytest_sessionfinish(session, exitstatus):
    global _EXIT_STATUS
    _EXIT_STATUS = int(exitstatus)
    from flows.local_server import stop_server

    stop_server(_SESSION_HOME / "prefect")  # a safety net: no test leaves a local Prefect server running


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave the process as soon as pytest has reported, with pytest's exit status.

    Every fixture (sandbox, harness, servers) is torn down by then. What remains are Prefect's
    at-exit drains of its log and event queues, which wait without a deadline for an API server the
    harness already stopped; one CI run was killed there. ``os._exit`` skips them; the status is kept.
    """
    import sys

    if _EXIT_STATUS is None or os.environ.get("TASKBUILDER_TESTS_NORMAL_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS)
