"""Exactly-once effects under faults, crashes and duplicate runs (issue "Exactly-once effects").

Each case runs the real flow against the real sandbox, with the sandbox's fault rules, and counts in
the sandbox's request log and resource lists what was created and published.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from flows.annotation_batch import annotation_batch
from taskbuilder.client import ClientTimeouts
from taskbuilder.jobkey import job_key_of, tag_of
from taskbuilder.polling import PollSettings
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection

from tests.integration.jobs import write_small_job

REPO = Path(__file__).resolve().parents[2]
FAST = PollSettings(interval_seconds=0.2, max_interval_seconds=0.5, dataset_timeout_seconds=60, batch_timeout_seconds=60, study_timeout_seconds=120)
SHORT_TIMEOUTS = ClientTimeouts(read_seconds=1.5, poll_read_seconds=1.5, upload_read_seconds=3, connect_seconds=2)
QUICK_SANDBOX = dict(dataset_processing_seconds=0.2, batch_setup_seconds=0.2)

# (step name, target, method, path glob, needs the study to finish)
STEPS = [
    ("price job", "api", "POST", "/api/v1/study-cost-calculator/", False),
    ("create dataset", "api", "POST", "/api/v1/data-collection/datasets", False),
    ("upload url", "api", "GET", "/api/v1/data-collection/datasets/*/upload-url/*", False),
    ("upload", "s3", "PUT", "*", False),
    ("import status", "api", "GET", "/api/v1/data-collection/datasets/*/imports/*", False),
    ("list batches", "api", "GET", "/api/v1/data-collection/batches*", False),
    ("create batch", "api", "POST", "/api/v1/data-collection/batches", False),
    ("instructions", "api", "POST", "/api/v1/data-collection/batches/*/instructions*", False),
    ("setup", "api", "POST", "/api/v1/data-collection/batches/*/setup*", False),
    ("batch status", "api", "GET", "/api/v1/data-collection/batches/*/status*", False),
    ("create study", "api", "POST", "/api/v1/studies/", False),
    ("study cost", "api", "GET", "/api/v1/studies/*/cost/", False),
    ("publish", "api", "POST", "/api/v1/studies/*/transition/", False),
    ("study status", "api", "GET", "/api/v1/studies/*", True),
    ("report", "api", "GET", "/api/v1/data-collection/batches/*/report*", True),
]
V3_STEPS = {"instructions"}
"""Steps of the seed's path only (``dataset.version: 3``: the legacy instructions endpoint)."""
SMALL_DATASET = {"name": "small", "csv": "data.csv", "id_column": "id", "gold_column": "META_gold"}
EFFECTS = {
    "429 Retry-After": {"effect": "status", "status": 429, "retry_after": 1},
    "500": {"effect": "status", "status": 500},
    "503": {"effect": "status", "status": 503},
    "drop": {"effect": "drop"},
    "lost response": {"effect": "lost_response"},
    "slow past timeout": {"effect": "delay", "delay_seconds": 2.5},
}
MATRIX = [(step, effect) for step in STEPS for effect in EFFECTS] + [
    (("upload", "s3", "PUT", "*", False), "s3 503 SlowDown"),
]


def _run(sandbox, spec: Path, **kwargs):
    job = AnnotationJob.from_yaml(spec)
    connection = ProlificConnection(base_url=sandbox.base_url, timeouts=SHORT_TIMEOUTS)
    return annotation_batch(job=job, connection=connection, polling=FAST, **kwargs)


