"""Studies (API doc §6): create, list, get, transitions, submissions, review, export, report."""

from __future__ import annotations

import io

import httpx
import pandas as pd
import pytest

from tests.sandbox.helpers import (AUTO_APPROVE, MANUAL_REVIEW, assert_error, create_study, publish, ready_batch,
                                   ready_dataset, sentences_csv, study_body, study_in, wait_for, write_csv)


@pytest.fixture
def batch(api, workspace_id, tmp_path):
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(6)))
    return ready_batch(api, workspace_id, dataset["id"], tasks_per_group=2)   # 3 task groups


def test_create_derives_places_and_cost(api, batch, control):
    study = create_study(api, batch["id"], annotators_per_task=2, max_time=99)   # max_time: old client field, ignored
    assert study["total_available_places"] == 6 and study["status"] == "UNPUBLISHED"
    assert len(study["id"]) == 24 and study["data_collection_id"] == batch["id"]
    fee = control.get("/_sandbox/settings").json()["service_fee_percent"]
    assert study["total_cost"] == round(300 * 6 * (1 + fee / 100))
    assert study["data_collection_metadata"]["annotators_per_task"] == 2
    assert api.get(f"/studies/{study['id']}/").json()["id"] == study["id"]
    explicit = create_study(api, batch["id"], annotators_per_task=2, total_available_places=4)
    assert explicit["total_available_places"] == 4


@pytest.mark.parametrize("change, field", [
    ({"reward": 0}, "reward"), ({"reward": 2.5}, "reward"), ({"reward": "300"}, "reward"),
    ({"estimated_completion_time": 0}, "estimated_completion_time"),
    ({"maximum_allowed_time": 10}, "maximum_allowed_time"),
    ({"data_collection_method": "DC_TOOL"}, "data_collection_method"),
    ({"data_collection_id": "0192a3b4-d6e7-7f8a-0b1c-2d3e4f5a6b7c"}, "data_collection_id"),
    ({"data_collection_metadata": {"annotators_per_task": 0}}, "data_collection_metadata.annotators_per_task"),
    ({"total_available_places": 100}, "total_available_places"),
    ({"name": ""}, "name"),
    ({"completion_codes": [{"code": "X"}]}, "completion_codes.0.code_type"),
    ({"project": "000000000000000000000000"}, "project"),
])
def test_create_refusals(api, batch, change, field):
    error = assert_error(api.post("/studies/", json={**study_body(batch["id"]), **change}), 400)
    assert field in error["detail"], error["detail"]


def test_create_needs_a_ready_batch(api, workspace_id):
    unready = api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id}).json()
    error = assert_error(api.post("/studies/", json=study_body(unready["id"])), 400)
    assert "READY" in error["detail"]["data_collection_id"][0]


def test_transitions_follow_the_status_rules(api, batch, control):
    control.post("/_sandbox/settings", json={"participant_arrival_per_second": 0.2}).raise_for_status()
    study = create_study(api, batch["id"])
    transition = f"/studies/{study['id']}/transition/"
    for action in ("PAUSE", "START", "STOP"):
        assert "action" in assert_error(api.post(transition, json={"action": action}), 400)["detail"]
    assert_error(api.post(transition, json={"action": "LAUNCH"}), 400)
    assert publish(api, study["id"])["status"] == "ACTIVE"
    assert "UNPUBLISHED" in assert_error(api.post(transition, json={"action": "PUBLISH"}), 400)["detail"]["action"][0]
    assert api.post(transition, json={"action": "PAUSE"}).json()["status"] == "PAUSED"
    assert api.post(transition, json={"action": "START"}).json()["status"] == "ACTIVE"
    stopped = api.post(transition, json={"action": "STOP"}).json()
    assert stopped["status"] in ("AWAITING REVIEW", "COMPLETED")
    assert_error(api.post("/studies/000000000000000000000000/transition/", json={"action": "PUBLISH"}), 404)


def test_list_filters_by_status_with_pagination_shape(api, batch):
    first, second = create_study(api, batch["id"]), create_study(api, batch["id"])
    publish(api, first["id"])
    listing = api.get("/studies/").json()
    assert set(listing) == {"results", "_links", "meta"} and listing["meta"]["count"] == 2
    assert [s["id"] for s in api.get("/studies/", params={"status": "UNPUBLISHED"}).json()["results"]] == [second["id"]]
    page = api.get("/studies/", params={"limit": 1}).json()
    assert len(page["results"]) == 1 and page["_links"]["next"]["href"].endswith("limit=1&offset=1")
    assert "status" in assert_error(api.get("/studies/", params={"status": "FINISHED"}), 400)["detail"]
    assert_error(api.get("/studies/", params={"limit": "x"}), 400)


