"""Bonuses paid once across machines (issue 21's leftover): two "hosts" (processes with their own lock folders,
one Prefect server and one sandbox between them) collect the same finished job at once; exactly one pay call
reaches the sandbox and its ledger holds one payment. collect-report's run.json carries the flow run's
``payments``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows.annotation_batch import annotation_batch
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection

from tests.integration.jobs import write_small_job
from tests.integration.test_exactly_once import FAST, QUICK_SANDBOX, REPO, _subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400), pytest.mark.usefixtures("prefect_harness", "isolated_results")]

MANUAL = [{"code": "OK1", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}]
COLLECT = ("import json, sys\n"
           "from flows.collect_report import collect_report\n"
           "print('RESULT ' + json.dumps(collect_report(job_key=sys.argv[1], base_url=sys.argv[2]), default=str))\n")


def _published_job(tmp_path: Path, sandbox) -> dict:
    study = {"name": "Small study", "internal_name": "small", "description": "<p>Small.</p>", "reward": 150,
             "estimated_completion_time": 5, "maximum_allowed_time": 20, "annotators_per_task": 2, "completion_codes": MANUAL}
    spec = write_small_job(tmp_path / "job", study=study, approve_submissions=True, bonus={"per_submission_cents": 25},
                           wait_for_completion=False, output_dir=str(tmp_path / "out"))
    return annotation_batch(job=AnnotationJob.from_yaml(spec), connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST)


def _wait_finished(sandbox, study_id: str) -> None:
    with httpx.Client(base_url=sandbox.base_url + "/api/v1", headers={"Authorization": f"Token {sandbox.token}"}) as api:
        deadline = time.monotonic() + 120
        while api.get(f"/studies/{study_id}/").json()["status"] not in ("AWAITING REVIEW", "COMPLETED"):
            assert time.monotonic() < deadline, "the study did not finish"
            time.sleep(0.5)


def test_two_hosts_collecting_one_job_at_once_pay_its_bonuses_once(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    launched = _published_job(tmp_path, sandbox)
    _wait_finished(sandbox, launched["study_id"])
    hosts = []
    for host in ("host-a", "host-b"):                       # no shared lock folder: only Prefect is shared
        env = {**_subprocess_env(sandbox, tmp_path / host / "storage"), "TASKBUILDER_LOCK_DIR": str(tmp_path / host / "locks")}
        hosts.append(subprocess.Popen([sys.executable, "-c", COLLECT, launched["job_key"], sandbox.base_url], env=env,
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [process.communicate(timeout=300)[0] for process in hosts]
    assert all(process.returncode == 0 for process in hosts), "\n\n".join(o[-3000:] for o in outputs)

    assert sandbox.count("POST", "/api/v1/bulk-bonus-payments/*/pay") == 1
    ledger = sandbox.control.get("/_sandbox/bonus-ledger").json()
    assert list(ledger["pay_calls"].values()) == [1], ledger["pay_calls"]       # one bulk payment, paid once
    assert sandbox.count("POST", "/api/v1/submissions/bonus-payments") == 1      # and set up once

    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    payments = run_json["payments"]                                                 # the flow run's shape
    assert set(payments) == {"bonus", "rejected_submissions", "spent"}
    assert payments["bonus"]["state"] == "paid" and payments["bonus"]["id"] in ledger["pay_calls"]
    assert set(payments["spent"]) == {"rewards_cents", "fees_cents", "tax_cents", "bonuses_cents", "currency"}
    assert payments["spent"]["bonuses_cents"] == payments["bonus"]["total_amount_cents"] > 0


def test_a_launch_that_does_not_wait_keeps_the_run_json_of_a_collected_job(tmp_path, sandbox):
    """Found by a new-user pass: the job launched (not waiting), collected by collect-report, then launched again
    as the docs show: the second launch created nothing and used to write its own run.json (no labels.csv, no
    payments) over collect-report's; collect-report's stays."""
    from flows.collect_report import collect_report

    sandbox.settings(**QUICK_SANDBOX)
    spec = write_small_job(tmp_path / "job", wait_for_completion=False, output_dir=str(tmp_path / "out"))
    connection = ProlificConnection(base_url=sandbox.base_url)
    launched = annotation_batch(job=AnnotationJob.from_yaml(spec), connection=connection, polling=FAST)
    _wait_finished(sandbox, launched["study_id"])
    collect_report(job_key=launched["job_key"], base_url=sandbox.base_url)
    collected = (tmp_path / "out" / "run.json").read_text()
    assert "labels.csv" in json.loads(collected)["outputs"]

    again = annotation_batch(job=AnnotationJob.from_yaml(spec), connection=connection, polling=FAST)
    assert again["study_id"] == launched["study_id"] and again["published"]
    assert sandbox.count("POST", "/api/v1/studies") == 1
    assert (tmp_path / "out" / "run.json").read_text() == collected
