"""Batches (API doc §3), legacy instructions (§4) and batch_items (§12)."""

from __future__ import annotations

import copy

import pytest

from tests.sandbox.helpers import (SENTIMENT, WHY, assert_error, create_dataset, create_v4_dataset, import_settled,
                                   ready_batch, ready_dataset, sentences_csv, strip_ids, upload_v4, wait_for,
                                   write_csv)

LEGACY = "/data-collection/batches/{}/instructions"
SUNSET = "Tue, 01 Sep 2026 23:59:59 GMT"

FIVE_TYPES = [
    SENTIMENT,
    {"type": "multiple_choice_with_free_text", "description": "Which is better?", "answer_limit": 1,
     "options": [{"label": "A", "value": "a", "heading": "Why A?"}, {"label": "B", "value": "b", "heading": "Why B?"}]},
    {"type": "free_text", "description": "Explain.", "validation": {"type": "string", "min": 10, "max": 50}},
    {"type": "free_text_with_unit", "description": "Temperature?", "unit_position": "suffix", "default_unit": "c",
     "unit_options": [{"label": "°C", "value": "c", "validation": {"type": "number", "min": 30, "max": 45}},
                      {"label": "°F", "value": "f", "validation": {"type": "number", "min": 86, "max": 113}}]},
    {"type": "file_upload", "description": "Photo?", "accepted_file_types": [".jpg", ".png"], "max_file_size_mb": 5,
     "min_file_count": 1, "max_file_count": 2},
]


def items_page(*items) -> list:
    return [{"rows": [{"columns": [{"items": list(items)}]}]}]


@pytest.fixture
def batch(api, workspace_id):
    response = api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id})
    assert response.status_code == 201
    return response.json()


def test_create_get_status_list_update(api, workspace_id, batch):
    assert batch["status"] == "UNINITIALISED" and batch["total_task_count"] == 0
    assert batch["workspace_id"] == workspace_id and batch["datasets"] == [] and batch["schema_version"] == 3
    assert api.get(f"/data-collection/batches/{batch['id']}").json() == batch
    assert api.get(f"/data-collection/batches/{batch['id']}/status").json() == {"status": "UNINITIALISED"}
    listed = api.get("/data-collection/batches", params={"workspace_id": workspace_id}).json()
    assert [b["id"] for b in listed["results"]] == [batch["id"]]
    dataset = create_dataset(api, workspace_id)
    updated = api.patch(f"/data-collection/batches/{batch['id']}",
                        json={"name": "renamed", "dataset_id": dataset["id"], "task_details": {"task_name": "T"}})
    assert updated.status_code == 200
    assert updated.json()["name"] == "renamed" and updated.json()["dataset_id"] == dataset["id"]
    assert updated.json()["datasets"][0]["id"] == dataset["id"]
    assert updated.json()["task_details"]["task_name"] == "T"


def test_batch_errors(api, workspace_id, batch):
    missing = "0192a3b4-d6e7-7f8a-0b1c-2d3e4f5a6b7c"
    for path in ("", "/status", "/instructions", "/report", "/responses"):
        assert_error(api.get(f"/data-collection/batches/{missing}{path}"), 404)
    assert_error(api.patch(f"/data-collection/batches/{missing}", json={"name": "x"}), 404)
    assert_error(api.post(f"/data-collection/batches/{missing}/setup", json={}), 404)
    assert "name" in assert_error(api.post("/data-collection/batches", json={"workspace_id": workspace_id}), 400)["detail"]
    assert "dataset_id" in assert_error(api.post("/data-collection/batches", json={
        "name": "b", "workspace_id": workspace_id, "dataset_id": missing}), 400)["detail"]
    assert "workspace_id" in assert_error(api.get("/data-collection/batches"), 400)["detail"]
    assert "name" in assert_error(api.patch(f"/data-collection/batches/{batch['id']}", json={"name": 3}), 400)["detail"]
    assert "auto_sync_enabled" in assert_error(api.patch(f"/data-collection/batches/{batch['id']}",
                                                         json={"auto_sync_enabled": "yes"}), 400)["detail"]
    assert_error(api.get(f"/data-collection/batches/{batch['id']}/report/"), 400)      # not READY


