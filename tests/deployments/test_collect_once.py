"""Every finished study collected exactly once, by the monitor or by Prolific's webhooks (issue 16, case C24).

One stack for the module (tests/deployments/stack.py: real Prefect server, worker, deployments, sandbox).
The sandbox's participants are fast (its defaults), so studies finish before their launch flow ends: the
job record then already *saw* a finished status that nobody announced.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from deployments.webhooks import sign
from tests.deployments.stack import BIN, REPO, Stack, free_port, pause_monitor_schedule, prefect_stack, wait_until
from tests.deployments.test_deployments import FAST_POLLING, job_parameters, record_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

LAUNCH = "annotation-batch/launch-annotation-batch"
MONITOR = "monitor-studies/monitor-studies"
COLLECT = "collect-report/collect-report"
HOOK_SECRET_BLOCK = "prolific-webhook-secret-subscribed"


@pytest.fixture(scope="module")
def stack():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_stack(workers=1) as running, temporary_settings({PREFECT_API_URL: running.api_url}):
        pause_monitor_schedule(running)  # monitor runs happen only when a test starts one
        yield running


def collect_runs(stack: Stack, job_key: str) -> list[dict]:
    return [r for r in stack.flow_runs_of(COLLECT) if r["parameters"].get("job_key") == job_key]


def run_monitor(stack: Stack) -> str:
    flow_run_id = stack.run_deployment(MONITOR)
    stack.wait_for_state(flow_run_id, {"COMPLETED"}, 180)
    return flow_run_id


def finished_runs(runs: list[dict]) -> bool:
    return bool(runs) and all(r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs)


def output_times(out: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(out.iterdir())} if out.is_dir() else {}


def test_monitor_collects_each_finished_job_exactly_once_and_retries_a_failed_collect(stack, tmp_path):
    from prefect.events import emit_event

    jobs = {name: job_parameters(tmp_path / name) for name in ("finished_early", "fails_once")}
    runs = {name: stack.run_deployment(LAUNCH, {"job": job, "polling": FAST_POLLING}) for name, job in jobs.items()}
    for flow_run_id in runs.values():
        stack.wait_for_state(flow_run_id, {"COMPLETED"}, 240)
    early, failing = jobs["finished_early"], jobs["fails_once"]
    out_early, out_failing = Path(early["output_dir"]), Path(failing["output_dir"])
    with httpx.Client(base_url=stack.sandbox.base_url + "/api/v1", headers={"Authorization": f"Token {stack.sandbox.token}"}) as api:
        for job in jobs.values():
            study_id = record_of(job["name"])["study_id"]
            wait_until(lambda: api.get(f"/studies/{study_id}/").json()["status"] in ("AWAITING REVIEW", "COMPLETED"), 120, "study finished")
    assert not (out_early / "labels.csv").exists() and record_of(early["name"]).get("announced_status") is None
    # the fault: the second job's output folder is a file now, so its collect fails
    shutil.rmtree(out_failing)
    out_failing.write_text("not a folder")

    first_monitor = run_monitor(stack)  # announces both; the trigger's collect-report runs follow
    wait_until(lambda: finished_runs(collect_runs(stack, early["name"])) and finished_runs(collect_runs(stack, failing["name"])), 180, "collect runs")
    assert [r["state"]["type"] for r in collect_runs(stack, early["name"])] == ["COMPLETED"]
    assert [r["state"]["type"] for r in collect_runs(stack, failing["name"])] == ["FAILED"]
    assert (out_early / "labels.csv").is_file() and record_of(early["name"])["collected_at"]
    assert not record_of(failing["name"]).get("collected_at")
    written = output_times(out_early)

    # the fault is gone: the next monitor run collects the failed job itself, and nothing of the collected one
    out_failing.unlink()
    second_monitor = run_monitor(stack)
    assert (out_failing / "labels.csv").is_file(), stack.flow_run_logs(second_monitor)
    failing_record = record_of(failing["name"])
    assert failing_record["collected_at"] and failing_record.get("collect_error") is None
    wait_until(lambda: "not collected yet; collecting it now" in stack.flow_run_logs(second_monitor), 30, "the second monitor run's log")
    assert len(collect_runs(stack, early["name"])) == 1 and output_times(out_early) == written

    # a third monitor run and a re-announced event write nothing new
    failing_written = output_times(out_failing)
    third_monitor = run_monitor(stack)
    early_record = record_of(early["name"])
    emit_event(
        event="prolific.study.status-changed",
        resource={"prefect.resource.id": f"prolific.study.{early_record['study_id']}", "prefect.resource.name": early["name"],
                  "prolific.study.status": early_record["announced_status"]},
        payload={"status": early_record["announced_status"], "previous_status": "ACTIVE", "job_key": early["name"], "base_url": early_record["base_url"]},
    )
    wait_until(lambda: len(collect_runs(stack, early["name"])) == 2 and finished_runs(collect_runs(stack, early["name"])), 120, "re-announced collect")
    rerun = collect_runs(stack, early["name"])[0]
    assert rerun["state"]["type"] == "COMPLETED"
    wait_until(lambda: "was collected at" in stack.flow_run_logs(rerun["id"]), 30, "the re-run's log")
    assert output_times(out_early) == written and output_times(out_failing) == failing_written
    wait_until(lambda: "0 status change(s) announced, 0 collect(s) run here" in stack.flow_run_logs(third_monitor), 30, "the third monitor run's log")
    assert first_monitor != second_monitor


def deliver(url: str, secret: str, payload: dict, event_id: str, age_seconds: float = 0) -> httpx.Response:
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time() - age_seconds))
    headers = {"X-Prolific-Request-Timestamp": timestamp, "X-Prolific-Request-Signature": sign(secret, timestamp, body),
               "X-Event-ID": event_id, "X-Timestamp": timestamp, "Content-Type": "application/json"}
    return httpx.post(url, content=body, headers=headers, timeout=30)


def test_signed_webhooks_from_the_sandbox_write_outputs_without_a_monitor_run(stack, tmp_path):
    from prefect.blocks.system import Secret

    port = free_port()
    url = f"http://127.0.0.1:{port}/prolific/webhook"
    env = {**stack.env, "PROLIFIC_API_TOKEN": stack.sandbox.token}
    subscribed = subprocess.run(
        [str(BIN / "taskbuilder"), "webhooks", "subscribe", "--url", url, "--api-url", stack.sandbox.base_url, "--secret-block", HOOK_SECRET_BLOCK],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert subscribed.returncode == 0, subscribed.stdout + subscribed.stderr
    assert subscribed.stdout.count("confirmed (enabled: True)") == 2, subscribed.stdout
    secret = Secret.load(HOOK_SECRET_BLOCK).get()
    assert secret not in subscribed.stdout + subscribed.stderr
    receiver = stack.start("subscribed-webhooks", [str(BIN / "python"), "-m", "deployments.webhooks", "--port", str(port), "--secret-block", HOOK_SECRET_BLOCK])
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200, 60, f"webhook receiver\n{receiver.log_tail()}")

    monitors_before = {r["id"] for r in stack.flow_runs_of(MONITOR)}
    job = job_parameters(tmp_path / "hooked")
    stack.wait_for_state(stack.run_deployment(LAUNCH, {"job": job, "polling": FAST_POLLING}), {"COMPLETED"}, 240)
    out = Path(job["output_dir"])
    wait_until(lambda: (out / "labels.csv").is_file() and record_of(job["name"]).get("collected_at"), 120, f"outputs from webhooks\n{receiver.log_tail()}")
    assert {r["id"] for r in stack.flow_runs_of(MONITOR)} == monitors_before  # no monitor run was involved
    with stack.api() as api:  # the sandbox's X-Event-IDs, claimed on the Prefect server where every replica reads them
        claimed = api.post("/variables/filter", json={"variables": {"name": {"like_": "prolific_event_"}}, "limit": 200}).json()
    assert any(v["value"]["event_type"] == "study.status.change" for v in claimed), claimed
    assert len(collect_runs(stack, job["name"])) >= 1

    # a redelivery (same X-Event-ID) is acknowledged and emits nothing; forged and stale ones are refused
    submission = {"resource_id": "sub-" + job["name"], "event_type": "submission.status.change", "participant_id": "p1", "status": "APPROVED"}
    first = deliver(url, secret, submission, event_id="evt-" + job["name"])
    again = deliver(url, secret, submission, event_id="evt-" + job["name"])
    assert first.status_code == 200 and first.json()["emitted"] is True, first.text
    assert again.status_code == 200 and again.json()["emitted"] is False and again.json()["redelivery"] is True
    assert deliver(url, "forged-secret", submission, event_id="evt-forged").status_code == 401
    assert deliver(url, secret, submission, event_id="evt-stale", age_seconds=600).status_code == 401

    def submission_events():
        events = [e for e in stack.events("prolific.submission.status-changed") if e["resource"]["prefect.resource.id"] == f"prolific.submission.{submission['resource_id']}"]
        return events or None

    wait_until(submission_events, 30, "the submission event")
    time.sleep(3)  # the server stores events in batches: a second one would be there by now
    assert len(submission_events()) == 1


def test_a_job_in_rounds_without_waiting_goes_on_through_the_monitor_and_its_trigger(stack, tmp_path):
    """Adaptive overlap launched by the deployment (wait_for_completion false): each finished round is announced
    by the monitor, the trigger's collect-report run launches the next round, the last writes the outputs."""
    from tests.integration.test_rounds import ADAPTIVE, COIN_FLIPS, ROWS

    control = httpx.Client(base_url=stack.sandbox.base_url, timeout=30)
    defaults = control.get("/_sandbox/settings").json()
    control.post("/_sandbox/settings", json=COIN_FLIPS).raise_for_status()  # answers at random: rounds are needed
    try:
        _rounds_through_the_monitor(stack, tmp_path, ADAPTIVE, ROWS)
    finally:
        control.post("/_sandbox/settings", json={name: defaults[name] for name in COIN_FLIPS}).raise_for_status()
        control.close()


