"""`taskbuilder pay settle` settles only a payment whose pay call's outcome is open; anything else is refused
and changes nothing (the end-to-end use after an unclear payment: tests/integration/test_pay_unclear.py)."""

from __future__ import annotations

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from tasks.records import load_job_record, update_job_record
from tests.integration.test_annotation_batch import EXAMPLE

pytestmark = pytest.mark.usefixtures("prefect_harness")
API = "http://127.0.0.1:9"


def _spec(tmp_path, name: str):
    """The example job's spec, copied, under ``name`` (as written otherwise)."""
    folder = tmp_path / "job"
    shutil.copytree(EXAMPLE, folder, dirs_exist_ok=True)
    raw = yaml.safe_load((folder / "job.yaml").read_text(encoding="utf-8"))
    raw["name"] = name
    (folder / "job.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return folder / "job.yaml"


def _settle(spec, api_url: str = API):
    return CliRunner().invoke(app, ["pay", "settle", str(spec), "--api-url", api_url])


@pytest.mark.parametrize("state, said", [
    ("created", "is created: no pay call was sent, so there is nothing to settle"),
    ("refused", "is refused: no pay call was sent"),
])
def test_a_payment_never_sent_is_not_settled(tmp_path, state, said):
    name = f"settle-{state}-{tmp_path.name}"
    payment = {"id": "bp-1", "state": state, "study_id": "s-1", "amount_cents": 250, "currency": "GBP"}
    update_job_record(name, API, bonus_payment=payment)
    result = _settle(_spec(tmp_path, name))
    assert result.exit_code == 2 and said in result.output, result.output
    assert load_job_record(name, API)["bonus_payment"] == payment  # unchanged


def test_no_record_or_no_payment_is_said(tmp_path):
    name = f"settle-none-{tmp_path.name}"
    result = _settle(_spec(tmp_path, name))
    assert result.exit_code == 2 and "no job record for job key" in result.output, result.output
    update_job_record(name, API, study_id="s-2")
    result = _settle(_spec(tmp_path, name))
    assert result.exit_code == 2 and "has no bonus payment" in result.output, result.output


def test_an_open_payment_is_settled_once(tmp_path):
    name = f"settle-open-{tmp_path.name}"
    update_job_record(name, API, bonus_payment={"id": "bp-2", "state": "paying", "study_id": "s-3", "amount_cents": 250,
                                                "currency": "GBP"})
    first = _settle(_spec(tmp_path, name), API + "/api/v1/")  # the API root as a user may write it
    assert first.exit_code == 0 and "bonus payment bp-2 (2.50 GBP) of study s-3 is now recorded as paid" in first.output
    stored = load_job_record(name, API)["bonus_payment"]
    assert stored["state"] == "paid" and stored["settled_by_hand_at"]
    second = _settle(_spec(tmp_path, name))
    assert second.exit_code == 2 and "is recorded as paid (settled by hand at" in second.output
    assert load_job_record(name, API)["bonus_payment"] == stored


@pytest.mark.timeout(120)
def test_settle_while_a_pay_step_holds_the_lock_is_refused_at_once(tmp_path):
    """A pay step running now may send or check a pay call after the hand check: settle must not wait for it (up to
    the pay step's 900 s) and then record a check made before it, but say so at once and change nothing."""
    import threading
    import time

    from tasks.pay_lock import pay_lock

    name = f"settle-busy-{tmp_path.name}"
    payment = {"id": "bp-3", "state": "paying", "study_id": "s-4", "amount_cents": 250, "currency": "GBP"}
    update_job_record(name, API, bonus_payment=payment)
    spec = _spec(tmp_path, name)
    holding, release = threading.Event(), threading.Event()

    def pay_step() -> None:
        with pay_lock(name, API):
            holding.set()
            release.wait(100)

    thread = threading.Thread(target=pay_step, daemon=True)
    thread.start()
    try:
        assert holding.wait(60)
        started = time.monotonic()
        result = _settle(spec)
        waited_seconds = time.monotonic() - started
    finally:
        release.set()
        thread.join(60)
    assert result.exit_code == 1 and "a pay step of this job is running now" in result.output, result.output
    assert waited_seconds < 60
    assert load_job_record(name, API)["bonus_payment"] == payment  # unchanged
