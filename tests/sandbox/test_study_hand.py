"""What the sandbox refuses and does when a running study is paused, resumed, stopped or given places (§5.3, §5.4)."""

from __future__ import annotations

import time

import pytest

from tests.sandbox.helpers import assert_error, create_study, publish, ready_batch, ready_dataset, sentences_csv, wait_for, write_csv


@pytest.fixture
def batch(api, workspace_id, tmp_path):
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(6)))
    return ready_batch(api, workspace_id, dataset["id"], tasks_per_group=2)   # 3 task groups


def submissions(api, study_id: str) -> int:
    return len(api.get(f"/studies/{study_id}/submissions/").json()["results"])


def test_a_paused_study_takes_nobody_new_and_goes_on_after_start(api, batch, control):
    control.post("/_sandbox/settings", json={"participant_arrival_per_second": 4.0, "submission_seconds": 20.0}).raise_for_status()
    study = create_study(api, batch["id"], annotators_per_task=3)   # 9 places
    publish(api, study["id"])
    wait_for(lambda: {"n": submissions(api, study["id"])}, lambda r: r["n"] >= 1)
    api.post(f"/studies/{study['id']}/transition/", json={"action": "PAUSE"}).raise_for_status()
    held = submissions(api, study["id"])
    time.sleep(1.5)
    assert submissions(api, study["id"]) == held
    assert api.get(f"/studies/{study['id']}/").json()["status"] == "PAUSED"
    api.post(f"/studies/{study['id']}/transition/", json={"action": "START"}).raise_for_status()
    wait_for(lambda: {"n": submissions(api, study["id"])}, lambda r: r["n"] > held, timeout_seconds=10)


def test_places_beyond_task_groups_times_annotators_and_after_stop_are_refused(api, batch, control):
    control.post("/_sandbox/settings", json={"participant_arrival_per_second": 0.2}).raise_for_status()
    study = create_study(api, batch["id"], annotators_per_task=2)   # 6 places
    publish(api, study["id"])
    detail = assert_error(api.patch(f"/studies/{study['id']}/", json={"total_available_places": 7}), 400)["detail"]
    assert "total_available_places" in detail
    both = api.patch(f"/studies/{study['id']}/", json={"total_available_places": 7,
                                                       "data_collection_metadata": {"annotators_per_task": 3}})
    assert both.status_code == 200 and both.json()["total_available_places"] == 7
    api.post(f"/studies/{study['id']}/transition/", json={"action": "STOP"}).raise_for_status()
    assert_error(api.patch(f"/studies/{study['id']}/", json={"total_available_places": 8}), 400)
    assert_error(api.post(f"/studies/{study['id']}/transition/", json={"action": "START"}), 400)
