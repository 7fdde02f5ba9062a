"""The launch form and the artifacts people read, on a real Prefect server with a worker and the sandbox.

The run form of ``launch-annotation-batch`` is rendered by headless Chromium (Debian's ``chromium``; the
test skips without it) after the page's scripts ran: the instructions show as a type picker with fields,
no JSON editor. A job sent in exactly that form's shape (instructions as ``{instruction: {...}}``) runs
with an approval, waits for the study, and its artifacts are read back through the Prefect API.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from flows.form_launch import job_form_values
from taskbuilder.jobspec import AnnotationJob
from tests.deployments.stack import prefect_stack, pause_monitor_schedule
from tests.integration.jobs import write_small_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]
LAUNCH = "annotation-batch/launch-annotation-batch"
CHROMIUM = shutil.which("chromium")
JSON_EDITOR = "schema-form-property-kind-json"


@pytest.fixture(scope="module")
def stack():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_stack(workers=1, ui=True) as running, temporary_settings({PREFECT_API_URL: running.api_url}):
        pause_monitor_schedule(running)
        yield running


def _job(tmp_path) -> AnnotationJob:
    spec = write_small_job(tmp_path / "job", require_approval=True)
    job = AnnotationJob.from_yaml(spec)
    study = job.study.model_copy(update={"annotators_per_task": 3})  # 3 votes: shares like 0.667
    return job.model_copy(update={"study": study})


def render(url: str) -> str:
    """The page's DOM after its scripts ran (headless Chromium, virtual time)."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=30000",
                           "--dump-dom", url], capture_output=True, text=True, timeout=180)
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed (apt-get install chromium)")
def test_the_run_form_shows_instructions_as_fields_not_a_code_editor(stack, tmp_path):
    deployment = stack.deployment(LAUNCH)
    values = job_form_values(_job(tmp_path))
    with stack.api() as api:  # the form pre-filled as a person would fill it in
        api.patch(f"/deployments/{deployment['id']}",
                  json={"parameters": {"job": values, "wait_for_completion": False}}).raise_for_status()
    try:
        dom = render(stack.api_url.removesuffix("/api") + f"/deployments/deployment/{deployment['id']}/run")
    finally:
        with stack.api() as api:
            api.patch(f"/deployments/{deployment['id']}", json={"parameters": {"wait_for_completion": False}}).raise_for_status()
    assert "Instructions" in dom, dom[-2000:]
    section = dom[dom.index("Instructions"):dom.index("Batch Items")]
    assert JSON_EDITOR not in section and "p-code-input" not in section
    for label in ("Multiple choice", "Free text", "File upload", "Options", "Answer Limit", "Label", "Value"):
        assert f">{label}" in section, label
    assert JSON_EDITOR not in dom  # nowhere in the job's form


def test_a_job_entered_in_the_form_runs_and_its_artifacts_read_well(stack, tmp_path):
    job = _job(tmp_path)
    values = job_form_values(job)
    assert set(values["batch"]["instructions"][0]) == {"instruction"}
    flow_run_id = stack.run_deployment(LAUNCH, {"job": values, "wait_for_completion": True,
                                                "polling": {"interval_seconds": 0.5, "max_interval_seconds": 2.0}})
    stack.wait_for_state(flow_run_id, {"PAUSED"}, 240)
    with stack.api() as api:
        answer = {"approve": True, "reviewer": "ann", "comment": "figures checked"}
        assert api.post(f"/flow_runs/{flow_run_id}/resume", json={"run_input": answer}).json()["status"] == "ACCEPT"
    run = stack.wait_for_state(flow_run_id, {"COMPLETED"}, 300)
    assert run["state"]["type"] == "COMPLETED", stack.flow_run_logs(flow_run_id)

    artifacts = _artifacts(stack, flow_run_id)
    labels = artifacts["labels"]["data"]
    labels = json.loads(labels) if isinstance(labels, str) else labels
    assert list(labels[0])[0] == "id" and list(labels[0])[1] == "text"
    numbers = [cell for row in labels for cell in row.values() if isinstance(cell, float)]
    assert numbers and all(len(repr(cell).split(".")[1]) <= 3 for cell in numbers)

    summary = artifacts["results-summary"]["data"]
    for section in ("Counts", "Label distribution", "Agreement per instruction", "Gold accuracy", "Cost",
                    "Flagged participants", "Datapoints without answers"):
        assert re.search(rf"^## {section}$", summary, flags=re.M), section
    assert "```json" not in summary

    approval = artifacts["publish-approval"]
    assert "ann" in approval["data"] and "figures checked" in approval["data"] and "approved" in approval["data"]
    assert approval["description"].startswith("Decided")
    run_json = json.loads((tmp_path / "job" / "out" / "run.json").read_text())
    assert run_json["approval"]["reviewer"] == "ann" and run_json["approval"]["decision"] == "approved"
    assert run_json["approval"]["decided_at"]
    logs = stack.flow_run_logs(flow_run_id)
    assert logs.count("Suspending flow run") == 1, logs  # the first suspension only, not on resume


def _artifacts(stack, flow_run_id: str) -> dict[str, dict]:
    """The flow run's latest artifact per key (``POST /api/artifacts/filter``)."""
    with stack.api() as api:
        found = api.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}},
                                                    "sort": "CREATED_DESC", "limit": 100}).raise_for_status().json()
    latest: dict[str, dict] = {}
    for artifact in found:
        latest.setdefault(artifact["key"], artifact)
    return latest

