"""The participant side (now §8, §12, §5.9 of the API facts): participant groups, the group and
previous-study filters honoured by the simulated pool, ADD_TO_PARTICIPANT_GROUP, test studies."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.helpers import (SENTIMENT, assert_error, create_study, publish, ready_batch, ready_dataset,
                                   sentences_csv, study_body, study_in, write_csv)

GROUPS = "/participant-groups/"
DONE = {"code": "DONE1", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}


def test_groups_create_add_list_remove(api, workspace_id):
    created = api.post(GROUPS, json={"name": "Pilot", "workspace_id": workspace_id, "participant_ids": ["a" * 24]})
    assert created.status_code == 201
    group = created.json()
    assert group["name"] == "Pilot" and group["participant_count"] == 1 and group["workspace_id"] == workspace_id
    one = f"{GROUPS}{group['id']}/participants/"
    added = api.post(one, json={"participant_ids": ["a" * 24, "b" * 24]})
    assert added.status_code == 200
    assert [m["participant_id"] for m in added.json()["results"]] == ["a" * 24, "b" * 24]   # existing one ignored
    assert api.get(one).json()["meta"]["count"] == 2
    left = api.request("DELETE", one, json={"participant_ids": ["a" * 24]})
    assert [m["participant_id"] for m in left.json()["results"]] == ["b" * 24]
    assert api.get(f"{GROUPS}{group['id']}/").json()["participant_count"] == 1
    for query in (f"workspace_id={workspace_id}", f"filter[workspace_id]={workspace_id}"):
        assert [g["id"] for g in api.get(f"{GROUPS}?{query}").json()["results"]] == [group["id"]]
    assert_error(api.post(GROUPS, json={"name": "x"}), 400)
    assert "workspace_id" in assert_error(api.post(GROUPS, json={"name": "x", "workspace_id": "0" * 24}), 400)["detail"]
    assert_error(api.post(one, json={"participant_ids": []}), 400)
    assert_error(api.get(f"{GROUPS}{'0' * 24}/participants/"), 404)


@pytest.fixture
def small_pool(control):
    control.post("/_sandbox/settings", json={"participant_pool_size": 12}).raise_for_status()


def _batch(api, workspace_id, tmp_path, rows: int = 6) -> dict:
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(rows)))
    return ready_batch(api, workspace_id, dataset["id"], instructions=[SENTIMENT])


def _participants(api, study_id: str) -> set[str]:
    return {s["participant_id"] for s in api.get(f"/studies/{study_id}/submissions/").json()["results"]}


def _run(api, batch_id: str, **fields) -> set[str]:
    study = create_study(api, batch_id, **fields)
    publish(api, study["id"])
    study_in(api, study["id"], ("COMPLETED",))
    return _participants(api, study["id"])


def test_completion_action_fills_a_group_that_filters_then_use(api, workspace_id, tmp_path, small_pool):
    group = api.post(GROUPS, json={"name": "Took the pilot", "workspace_id": workspace_id}).json()
    code = {**DONE, "actions": [*DONE["actions"], {"action": "ADD_TO_PARTICIPANT_GROUP", "participant_group": group["id"]}]}
    pilot = _run(api, _batch(api, workspace_id, tmp_path)["id"], completion_codes=[code])
    members = {m["participant_id"] for m in api.get(f"{GROUPS}{group['id']}/participants/").json()["results"]}
    assert members and members == pilot
    allow = {"filter_id": "participant_group_allowlist", "selected_values": [group["id"]]}
    allowed = _run(api, _batch(api, workspace_id, tmp_path)["id"], completion_codes=[DONE], filters=[allow])
    assert allowed and allowed <= members
    block = {"filter_id": "participant_group_blocklist", "selected_values": [group["id"]]}
    blocked = _run(api, _batch(api, workspace_id, tmp_path)["id"], completion_codes=[DONE], filters=[block])
    assert blocked and not blocked & members


def test_previous_studies_blocklist_keeps_earlier_participants_out(api, workspace_id, tmp_path, small_pool):
    first = create_study(api, _batch(api, workspace_id, tmp_path)["id"], completion_codes=[DONE])
    publish(api, first["id"])
    study_in(api, first["id"], ("COMPLETED",))
    earlier = _participants(api, first["id"])
    block = {"filter_id": "previous_studies_blocklist", "selected_values": [first["id"]]}
    later = _run(api, _batch(api, workspace_id, tmp_path)["id"], completion_codes=[DONE], filters=[block])
    assert earlier and later and not earlier & later


def test_filters_and_group_actions_must_name_known_ids(api, workspace_id, tmp_path):
    batch = _batch(api, workspace_id, tmp_path, rows=2)
    bad_group = {"filter_id": "participant_group_allowlist", "selected_values": ["0" * 24]}
    error = assert_error(api.post("/studies/", json=study_body(batch["id"], filters=[bad_group])), 400)
    assert "filters[0].selected_values[0]" in error["detail"]
    bad_study = {"filter_id": "previous_studies_blocklist", "selected_values": []}
    assert "filters[0].selected_values" in assert_error(api.post("/studies/", json=study_body(batch["id"], filters=[bad_study])),
                                                       400)["detail"]
    code = {**DONE, "actions": [{"action": "ADD_TO_PARTICIPANT_GROUP", "participant_group": "nope"}]}
    error = assert_error(api.post("/studies/", json=study_body(batch["id"], completion_codes=[code])), 400)
    assert "completion_codes[0].actions[0].participant_group" in error["detail"]
    other = {"filter_id": "age", "selected_range": {"lower": 18, "upper": 99}}
    assert api.post("/studies/", json=study_body(batch["id"], filters=[other])).status_code == 201


def test_test_study_serves_the_task_as_html(api, workspace_id, tmp_path):
    batch = _batch(api, workspace_id, tmp_path, rows=2)
    study = create_study(api, batch["id"])
    answer = api.post(f"/studies/{study['id']}/test-study", json={})
    assert answer.status_code == 200
    test = answer.json()
    assert set(test) == {"study_id", "study_url"} and test["study_id"] != study["id"]
    page = httpx.get(test["study_url"])                                          # no token: a browser opens it
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert SENTIMENT["description"] in page.text and "Positive" in page.text and "Review 1, with a comma" in page.text
    publish(api, study["id"])
    assert_error(api.post(f"/studies/{study['id']}/test-study", json={}), 400)
    assert_error(api.post(f"/studies/{'0' * 24}/test-study", json={}), 404)