def test_publish_needs_enough_balance_and_debits_it(api, batch, control):
    study = create_study(api, batch["id"])
    control.post("/_sandbox/settings", json={"account_balance_cents": study["total_cost"] - 1}).raise_for_status()
    assert "total_cost" in assert_error(api.post(f"/studies/{study['id']}/transition/", json={"action": "PUBLISH"}), 400)["detail"]
    assert api.get(f"/studies/{study['id']}/").json()["status"] == "UNPUBLISHED"
    control.post("/_sandbox/settings", json={"account_balance_cents": study["total_cost"] + 5}).raise_for_status()
    publish(api, study["id"])
    assert api.get("/users/me").json()["balance"] == 5


def test_auto_approve_completes_the_study(api, batch, control):
    control.post("/_sandbox/settings", json={"return_rate": 0.3, "timeout_rate": 0.2}).raise_for_status()
    study = create_study(api, batch["id"], annotators_per_task=2, completion_codes=AUTO_APPROVE)
    publish(api, study["id"])
    study = study_in(api, study["id"], ("COMPLETED",))
    counts = api.get(f"/studies/{study['id']}/submissions/counts/").json()
    assert counts["APPROVED"] == 6 and counts["AWAITING REVIEW"] == 0 and counts["ACTIVE"] == 0
    assert counts["TOTAL"] == 6 + counts["RETURNED"] + counts["TIMED-OUT"]
    submissions = api.get(f"/studies/{study['id']}/submissions/").json()
    assert submissions["meta"]["count"] == counts["TOTAL"]
    done = [s for s in submissions["results"] if s["status"] == "APPROVED"]
    assert all(s["study_code"] == "DONE123" and s["is_complete"] and s["completed_at"] for s in done)
    # each task group has exactly 2 distinct annotators among the completed submissions
    per_group = {}
    for s in done:
        per_group.setdefault(s["task_group_id"], set()).add(s["participant_id"])
    assert len(per_group) == 3 and all(len(p) == 2 for p in per_group.values())
    one = api.get(f"/submissions/{done[0]['id']}/").json()
    assert one == done[0]


def test_manual_review_waits_then_bulk_approve_completes(api, batch):
    study = create_study(api, batch["id"], completion_codes=MANUAL_REVIEW)
    publish(api, study["id"])
    study = study_in(api, study["id"], ("AWAITING REVIEW",))
    waiting = api.get(f"/studies/{study['id']}/submissions/", params={"status": "AWAITING REVIEW"}).json()["results"]
    assert len(waiting) == 3
    # one by transition, one by ids, one by participant id
    response = api.post(f"/submissions/{waiting[0]['id']}/transition/", json={"action": "APPROVE"})
    assert response.status_code == 200 and response.json()["status"] == "APPROVED"
    again = api.post(f"/submissions/{waiting[0]['id']}/transition/", json={"action": "APPROVE"})
    assert again.status_code == 200 and again.json()["status"] == "APPROVED"  # §5.7: the second request is ignored
    rejected = {"action": "REJECT", "message": "x" * 100, "rejection_category": "OTHER"}
    assert_error(api.post(f"/submissions/{waiting[0]['id']}/transition/", json=rejected), 400)  # irreversible
    assert api.post("/submissions/bulk-approve/", json={"submission_ids": [waiting[1]["id"]]}).status_code == 200
    assert api.get(f"/studies/{study['id']}/").json()["status"] == "AWAITING REVIEW"
    assert api.post("/submissions/bulk-approve/", json={"study_id": study["id"],
                                                       "participant_ids": [waiting[2]["participant_id"]]}).status_code == 200
    assert api.get(f"/studies/{study['id']}/").json()["status"] == "COMPLETED"


def test_reject_needs_message_and_category(api, batch):
    study = create_study(api, batch["id"], completion_codes=MANUAL_REVIEW)
    publish(api, study["id"])
    study_in(api, study["id"], ("AWAITING REVIEW",))
    target = api.get(f"/studies/{study['id']}/submissions/").json()["results"][0]
    path = f"/submissions/{target['id']}/transition/"
    assert_error(api.post(path, json={"action": "REJECT", "message": "short", "rejection_category": "LOW_EFFORT"}), 400)
    response = api.post(path, json={"action": "REJECT", "message": "x" * 100, "rejection_category": "LOW_EFFORT"})
    assert response.json()["status"] == "REJECTED"


def test_submission_and_bulk_approve_errors(api, batch):
    assert_error(api.get("/submissions/000000000000000000000000/"), 404)
    assert_error(api.get("/studies/000000000000000000000000/submissions/"), 404)
    assert_error(api.get("/studies/000000000000000000000000/submissions/counts/"), 404)
    assert_error(api.post("/submissions/bulk-approve/", json={}), 400)
    assert "submission_ids[0]" in assert_error(
        api.post("/submissions/bulk-approve/", json={"submission_ids": ["nope"]}), 400)["detail"]
    assert "study_id" in assert_error(
        api.post("/submissions/bulk-approve/", json={"study_id": "nope", "participant_ids": ["p"]}), 400)["detail"]


