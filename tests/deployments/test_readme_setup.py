"""deployments/README.md's one-machine set-up, run as written from a fresh Prefect home.

The first ``bash`` block under "Set up one machine" is run by ``bash -e`` with the project's venv first
on PATH (the README's ``. .venv/bin/activate``), ``PROLIFIC_API_TOKEN`` exported (as the README asks),
no PREFECT_* setting inherited, and one change: port 4200 becomes a free port. Then the server must hold
what the block promises: the pool, the rate limit, the job-record block type, the token's Secret block
and the five deployments.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.deployments.stack import BIN, POOL, RATE_LIMIT, REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

README = REPO / "deployments" / "README.md"


def set_up_block() -> str:
    text = README.read_text()
    section = text[text.index("## Set up one machine"):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_readme_set_up_commands_work_as_written_from_a_fresh_prefect_home():
    port = free_port()
    script = set_up_block()
    assert "4200" in script and "/health" in script
    home = Path(tempfile.mkdtemp(prefix="taskbuilder-readme-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PROLIFIC_", "AWS_"))}
    token = "readme-token-" + os.urandom(6).hex()
    env.update(PREFECT_HOME=str(home / "prefect"), PROLIFIC_API_TOKEN=token, PATH=f"{BIN}:{env.get('PATH', '')}",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_UI_ENABLED="false")
    log_path = home / "readme.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["bash", "-e", "-c", script.replace("4200", str(port))], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        returncode = process.wait(timeout=240)
        assert returncode == 0, log_path.read_text(errors="replace")[-4000:]
        api = f"http://127.0.0.1:{port}/api"
        with httpx.Client(base_url=api, timeout=30) as client:
            pool = client.get(f"/work_pools/{POOL}").json()
            assert pool["type"] == "process"
            command = pool["base_job_template"]["variables"]["properties"]["command"]["default"]
            assert command.endswith(" -m deployments.flow_run"), command  # one process per flow run
            assert client.get(f"/v2/concurrency_limits/{RATE_LIMIT}").json()["limit"] == 5
            assert client.get("/block_types/slug/taskbuilder-job-record").status_code == 200
            deployments = client.post("/deployments/filter", json={}).json()
            assert sorted(d["name"] for d in deployments) == ["add-study-places", "collect-report", "launch-annotation-batch", "launch-from-s3",
                                                                "launch-from-spec", "monitor-studies", "pause-study", "resume-study", "stop-study"]
        from prefect.blocks.system import Secret
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api}):
            assert Secret.load("prolific-api-token").get() == token
        assert token not in log_path.read_text(errors="replace")
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the server the block started in the background
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
