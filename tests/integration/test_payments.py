"""Paying people right (issue 21) on the real flow and the real sandbox: bonuses paid exactly once under faults on
the pay call, a crash right after paying and a re-run (the sandbox's ledger pays each pay call, as §7 warns);
bonuses over max_budget not paid and said so; rejections with the documented fields, never twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import yaml

import tasks.payments
from flows.annotation_batch import annotation_batch
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection

from tests.integration.jobs import write_small_job
from tests.integration.test_exactly_once import FAST, QUICK_SANDBOX, SHORT_TIMEOUTS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "isolated_results")]

PAY_PATH = "/api/v1/bulk-bonus-payments/*/pay*"
MESSAGE = ("Your answers to the check rows of this task did not match their known answers, so the work cannot be "
           "accepted; sorry about that.")
MANUAL = [{"code": "OK1", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}]


def _job(tmp_path: Path, **overrides) -> Path:
    study = {"name": "Small study", "internal_name": "small", "description": "<p>Small.</p>", "reward": 150,
             "estimated_completion_time": 5, "maximum_allowed_time": 20, "annotators_per_task": 2, "completion_codes": MANUAL}
    spec = {"study": study, "approve_submissions": True, "bonus": {"per_submission_cents": 25}}
    spec.update(overrides)
    return write_small_job(tmp_path, **spec)


def _run(sandbox, spec: Path) -> dict:
    job = AnnotationJob.from_yaml(spec)
    return annotation_batch(job=job, connection=ProlificConnection(base_url=sandbox.base_url, timeouts=SHORT_TIMEOUTS), polling=FAST)


def _ledger(sandbox) -> dict:
    return sandbox.control.get("/_sandbox/bonus-ledger").json()


def _api(sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.base_url + "/api/v1", headers={"Authorization": f"Token {sandbox.token}"}, timeout=30)


def _qualifying(sandbox, study_id: str) -> dict[str, int]:
    """Participant → 25 cents per submission not rejected (the job's rule: everyone qualifies)."""
    with _api(sandbox) as api:
        submissions = api.get(f"/studies/{study_id}/submissions/").json()["results"]
    paid: dict[str, int] = {}
    for s in submissions:
        if s["status"] in ("APPROVED", "AWAITING REVIEW"):
            paid[s["participant_id"]] = paid.get(s["participant_id"], 0) + 25
    return paid


def _assert_paid_once(sandbox, summary: dict, balance_before: int) -> None:
    bonus = summary["payments"]["bonus"]
    assert bonus["state"] == "paid"
    ledger = _ledger(sandbox)
    assert ledger["pay_calls"] == {bonus["id"]: 1}, ledger["pay_calls"]            # one payment reached the ledger
    assert ledger["paid_cents_by_participant"] == _qualifying(sandbox, summary["study_id"])
    with _api(sandbox) as api:
        study = api.get(f"/studies/{summary['study_id']}/").json()
        balance = api.get("/users/me/").json()["available_balance"]
    assert balance == balance_before - study["total_cost"] - bonus["total_amount_cents"]  # the balance fell once
    assert summary["payments"]["spent"]["bonuses_cents"] == bonus["total_amount_cents"]


@pytest.mark.parametrize("effect", [
    {"effect": "lost_response"}, {"effect": "status", "status": 500}, {"effect": "delay", "delay_seconds": 2.5}, None,
], ids=["lost answer", "500", "timeout", "no fault"])
def test_every_qualifying_participant_is_paid_exactly_once(effect, tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    balance_before = sandbox.settings()["account_balance_cents"]
    if effect:
        sandbox.faults({"target": "api", "method": "POST", "path": PAY_PATH, "nth": 1, **effect})
    summary = _run(sandbox, _job(tmp_path))
    _assert_paid_once(sandbox, summary, balance_before)
    assert summary["payments"]["bonus"]["participants"] == len(_qualifying(sandbox, summary["study_id"])) > 0

    again = _run(sandbox, _job(tmp_path, name=summary["job_key"]))                  # a re-run pays nobody again
    _assert_paid_once(sandbox, again, balance_before)


def test_a_crash_right_after_paying_is_resumed_without_paying_again(tmp_path, sandbox, monkeypatch):
    sandbox.settings(**QUICK_SANDBOX)
    balance_before = sandbox.settings()["account_balance_cents"]
    record = tasks.payments.update_job_record

    def crash_when_recording_paid(job_key, base_url, **fields):
        if (fields.get("bonus_payment") or {}).get("state") == "paid":
            raise SystemExit("crash right after the pay call")
        return record(job_key, base_url, **fields)

    monkeypatch.setattr(tasks.payments, "update_job_record", crash_when_recording_paid)
    spec = _job(tmp_path)
    with pytest.raises(BaseException):
        _run(sandbox, spec)
    assert len(_ledger(sandbox)["pay_calls"]) == 1 and list(_ledger(sandbox)["pay_calls"].values()) == [1]
    monkeypatch.setattr(tasks.payments, "update_job_record", record)
    summary = _run(sandbox, spec)                                                  # the record says "paying": checked
    _assert_paid_once(sandbox, summary, balance_before)


def test_bonuses_over_max_budget_are_not_paid_and_the_summary_says_so(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    with _api(sandbox) as api:   # the study's own cost: 4 places × 150 cents with the account's fees
        study_cost = api.post("/study-cost-calculator/", json={"reward": 150, "total_available_places": 4}).json()["total_cost"]
    spec = _job(tmp_path, max_budget=int(study_cost) + 10)                          # 4 × 25 cents of bonuses do not fit
    summary = _run(sandbox, spec)
    assert summary["payments"]["bonus"]["state"] == "refused"
    assert _ledger(sandbox)["entries"] == [] and sandbox.count("POST", "/api/v1/submissions/bonus-payments") == 0
    assert any("none of them were paid" in note and "max_budget" in note for note in summary["notes"])
    run_json = json.loads(Path(summary["outputs"]["run.json"]).read_text())
    assert run_json["payments"]["bonus"]["state"] == "refused"
    assert run_json["payments"]["spent"]["bonuses_cents"] == 0 and run_json["payments"]["spent"]["rewards_cents"] == 600


def test_rejections_carry_the_documented_fields_and_happen_once(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX, accuracy_mean=0.5, careless_share=0.5)
    reject = {"below_gold_accuracy": 0.99, "category": "FAILED_CHECK", "message": MESSAGE}
    spec = _job(tmp_path, reject=reject)
    summary = _run(sandbox, spec)
    rejected = summary["payments"]["rejected_submissions"]
    sent = [r for r in sandbox.requests() if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition")
            and "/submissions/" in r["path"]]
    assert rejected and len(sent) == len(rejected)
    assert all(r["body"] == {"action": "REJECT", "message": MESSAGE, "rejection_category": "FAILED_CHECK"} for r in sent)
    with _api(sandbox) as api:
        statuses = {s["id"]: s["status"] for s in api.get(f"/studies/{summary['study_id']}/submissions/").json()["results"]}
    assert {statuses[sid] for sid in rejected} == {"REJECTED"}
    paid = _ledger(sandbox)["paid_cents_by_participant"]
    assert not set(paid) & {p for p, s in _participants(sandbox, summary["study_id"]).items() if s == {"REJECTED"}}

    _run(sandbox, _job(tmp_path, name=summary["job_key"], reject=reject))          # a repeated run rejects nobody twice
    again = [r for r in sandbox.requests() if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition")
             and "/submissions/" in r["path"]]
    assert len(again) == len(sent)


def _participants(sandbox, study_id: str) -> dict[str, set[str]]:
    with _api(sandbox) as api:
        submissions = api.get(f"/studies/{study_id}/submissions/").json()["results"]
    found: dict[str, set[str]] = {}
    for s in submissions:
        found.setdefault(s["participant_id"], set()).add(s["status"])
    return found


def test_a_pay_call_still_running_past_the_check_is_never_sent_again(tmp_path, sandbox):
    """The first pay call gets no answer and lands at the server only after the settle check (Prolific pays
    asynchronously, §7): the run must not send a second pay call for it; a later re-run finds it paid."""
    sandbox.settings(**QUICK_SANDBOX)
    balance_before = sandbox.settings()["account_balance_cents"]
    settle_seconds = 2 * SHORT_TIMEOUTS.read_seconds
    sandbox.faults({"target": "api", "method": "POST", "path": PAY_PATH, "nth": 1, "effect": "delay",
                    "delay_seconds": SHORT_TIMEOUTS.read_seconds + settle_seconds + 2})
    spec = _job(tmp_path)
    with pytest.raises(Exception, match="not sent again"):
        _run(sandbox, spec)
    time.sleep(3)                                                                   # the delayed call lands
    assert list(_ledger(sandbox)["pay_calls"].values()) == [1], _ledger(sandbox)["pay_calls"]
    summary = _run(sandbox, spec)                                                   # the re-run checks: paid
    _assert_paid_once(sandbox, summary, balance_before)


def test_a_payment_set_up_but_never_paid_is_checked_against_the_re_run_s_max_budget(tmp_path, sandbox, monkeypatch):
    """A crash between setting up the bulk bonus payment and paying it, then a re-run with a lower max_budget:
    the recorded (unpaid) payment must not be paid over the new budget."""
    sandbox.settings(**QUICK_SANDBOX)
    pay = tasks.payments.pay_bonus_payment

    def crash_before_paying(*args, **kwargs):
        raise SystemExit("crash before the pay call")

    monkeypatch.setattr(tasks.payments, "pay_bonus_payment", crash_before_paying)
    spec = _job(tmp_path)
    with pytest.raises(BaseException):
        _run(sandbox, spec)
    assert sandbox.count("POST", "/api/v1/submissions/bonus-payments") == 1 and _ledger(sandbox)["entries"] == []
    monkeypatch.setattr(tasks.payments, "pay_bonus_payment", pay)
    with _api(sandbox) as api:
        study_cost = api.post("/study-cost-calculator/", json={"reward": 150, "total_available_places": 4}).json()["total_cost"]
    name = yaml.safe_load(spec.read_text())["name"]
    again = _run(sandbox, _job(tmp_path, name=name, max_budget=int(study_cost) + 10))  # the bonuses no longer fit
    assert again["study_id"] == _ledger_study(sandbox)                                # the same job, resumed
    assert again["payments"]["bonus"]["state"] == "refused"
    assert _ledger(sandbox)["entries"] == []


def _ledger_study(sandbox) -> str:
    """The one study bonus payments were set up for."""
    with _api(sandbox) as api:
        studies = api.get("/studies/").json()["results"]
    assert len(studies) == 1, [s["id"] for s in studies]
    return studies[0]["id"]


def test_a_re_run_with_a_larger_bonus_after_paying_pays_nothing_more_and_says_so(tmp_path, sandbox):
    sandbox.settings(**QUICK_SANDBOX)
    balance_before = sandbox.settings()["account_balance_cents"]
    summary = _run(sandbox, _job(tmp_path))
    again = _run(sandbox, _job(tmp_path, name=summary["job_key"], bonus={"per_submission_cents": 40}))
    _assert_paid_once(sandbox, again, balance_before)                              # the 25-cent plan, once
    assert any("was paid before" in note and "nothing more was paid" in note for note in again["notes"]), again.get("notes")