def batches_and_studies(sandbox) -> tuple[list[dict], list[dict]]:
    """The workspace's batches and the account's studies on the sandbox, as the API lists them."""
    headers = {"Authorization": f"Token {sandbox.token}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=30) as api:
        workspace = api.get("/api/v1/workspaces/").json()["results"][0]["id"]
        batches = api.get("/api/v1/data-collection/batches", params={"workspace_id": workspace}).json()["results"]
        studies = api.get("/api/v1/studies/").json()["results"]
    return batches, studies


def tags_on_server(sandbox) -> set:
    """The :class:`~taskbuilder.jobkey.JobTag` of every batch and study on the sandbox."""
    batches, studies = batches_and_studies(sandbox)
    return {tag_of(b["name"]) for b in batches} | {tag_of(s.get("internal_name")) for s in studies}


def resources(sandbox, job_key: str, lost_responses: bool = False) -> dict[str, int]:
    """What exists on the sandbox for ``job_key``, and how often each effect was carried out there.

    A request counts as carried out when the sandbox answered it 2xx, or logged it with status 0 while
    a ``lost_response`` rule was set (done on the server, then the connection dropped); a ``drop``
    (also status 0) is not carried out.
    """
    batches, studies = batches_and_studies(sandbox)
    log = sandbox.requests()

    def carried_out(request: dict) -> bool:
        return 200 <= request["status"] < 300 or (lost_responses and request["status"] == 0)

    return {
        "batches": sum(1 for b in batches if job_key_of(b["name"]) == job_key),
        "studies": sum(1 for s in studies if job_key_of(s.get("internal_name")) == job_key),
        "dataset creates": sum(
            1 for r in log
            if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/data-collection/datasets" and carried_out(r)
        ),
        "publishes": sum(
            1 for r in log if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition") and carried_out(r)
        ),
        "uploads": sum(1 for r in log if r["target"] == "s3" and r["method"] == "PUT" and carried_out(r)),
    }


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
@pytest.mark.parametrize("step,effect", MATRIX, ids=[f"{s[0]}-{e}" for s, e in MATRIX])
def test_fault_matrix(step, effect, tmp_path, sandbox):
    name, target, method, glob, needs_completion = step
    sandbox.settings(**QUICK_SANDBOX)
    rule = {"target": target, "method": method, "path": glob, "nth": 1}
    rule.update(EFFECTS.get(effect) or {"effect": "status", "status": 503, "retry_after": 1})
    sandbox.faults(rule)
    v3 = {"dataset": {**SMALL_DATASET, "version": 3}} if name in V3_STEPS else {}  # only the seed's path has them
    spec = write_small_job(tmp_path, wait_for_completion=needs_completion, **v3)
    summary = _run(sandbox, spec)

    counts = resources(sandbox, summary["job_key"], lost_responses=rule["effect"] == "lost_response")
    print(f"\n[matrix] {name} × {effect}: {counts}")
    assert summary["published"] is True
    assert counts["batches"] == 1 and counts["studies"] == 1
    assert counts["dataset creates"] <= 2
    if counts["dataset creates"] == 2:
        assert any("extra empty dataset" in note for note in summary["notes"]), summary["notes"]
    assert counts["publishes"] == 1
    assert counts["uploads"] == 1  # the file went up once: a second upload would be a second import of every record
    fired = [r for r in sandbox.requests() if r["target"] == target and r["method"] == method and fnmatch(r["path"], glob)]
    if rule["effect"] == "status":
        assert fired and fired[0]["status"] == rule["status"], "the fault did not fire"
    elif rule["effect"] in ("drop", "lost_response"):
        assert fired and fired[0]["status"] == 0, "the fault did not fire"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_expired_upload_url_is_refreshed(tmp_path, sandbox):
    sandbox.settings(upload_url_expires_seconds=1, **QUICK_SANDBOX)
    sandbox.faults({"target": "s3", "method": "PUT", "path": "*", "nth": 1, "effect": "delay", "delay_seconds": 2})
    summary = _run(sandbox, write_small_job(tmp_path, wait_for_completion=False))
    assert summary["published"] is True
    puts = [r["status"] for r in sandbox.requests() if r["target"] == "s3" and r["method"] == "PUT"]
    assert puts[0] in (400, 403) and puts[-1] == 200, puts
    assert sandbox.count("GET", "/api/v1/data-collection/datasets/*/upload-url/*") >= 2


def _subprocess_env(sandbox, storage: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(storage),
        "PROLIFIC_API_TOKEN": sandbox.token,
        "PYTHONPATH": str(REPO),
    }


def _start_run(spec: Path, sandbox, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", str(spec), "--api-url", sandbox.base_url, *FAST_POLL_OPTIONS],
        env=env, cwd=REPO, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


FAST_POLL_OPTIONS = ["--poll-seconds", "0.2", "--poll-max-seconds", "0.5"]
CRASH_POINTS = [s for s in STEPS if s[1] == "api" and s[0] not in ("study status", "report", "list batches", "batch status")]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("step", CRASH_POINTS, ids=[s[0] for s in CRASH_POINTS])
def test_crash_after_each_step_then_rerun(step, tmp_path, sandbox):
    """SIGKILL the run's process group right after a step's request, re-run: one of everything."""
    name, target, method, glob, _ = step
    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path, wait_for_completion=False)
    env = _subprocess_env(sandbox, tmp_path / "storage")
    log = tmp_path / "run.log"
    process = _start_run(spec, sandbox, env, log)
    deadline = time.monotonic() + 120
    while sandbox.count(method, glob, target) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    rerun = _start_run(spec, sandbox, env, log)
    assert rerun.wait(timeout=240) == 0, log.read_text()[-3000:]
    job_key = AnnotationJob.from_yaml(spec).name
    counts = resources(sandbox, job_key)
    print(f"\n[crash] after {name}: {counts}")
    assert counts["batches"] == 1 and counts["studies"] == 1
    assert counts["publishes"] == 1
    assert counts["dataset creates"] <= 2 and counts["uploads"] <= 2


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_two_runs_started_together_make_one_set(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path, wait_for_completion=False)
    env = _subprocess_env(sandbox, tmp_path / "storage")
    runs = [_start_run(spec, sandbox, env, tmp_path / f"run{i}.log") for i in range(2)]
    for i, run in enumerate(runs):
        assert run.wait(timeout=240) == 0, (tmp_path / f"run{i}.log").read_text()[-3000:]
    counts = resources(sandbox, AnnotationJob.from_yaml(spec).name)
    assert counts == {"batches": 1, "studies": 1, "dataset creates": 1, "publishes": 1, "uploads": 1}


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_no_token_or_signature_anywhere(tmp_path, sandbox):
    """A full job at DEBUG: the token and presigned signatures appear nowhere.

    Searched: the run's captured output (every log line, DEBUG included), the Prefect database (the
    test harness's SQLite file, which holds flow-run parameters, logs sent to the API, artifacts and
    block documents), the result storage and the output folder.
    """
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    spec = write_small_job(tmp_path / "job")
    env = {
        **_subprocess_env(sandbox, tmp_path / "storage"),
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "PREFECT_LOGGING_ROOT_LEVEL": "DEBUG",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", str(spec), "--api-url", sandbox.base_url, *FAST_POLL_OPTIONS],
        env=env, cwd=REPO, capture_output=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    assert b"DEBUG" in result.stdout + result.stderr, "the run did not log at DEBUG"
    database = Path(PREFECT_API_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    haystacks = {"stdout": result.stdout, "stderr": result.stderr}
    for path in database.parent.glob(database.name + "*"):  # the database and its -wal / -shm files
        haystacks[str(path)] = path.read_bytes()
    for folder in (tmp_path / "storage", tmp_path / "job" / "out"):
        for path in folder.rglob("*"):
            if path.is_file():
                haystacks[str(path)] = path.read_bytes()
    assert any("storage" in name for name in haystacks), "no result was persisted"
    token = sandbox.token.encode()
    for where, data in haystacks.items():
        assert token not in data, f"token found in {where}"
        assert not re.search(rb"X-Amz-Signature=[0-9a-fA-F]{8}", data), f"presigned signature found in {where}"


OUTPUT_FILES = ("report.csv", "responses.csv", "labels.csv", "participants.csv", "summary.json", "run.json")
AFTER_PUBLISHING = [
    ("publish", "POST", "/api/v1/studies/*/transition/"),
    ("report", "GET", "/api/v1/data-collection/batches/*/report*"),
]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("step", AFTER_PUBLISHING, ids=[s[0] for s in AFTER_PUBLISHING])
def test_crash_after_publishing_before_the_outputs_then_rerun_writes_them_all(step, tmp_path, sandbox):
    """SIGKILL once the study is published (while it runs) or once its report is asked for, before the
    outputs are written; the re-run publishes nothing and writes every output."""
    name, method, glob = step
    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path)
    env = _subprocess_env(sandbox, tmp_path / "storage")
    log = tmp_path / "run.log"
    process = _start_run(spec, sandbox, env, log)
    deadline = time.monotonic() + 180
    while sandbox.count(method, glob) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before the crash point: " + log.read_text()[-2000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    out = tmp_path / "out"
    for stale in out.glob("*") if out.exists() else []:
        stale.unlink()  # whatever the first run got to write: the re-run must write it all

    rerun = _start_run(spec, sandbox, env, log)
    assert rerun.wait(timeout=240) == 0, log.read_text()[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    counts = resources(sandbox, AnnotationJob.from_yaml(spec).name)
    assert counts["publishes"] == 1 and counts["studies"] == 1 and counts["batches"] == 1
    labels = (out / "labels.csv").read_text().splitlines()
    assert len(labels) == 1 + 6  # header + every datapoint
