"""Bonuses (now §7 of the API facts): set up from a CSV in major units, paid as often as the pay call is made
(documented non-idempotent), with the ledger, the balance and the study's cost showing each payment; and
the submission transition's REJECT with its documented fields, ignored when repeated (§5.7)."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import assert_error, create_study, publish, ready_batch, ready_dataset, sentences_csv, study_in, write_csv


@pytest.fixture
def finished_study(api, control, workspace_id, tmp_path):
    """A published study of 2 places whose submissions are done (AWAITING REVIEW: manual review)."""
    control.post("/_sandbox/settings", json={"dataset_processing_seconds": 0.1, "batch_setup_seconds": 0.1,
                                             "return_rate": 0.0, "timeout_rate": 0.0, "service_fee_percent": 50.0,
                                             "vat_percent": 20.0}).raise_for_status()
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(4)))
    batch = ready_batch(api, workspace_id, dataset["id"], tasks_per_group=2)
    codes = [{"code": "DONE1", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}]
    study = create_study(api, batch["id"], completion_codes=codes)
    publish(api, study["id"])
    study_in(api, study["id"], ("AWAITING REVIEW",))
    return study


def _balance(api) -> int:
    return api.get("/users/me/").json()["available_balance"]


def test_each_pay_call_pays_again_and_shows_in_ledger_balance_and_cost(api, control, finished_study):
    study_id = finished_study["id"]
    submissions = api.get(f"/studies/{study_id}/submissions/").json()["results"]
    first, second = submissions[0], submissions[1]
    created = api.post("/submissions/bonus-payments/", json={
        "study_id": study_id, "csv_bonuses": f"{first['participant_id']},1.50\n{second['id']},0.25\n"})
    assert created.status_code == 201, created.text
    bonus = created.json()
    assert bonus["amount"] == 175 and bonus["fees"] == 88 and bonus["vat"] == 18   # minor units: 50 % fee, 20 % VAT on it
    assert bonus["total_amount"] == 175 + 88 + 18 and bonus["study"] == study_id
    ledger = control.get("/_sandbox/bonus-ledger").json()
    assert ledger["entries"] == [] and ledger["pay_calls"] == {bonus["id"]: 0}    # set up, not paid

    before = _balance(api)
    assert api.post(f"/bulk-bonus-payments/{bonus['id']}/pay/").status_code == 202
    assert _balance(api) == before - bonus["total_amount"]
    ledger = control.get("/_sandbox/bonus-ledger", params={"study_id": study_id}).json()
    assert ledger["paid_cents_by_participant"] == {first["participant_id"]: 150, second["participant_id"]: 25}
    assert api.get(f"/submissions/{first['id']}/").json()["bonus_payments"] == [150]

    assert api.post(f"/bulk-bonus-payments/{bonus['id']}/pay/").status_code == 202   # the documented double payment
    assert _balance(api) == before - 2 * bonus["total_amount"]
    ledger = control.get("/_sandbox/bonus-ledger").json()
    assert ledger["pay_calls"] == {bonus["id"]: 2} and len(ledger["entries"]) == 4
    assert ledger["paid_cents_by_participant"][first["participant_id"]] == 300
    cost = api.get(f"/studies/{study_id}/cost/").json()["bonuses"]
    assert {name: part["amount"] for name, part in cost.items()} == {"rewards": 350, "fees": 176, "tax": 36}


def test_bonus_setup_refuses_what_prolific_refuses(api, finished_study):
    study_id = finished_study["id"]
    participant = api.get(f"/studies/{study_id}/submissions/").json()["results"][0]["participant_id"]
    error = assert_error(api.post("/submissions/bonus-payments/", json={
        "study_id": study_id, "csv_bonuses": f"{participant},1.00\n0123456789abcdef01234567,2.00\n"}), 400)
    assert "0123456789abcdef01234567" in str(error["detail"]["csv_bonuses"])   # the ids that did not take part, named
    for csv_bonuses in (f"{participant},150", f"{participant},1.505", f"{participant},-1", f"{participant},0", f"{participant}"):
        if csv_bonuses.endswith("150"):
            assert api.post("/submissions/bonus-payments/", json={"study_id": study_id, "csv_bonuses": csv_bonuses}).status_code == 201
            continue   # 150 is £150.00, as §7 says ("An amount of 30 will pay £/$30.00")
        assert "csv_bonuses" in assert_error(api.post("/submissions/bonus-payments/", json={
            "study_id": study_id, "csv_bonuses": csv_bonuses}), 400)["detail"]
    assert "study_id" in assert_error(api.post("/submissions/bonus-payments/", json={"csv_bonuses": f"{participant},1"}), 400)["detail"]
    assert "study_id" in assert_error(api.post("/submissions/bonus-payments/", json={
        "study_id": "nope", "csv_bonuses": f"{participant},1"}), 400)["detail"]
    assert_error(api.post("/bulk-bonus-payments/unknown/pay/"), 404)


def test_pay_fails_whole_when_the_balance_is_short(api, control, finished_study):
    participant = api.get(f"/studies/{finished_study['id']}/submissions/").json()["results"][0]["participant_id"]
    bonus = api.post("/submissions/bonus-payments/", json={"study_id": finished_study["id"],
                                                          "csv_bonuses": f"{participant},5.00"}).json()
    control.post("/_sandbox/settings", json={"account_balance_cents": bonus["total_amount"] - 1}).raise_for_status()
    assert "total_amount" in assert_error(api.post(f"/bulk-bonus-payments/{bonus['id']}/pay/"), 400)["detail"]
    assert control.get("/_sandbox/bonus-ledger").json()["entries"] == []
    assert _balance(api) == bonus["total_amount"] - 1


def test_reject_needs_its_fields_and_a_repeat_is_ignored(api, finished_study):
    submission = api.get(f"/studies/{finished_study['id']}/submissions/").json()["results"][0]
    path = f"/submissions/{submission['id']}/transition/"
    assert "body" in str(assert_error(api.post(path, json={"action": "REJECT", "message": "too short",
                                                             "rejection_category": "LOW_EFFORT"}), 400)["detail"])
    message = "Your answers on the check questions did not match the instructions given on the task page. " * 2
    body = {"action": "REJECT", "message": message, "rejection_category": "FAILED_CHECK"}
    assert api.post(path, json={**body, "rejection_category": "SLOPPY"}).status_code == 400
    assert api.post(path, json=body).json()["status"] == "REJECTED"
    again = api.post(path, json=body)
    assert again.status_code == 200 and again.json()["status"] == "REJECTED"   # "the second request will be ignored"
    assert api.post(path, json={"action": "APPROVE"}).status_code == 400       # irreversible