def test_no_completion_codes_means_manual_review(api, batch):
    study = create_study(api, batch["id"])
    publish(api, study["id"])
    assert study_in(api, study["id"], ("AWAITING REVIEW",))["status"] == "AWAITING REVIEW"


def test_study_export_csv(api, batch):
    study = create_study(api, batch["id"], completion_codes=AUTO_APPROVE)
    publish(api, study["id"])
    study_in(api, study["id"], ("COMPLETED",))
    response = api.get(f"/studies/{study['id']}/export/")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    export = pd.read_csv(io.StringIO(response.text), dtype=str, keep_default_na=False)
    approved = export[export["Status"] == "APPROVED"]
    assert len(approved) == 3 and (approved["Completed at"] != "").all()
    assert_error(api.get("/studies/000000000000000000000000/export/"), 404)


def test_report_inline_setting_answers_the_csv(api, batch, control):
    study = create_study(api, batch["id"], completion_codes=AUTO_APPROVE)
    publish(api, study["id"])
    study_in(api, study["id"], ("COMPLETED",))
    pointer = api.get(f"/data-collection/batches/{batch['id']}/report/").json()
    pointed = httpx.get(pointer["url"]).text
    control.post("/_sandbox/settings", json={"report_delivery": "inline"}).raise_for_status()
    inline = api.get(f"/data-collection/batches/{batch['id']}/report/")
    assert inline.headers["Content-Type"].startswith("text/csv")
    assert inline.text == pointed


def test_report_url_signature_is_checked(api, batch):
    pointer = api.get(f"/data-collection/batches/{batch['id']}/report/").json()
    assert httpx.get(pointer["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403


def test_project_studies(api, batch):
    study = create_study(api, batch["id"])
    projects = api.get(f"/workspaces/{api.get('/workspaces/').json()['results'][0]['id']}/projects/").json()
    listed = api.get(f"/projects/{projects['results'][0]['id']}/studies/").json()
    assert [s["id"] for s in listed["results"]] == [study["id"]]
    assert_error(api.get("/projects/000000000000000000000000/studies/"), 404)


def test_responses_json(api, batch):
    study = create_study(api, batch["id"], completion_codes=AUTO_APPROVE)
    publish(api, study["id"])
    study_in(api, study["id"], ("COMPLETED",))
    responses = wait_for(lambda: api.get(f"/data-collection/batches/{batch['id']}/responses").json(),
                         lambda r: r["meta"]["count"] > 0)
    # 6 datapoints × 2 instructions × 1 annotator
    assert responses["meta"]["count"] == 12
    kinds = {r["response"]["type"] for r in responses["results"]}
    assert kinds == {"multiple_choice", "free_text"}


def test_patch_before_publish_recomputes_places_and_cost(api, batch, control):
    study = create_study(api, batch["id"])
    changed = api.patch(f"/studies/{study['id']}/", json={"reward": 500, "name": "Renamed",
                                                          "data_collection_metadata": {"annotators_per_task": 2}})
    assert changed.status_code == 200
    body = changed.json()
    fee = control.get("/_sandbox/settings").json()["service_fee_percent"]
    assert body["name"] == "Renamed" and body["total_available_places"] == 6
    assert body["total_cost"] == round(500 * 6 * (1 + fee / 100))
    assert "total_available_places" in assert_error(
        api.patch(f"/studies/{study['id']}/", json={"total_available_places": 7}), 400)["detail"]
    assert "reward" in assert_error(api.patch(f"/studies/{study['id']}/", json={"reward": -1}), 400)["detail"]
    assert_error(api.patch("/studies/000000000000000000000000/", json={"name": "x"}), 404)


def test_after_publish_places_and_annotators_may_only_grow(api, batch, control):
    control.post("/_sandbox/settings", json={"participant_arrival_per_second": 0.5}).raise_for_status()
    study = create_study(api, batch["id"], annotators_per_task=1)
    publish(api, study["id"])
    balance = api.get("/users/me").json()["balance"]
    assert "reward" in assert_error(api.patch(f"/studies/{study['id']}/", json={"reward": 1000}), 400)["detail"]
    assert_error(api.patch(f"/studies/{study['id']}/", json={"total_available_places": 2}), 400)
    grown = api.patch(f"/studies/{study['id']}/", json={"data_collection_metadata": {"annotators_per_task": 2}}).json()
    assert grown["total_available_places"] == 6
    assert api.get("/users/me").json()["balance"] == balance - (grown["total_cost"] - study["total_cost"])
    assert_error(api.patch(f"/studies/{study['id']}/", json={"data_collection_metadata": {"annotators_per_task": 1}}), 400)


def test_delete_only_unpublished(api, batch):
    study = create_study(api, batch["id"])
    assert api.delete(f"/studies/{study['id']}/").status_code == 204
    assert_error(api.get(f"/studies/{study['id']}/"), 404)
    published = create_study(api, batch["id"])
    publish(api, published["id"])
    assert_error(api.delete(f"/studies/{published['id']}/"), 400)
    assert_error(api.delete("/studies/000000000000000000000000/"), 404)
