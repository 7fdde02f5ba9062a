"""'Was it paid?' on evidence of this payment only (issue 21's leftover): a pay call answered 500 (nothing paid)
while other spending lowers the balance by more than the payment's total must not count as paid (the old check
took the fallen balance for the payment: participants never paid); the run stops saying what to check, and a
re-run sends no pay call either."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import tasks.payments
from typer.testing import CliRunner

from flows.cli import app
from tasks.payments import PayEvidenceUnclear

from tests.integration.test_exactly_once import QUICK_SANDBOX
from tests.integration.test_payments import PAY_PATH, _job, _ledger, _run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "isolated_results")]


def test_other_spending_during_the_check_is_not_taken_for_the_payment(tmp_path, sandbox, monkeypatch):
    sandbox.settings(**QUICK_SANDBOX)
    sandbox.faults({"target": "api", "method": "POST", "path": PAY_PATH, "nth": 1, "effect": "status", "status": 500})
    sleep = time.sleep

    def other_spending_while_settling(seconds: float) -> None:   # another job publishes during the settle wait
        balance = sandbox.settings()["account_balance_cents"]
        sandbox.settings(account_balance_cents=balance - 50_000)
        sleep(seconds)

    monkeypatch.setattr(tasks.payments, "time", SimpleNamespace(sleep=other_spending_while_settling))
    spec = _job(tmp_path)
    with pytest.raises(PayEvidenceUnclear, match="Check study .* bonuses in Prolific's app"):
        _run(sandbox, spec)
    assert _ledger(sandbox)["entries"] == []                        # nobody was paid ...
    assert sandbox.count("POST", PAY_PATH) == 1                      # ... and no second call was sent blindly

    with pytest.raises(PayEvidenceUnclear):                          # a re-run checks again: still unclear, no call
        _run(sandbox, spec)
    assert sandbox.count("POST", PAY_PATH) == 1 and _ledger(sandbox)["entries"] == []

    # someone checked in Prolific's app (and paid there): `pay settle` records it, and the job goes on, never paying
    settle = ["pay", "settle", str(spec), "--api-url", sandbox.base_url]   # the job key derived from the spec and CSV
    settled = CliRunner().invoke(app, settle)
    assert settled.exit_code == 0 and "now recorded as paid, settled by hand" in settled.output, settled.output
    summary = _run(sandbox, spec)
    assert summary["payments"]["bonus"]["state"] == "paid" and summary["payments"]["bonus"]["settled_by_hand_at"]
    assert sandbox.count("POST", PAY_PATH) == 1 and _ledger(sandbox)["entries"] == []   # still the one call
    again = CliRunner().invoke(app, settle)
    assert again.exit_code == 2 and "recorded as paid (settled by hand at" in again.output, again.output
