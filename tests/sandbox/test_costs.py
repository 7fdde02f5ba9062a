"""Costs (now §5.5, §5.6, §12 of the API facts): the calculator, a study's cost, reward recommendations,
all from the settings that drive a study's total_cost and the balance it debits."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import (assert_error, create_study, publish, ready_batch, ready_dataset, sentences_csv,
                                   write_csv)


@pytest.fixture
def batch(api, workspace_id, tmp_path):
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(6)))
    return ready_batch(api, workspace_id, dataset["id"], tasks_per_group=2)   # 3 task groups


def test_calculator_includes_fee_and_vat_on_the_fee(api, control):
    control.post("/_sandbox/settings", json={"service_fee_percent": 30.0, "vat_percent": 20.0}).raise_for_status()
    answer = api.post("/study-cost-calculator/", json={"reward": 100, "total_available_places": 5})
    assert answer.status_code == 200
    assert answer.json() == {"total_cost": 500 + 150 + 30}                     # rewards + 30 % fee + 20 % VAT on it
    assert "reward" in assert_error(api.post("/study-cost-calculator/", json={"total_available_places": 5}), 400)["detail"]
    bad = api.post("/study-cost-calculator/", json={"reward": "100", "total_available_places": 5})
    assert "reward" in assert_error(bad, 400)["detail"]


def test_study_cost_matches_total_cost_and_the_debit(api, batch, control):
    control.post("/_sandbox/settings", json={"service_fee_percent": 25.0, "vat_percent": 20.0}).raise_for_status()
    study = create_study(api, batch["id"], annotators_per_task=2)             # 6 places × 300
    quoted = api.post("/study-cost-calculator/", json={"reward": 300, "total_available_places": 6}).json()
    assert study["total_cost"] == quoted["total_cost"] == 1800 + 450 + 90
    cost = api.get(f"/studies/{study['id']}/cost/")
    assert cost.status_code == 200
    currency = control.get("/_sandbox/settings").json()["currency_code"]
    assert cost.json() == {
        "rewards": {"rewards": {"amount": 1800, "currency": currency}, "fees": {"amount": 450, "currency": currency},
                    "tax": {"amount": 90, "currency": currency}},
        "bonuses": {part: {"amount": 0, "currency": currency} for part in ("rewards", "fees", "tax")}}
    assert api.get(f"/studies/{study['id']}/cost/?is_projected=true").json() == cost.json()
    assert_error(api.get(f"/studies/{study['id']}/cost/?is_projected=maybe"), 400)
    assert_error(api.get("/studies/000000000000000000000000/cost/"), 404)
    before = api.get("/users/me").json()["balance"]
    publish(api, study["id"])
    assert api.get("/users/me").json()["balance"] == before - study["total_cost"]


def test_a_fault_rule_can_fail_the_cost_endpoints(api, control, batch):
    study = create_study(api, batch["id"])
    control.post("/_sandbox/faults", json={"rules": [
        {"target": "api", "path": "/api/v1/study-cost-calculator/", "effect": "status", "status": 503},
        {"target": "api", "path": "/api/v1/studies/*/cost/", "effect": "status", "status": 500}]}).raise_for_status()
    assert_error(api.post("/study-cost-calculator/", json={"reward": 1, "total_available_places": 1}), 503)
    assert_error(api.get(f"/studies/{study['id']}/cost/"), 500)


def test_reward_recommendations(api, control, workspace_id):
    control.post("/_sandbox/settings", json={"min_reward_per_hour_cents": 700,
                                             "recommended_reward_per_hour_cents": 1100}).raise_for_status()
    currency = control.get("/_sandbox/settings").json()["currency_code"]
    answer = api.get(f"/reward-recommendations/?workspace_id={workspace_id}&currency={currency}")
    assert answer.status_code == 200
    assert answer.json() == [{"currency": currency, "min_reward_per_hour": 700, "recommended_reward_per_hour": 1100}]
    assert "workspace_id" in assert_error(api.get("/reward-recommendations/"), 400)["detail"]
    assert "currency" in assert_error(api.get(f"/reward-recommendations/?workspace_id={workspace_id}&currency=XYZ"),
                                      400)["detail"]


def test_underpaying_follows_the_minimum_setting(api, control, batch):
    control.post("/_sandbox/settings", json={"min_reward_per_hour_cents": 2000}).raise_for_status()
    assert create_study(api, batch["id"])["is_underpaying"] is True            # 300 per 15 min = 1200 per hour