def _rounds_through_the_monitor(stack, tmp_path, adaptive, rows):
    job = job_parameters(tmp_path / "rounds", rows=rows, adaptive=adaptive)
    stack.wait_for_state(stack.run_deployment(LAUNCH, {"job": job, "polling": FAST_POLLING}), {"COMPLETED"}, 240)
    out = Path(job["output_dir"])
    numbers = []
    with httpx.Client(base_url=stack.sandbox.base_url, headers={"Authorization": f"Token {stack.sandbox.token}"}) as api:
        for _ in range(6):
            record = record_of(job["name"])
            if record.get("collected_at"):
                break
            current = record.get("current_round") or {"number": 1, "study_id": record["study_id"]}
            numbers.append(current["number"])
            wait_until(lambda: api.get(f"/api/v1/studies/{current['study_id']}/").json()["status"] in ("AWAITING REVIEW", "COMPLETED"), 120, "round finished")
            run_monitor(stack)
            wait_until(lambda: record_of(job["name"]).get("collected_at") or (record_of(job["name"]).get("current_round") or {}).get("number", 1) > current["number"],
                       180, f"round {current['number']} collected and the next launched")
        requests = api.get("/_sandbox/requests").json()["requests"]
    record = record_of(job["name"])
    assert record.get("collected_at") and (out / "labels.csv").is_file(), numbers
    summary = json.loads((out / "run.json").read_text())
    assert len(summary["rounds"]) >= 2 and [r["number"] for r in summary["rounds"]] == list(range(1, len(summary["rounds"]) + 1))
    studies = {r["study_id"] for r in summary["rounds"]}
    publishes = [r["path"].split("/")[4] for r in requests if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition")
                 and 200 <= r["status"] < 300 and r["path"].split("/")[4] in studies]
    assert sorted(publishes) == sorted(studies), "a round's study was published twice, or not at all"
    # the record says collected before the run that wrote it reports COMPLETED: wait for every run to finish
    def all_finished():
        runs = collect_runs(stack, job["name"])
        return runs if runs and all(r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs) else None

    runs = wait_until(all_finished, 120, "the collect-report runs finished")
    failed = {r["id"]: (r["state"]["type"], r["state"].get("message")) for r in runs if r["state"]["type"] != "COMPLETED"}
    assert not failed, {flow_run_id: (state, stack.flow_run_logs(flow_run_id)[-3000:]) for flow_run_id, state in failed.items()}