def test_legacy_instructions_post_get_put_with_deprecation_headers(api, batch):
    created = api.post(LEGACY.format(batch["id"]), json={"instructions": FIVE_TYPES})
    assert created.status_code == 201
    assert created.headers["Deprecation"] == "true" and created.headers["Sunset"] == SUNSET
    made = created.json()
    assert [i["type"] for i in made] == [i["type"] for i in FIVE_TYPES]
    assert all(i["batch_id"] == batch["id"] and i["id"] and i["created_at"] for i in made)
    listed = api.get(LEGACY.format(batch["id"]))
    assert listed.headers["Sunset"] == SUNSET
    assert listed.json()["meta"]["count"] == 5 and [i["id"] for i in listed.json()["results"]] == [i["id"] for i in made]
    assert api.get(f"/data-collection/batches/{batch['id']}").json()["total_instruction_count"] == 5
    # PUT replaces: keep the first (changed), drop the others, add one
    replaced = api.put(LEGACY.format(batch["id"]), json={"instructions": [
        {**made[0], "description": "Changed?"}, WHY]})
    assert replaced.status_code == 200 and replaced.headers["Deprecation"] == "true"
    assert [i["description"] for i in replaced.json()] == ["Changed?", WHY["description"]]
    assert replaced.json()[0]["id"] == made[0]["id"]
    assert api.get(LEGACY.format(batch["id"])).json()["meta"]["count"] == 2
    assert "instructions[0].id" in assert_error(
        api.put(LEGACY.format(batch["id"]), json={"instructions": [{**WHY, "id": "nope"}]}), 400)["detail"]


def test_second_post_appends(api, batch):
    api.post(LEGACY.format(batch["id"]), json={"instructions": [SENTIMENT]})
    api.post(LEGACY.format(batch["id"]), json={"instructions": [WHY]})
    results = api.get(LEGACY.format(batch["id"])).json()["results"]
    assert [i["type"] for i in results] == ["multiple_choice", "free_text"]
    assert [i["order"] for i in results] == [1, 2]


def broken(index: int, change: dict, remove: tuple = ()) -> dict:
    item = copy.deepcopy(FIVE_TYPES[index])
    item.update(change)
    for name in remove:
        item.pop(name)
    return item


@pytest.mark.parametrize("item, field", [
    ({"description": "no type"}, "instructions[0].type"),
    ({"type": "essay", "description": "x"}, "instructions[0].type"),
    (broken(0, {}, ("description",)), "instructions[0].description"),
    (broken(0, {"description": 7}), "instructions[0].description"),
    (broken(0, {}, ("answer_limit",)), "instructions[0].answer_limit"),
    (broken(0, {"answer_limit": 0}), "instructions[0].answer_limit"),
    (broken(0, {"answer_limit": 4}), "instructions[0].answer_limit"),
    (broken(0, {"answer_limit": "1"}), "instructions[0].answer_limit"),
    (broken(0, {"options": []}), "instructions[0].options"),
    (broken(0, {"options": [{"label": "A", "value": "x"}, {"label": "B", "value": "x"}]}), "instructions[0].options[1].value"),
    (broken(0, {"options": [{"label": "A"}]}), "instructions[0].options[0].value"),
    (broken(0, {"options": [{"label": "A", "value": "a", "exclusive": "yes"}]}), "instructions[0].options[0].exclusive"),
    (broken(1, {"options": [{"label": "A", "value": "a"}]}), "instructions[0].options[0].heading"),
    (broken(2, {"validation": {"type": "string", "min": 10, "max": 5}}), "instructions[0].validation"),
    (broken(2, {"validation": {"type": "string", "min": -1}}), "instructions[0].validation.min"),
    (broken(3, {"unit_options": [{"label": "°C", "value": "c"}]}), "instructions[0].unit_options"),
    (broken(3, {"unit_position": "middle"}), "instructions[0].unit_position"),
    (broken(3, {"default_unit": "k"}), "instructions[0].default_unit"),
    (broken(3, {"unit_options": [{"label": "a", "value": "a", "validation": {"type": "number", "min": 5, "max": 1}},
                                  {"label": "b", "value": "b"}]}), "instructions[0].unit_options[0].validation"),
    (broken(4, {"accepted_file_types": ["jpg"]}), "instructions[0].accepted_file_types[0]"),
    (broken(4, {"max_file_size_mb": 0}), "instructions[0].max_file_size_mb"),
    (broken(4, {"min_file_count": 0}), "instructions[0].min_file_count"),
    (broken(4, {"min_file_count": 3, "max_file_count": 2}), "instructions[0].max_file_count"),
])
def test_instruction_field_rules(api, batch, item, field):
    response = api.post(LEGACY.format(batch["id"]), json={"instructions": [item]})
    error = assert_error(response, 400)
    assert field in error["detail"], error["detail"]
    assert response.headers["Deprecation"] == "true"
    assert api.get(LEGACY.format(batch["id"])).json()["meta"]["count"] == 0


def test_instructions_body_must_be_a_non_empty_list(api, batch):
    for body in ({}, {"instructions": []}, {"instructions": "x"}):
        assert "instructions" in assert_error(api.post(LEGACY.format(batch["id"]), json=body), 400)["detail"]


def test_unlimited_answer_limit_and_exclusive_are_valid(api, batch):
    item = {**SENTIMENT, "answer_limit": -1,
            "options": [*SENTIMENT["options"], {"label": "None of the above", "value": "none", "exclusive": True}]}
    assert api.post(LEGACY.format(batch["id"]), json={"instructions": [item]}).status_code == 201


def test_retired_legacy_instructions_answer_410(api, control, batch):
    control.post("/_sandbox/settings", json={"legacy_instructions": "retired"}).raise_for_status()
    for method in ("GET", "POST", "PUT"):
        response = api.request(method, LEGACY.format(batch["id"]), json={"instructions": [WHY]})
        error = assert_error(response, 410)
        assert error["title"] == "Gone" and "batch_items" in error["detail"]


def test_legacy_instructions_on_batch_items_batch_answer_422(api, workspace_id):
    batch = api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id,
                                                        "batch_items": items_page(SENTIMENT)}).json()
    for method in ("GET", "POST", "PUT"):
        assert_error(api.request(method, LEGACY.format(batch["id"]), json={"instructions": [WHY]}), 422)


def test_batch_items_are_accepted_and_counted(api, workspace_id):
    pages = [{"display_position": "intro", "rows": [{"columns": [{"items": [{"type": "rich_text", "content": "<p>Hi</p>"}]}]}]},
             {"rows": [{"columns": [{"items": [{"type": "dataset_field", "field": "review_text"},
                                               {"type": "image", "url": "https://example.org/a.png"}, *FIVE_TYPES]}]}]}]
    response = api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id, "batch_items": pages})
    assert response.status_code == 201
    shown = response.json()["batch_items"]
    assert strip_ids(shown) == pages and response.json()["total_instruction_count"] == 5
    assert all(isinstance(page["id"], str) for page in shown)
    cleared = api.patch(f"/data-collection/batches/{response.json()['id']}", json={"batch_items": None}).json()
    assert cleared["batch_items"] is None and cleared["total_instruction_count"] == 0


def test_invalid_batch_items_answer_422_with_positions(api, workspace_id, batch, tmp_path):
    pages = [{"rows": [{"columns": [{"items": [SENTIMENT, {"type": "free_text"}]}]}]},
             {"display_position": "outro", "rows": [{"columns": [{"items": [WHY]}]}]},
             {"rows": "nope"}]
    response = api.patch(f"/data-collection/batches/{batch['id']}", json={"batch_items": pages})
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "INVALID_BATCH_ITEMS"
    issues = body["issues"]
    assert {"page": 0, "row": 0, "column": 0, "item": 1, "type": "free_text",
            "message": "description: description is required"} in issues
    assert any(i["page"] == 1 and i["item"] == 0 and "outro" in i["message"] for i in issues)
    assert any(i["page"] == 2 and "row" not in i for i in issues)
    # dataset field references are checked once the dataset is known
    dataset = create_v4_dataset(api, workspace_id, {"fields": {"review_text": {"type": "text"}}})
    response = api.post("/data-collection/batches", json={
        "name": "b", "workspace_id": workspace_id, "dataset_id": dataset["id"],
        "batch_items": items_page({"type": "dataset_field", "field": "missing_col"}, WHY)})
    assert response.status_code == 422
    assert response.json()["issues"] == [{"page": 0, "row": 0, "column": 0, "item": 0, "type": "dataset_field",
                                          "field": "missing_col", "message": "Field does not exist in the dataset schema"}]


def test_setup_refusals(api, workspace_id, batch, tmp_path):
    setup = f"/data-collection/batches/{batch['id']}/setup"
    assert "dataset_id" in assert_error(api.post(setup, json={}), 400)["detail"]
    dataset = create_dataset(api, workspace_id)
    assert "dataset_id" in assert_error(api.post(setup, json={"dataset_id": dataset["id"]}), 400)["detail"]  # UNINITIALISED
    assert "tasks_per_group" in assert_error(api.post(setup, json={"tasks_per_group": 0}), 400)["detail"]
    ready = ready_dataset(api, workspace_id, write_csv(tmp_path, "review_text\nok\n"))
    assert "no instructions" in assert_error(api.post(setup, json={"dataset_id": ready["id"]}), 400)["detail"]
    # batch_items with a column the dataset lacks: 422 at setup
    api.patch(f"/data-collection/batches/{batch['id']}",
              json={"batch_items": items_page({"type": "dataset_field", "field": "nope"}, WHY)})
    assert api.post(setup, json={"dataset_id": ready["id"]}).status_code == 422


def test_setup_groups_by_tasks_per_group(api, workspace_id, tmp_path):
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(23)))
    batch = ready_batch(api, workspace_id, dataset["id"], tasks_per_group=5)
    assert batch["total_task_count"] == 23 and batch["total_task_groups"] == 5 and batch["tasks_per_group"] == 5
    groups = api.get(f"/data-collection/batches/{batch['id']}/task-groups").json()
    assert len(set(groups)) == 5


def test_setup_default_is_one_task_per_group_and_batch_items_work(api, workspace_id, tmp_path):
    dataset = create_v4_dataset(api, workspace_id)
    import_settled(api, dataset["id"], upload_v4(api, dataset["id"], write_csv(tmp_path, sentences_csv(4)))["import_id"])
    batch = ready_batch(api, workspace_id, dataset["id"],
                        batch_items=items_page({"type": "dataset_field", "field": "review_text"}, SENTIMENT))
    assert batch["total_task_groups"] == 4 and batch["total_instruction_count"] == 1


def test_setup_follows_the_task_group_column(api, workspace_id, tmp_path):
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(10, group_size=4)))
    batch = ready_batch(api, workspace_id, dataset["id"], tasks_per_group=1)
    assert batch["total_task_groups"] == 3          # g0 (4 rows), g1 (4), g2 (2)


def test_batch_in_processing_refuses_changes(api, control, workspace_id, tmp_path):
    control.post("/_sandbox/settings", json={"batch_setup_seconds": 3}).raise_for_status()
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(3)))
    batch = api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id,
                                                        "dataset_id": dataset["id"]}).json()
    api.post(LEGACY.format(batch["id"]), json={"instructions": [SENTIMENT]})
    assert api.post(f"/data-collection/batches/{batch['id']}/setup", json={}).status_code == 202
    assert api.get(f"/data-collection/batches/{batch['id']}/status").json()["status"] == "PROCESSING"
    assert_error(api.post(f"/data-collection/batches/{batch['id']}/setup", json={}), 400)
    assert_error(api.post(LEGACY.format(batch["id"]), json={"instructions": [WHY]}), 400)
    wait_for(lambda: api.get(f"/data-collection/batches/{batch['id']}/status").json(), lambda s: s["status"] == "READY")
