"""The batch_items rules (now §3 of the API facts): dataset_field needs a V4 schema field of a displayable
type, once per page; intro/outro pages hold content only; rows hold 1-2 columns; server-assigned ids that a
PATCH echoes to keep an entry and omits to drop it."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import (SENTIMENT, WHY, create_v4_dataset, import_settled, ready_dataset, strip_ids,
                                   upload_v4, write_csv)

BATCHES = "/data-collection/batches"
SCHEMA = {"fields": {"text": {"type": "text"}, "photo": {"type": "image_url"}, "source": {"type": "metadata"},
                     "group": {"type": "task_group_id"}}}


def page(*items, **fields) -> dict:
    return {**fields, "rows": [{"columns": [{"items": list(items)}]}]}


def field(name: str) -> dict:
    return {"type": "dataset_field", "field": name}


def create(api, workspace_id, items, dataset_id=None):
    return api.post(BATCHES, json={"name": "b", "workspace_id": workspace_id, "dataset_id": dataset_id,
                                   "batch_items": items})


def test_dataset_field_on_a_v3_dataset_is_422_with_positions(api, workspace_id, tmp_path):
    v3 = ready_dataset(api, workspace_id, write_csv(tmp_path, "text\nhello\n"))
    response = create(api, workspace_id, [page(SENTIMENT), page(WHY, field("text"))], v3["id"])
    assert response.status_code == 422
    assert response.json() == {"type": "INVALID_BATCH_ITEMS", "issues": [
        {"page": 1, "row": 0, "column": 0, "item": 1, "type": "dataset_field", "field": "text",
         "message": "dataset_field items require a V4 dataset with a schema"}]}


def test_v3_leniency_setting_accepts_them(api, control, workspace_id, tmp_path):
    control.post("/_sandbox/settings", json={"v3_dataset_field_items": "accepted"}).raise_for_status()
    v3 = ready_dataset(api, workspace_id, write_csv(tmp_path, "text\nhello\n"))
    assert create(api, workspace_id, [page(field("text"), WHY)], v3["id"]).status_code == 201


def test_v4_dataset_fields_must_be_displayable_schema_fields_once_per_page(api, workspace_id):
    dataset = create_v4_dataset(api, workspace_id, SCHEMA)
    items = [page(field("text"), field("photo"), field("text"), field("source"), field("group"), field("nope"), WHY),
             page(field("text"), SENTIMENT)]
    response = create(api, workspace_id, items, dataset["id"])
    assert response.status_code == 422
    issues = {(i["page"], i["item"]): i for i in response.json()["issues"]}
    assert set(issues) == {(0, 2), (0, 3), (0, 4), (0, 5)}                    # page 1 may show "text" again
    assert issues[(0, 2)]["message"] == "the same field may not be referenced more than once on the same page"
    assert "metadata" in issues[(0, 3)]["message"] and "task_group_id" in issues[(0, 4)]["message"]
    assert issues[(0, 5)] == {"page": 0, "row": 0, "column": 0, "item": 5, "type": "dataset_field", "field": "nope",
                              "message": "Field does not exist in the dataset schema"}
    assert create(api, workspace_id, items[1:], dataset["id"]).status_code == 201


def test_v4_dataset_without_schema_refuses_dataset_fields(api, workspace_id):
    dataset = create_v4_dataset(api, workspace_id, {})
    issues = create(api, workspace_id, [page(field("text"), WHY)], dataset["id"]).json()["issues"]
    assert issues[0]["field"] == "text" and "V4 dataset with a schema" in issues[0]["message"]


@pytest.mark.parametrize("items, where, message", [
    ([page(WHY, display_position="intro")], {"page": 0, "row": 0, "column": 0, "item": 0},
     'Pages with display_position "intro" or "outro" may only contain image or rich_text content blocks'),
    ([page(field("text"), display_position="outro")], {"page": 0, "row": 0, "column": 0, "item": 0},
     'Pages with display_position "intro" or "outro" may only contain image or rich_text content blocks'),
    ([{"rows": [{"columns": [{"items": [WHY]}] * 3}]}], {"page": 0, "row": 0}, "a row must be an object with 1 or 2 'columns'"),
    ([{"rows": [{"columns": [{"items": []}]}]}], {"page": 0, "row": 0, "column": 0},
     "a column must be an object with a non-empty 'items' list"),
    ([page(WHY, display_position="middle")], {"page": 0}, "display_position must be 'body', 'intro' or 'outro'"),
    ([], {}, "batch_items must be a non-empty list of pages"),
])
def test_structure_rules(api, workspace_id, items, where, message):
    response = create(api, workspace_id, items)
    assert response.status_code == 422
    issue = response.json()["issues"][0]
    assert {k: issue[k] for k in where} == where and issue["message"] == message
    assert not set(issue) - {"page", "row", "column", "item", "type", "field", "message"}


def test_body_position_and_content_blocks_are_accepted(api, workspace_id):
    items = [page({"type": "rich_text", "content": "**Hi**", "content_format": "markdown"},
                  {"type": "image", "url": "https://example.org/a.png", "alt_text": "a"}, display_position="intro"),
             page(WHY, display_position="body"), page({"type": "rich_text", "content": "<p>Bye</p>"},
                                                      display_position="outro")]
    response = create(api, workspace_id, items)
    assert response.status_code == 201 and response.json()["total_instruction_count"] == 1


def test_ids_are_assigned_kept_when_echoed_and_dropped_when_omitted(api, workspace_id):
    batch = create(api, workspace_id, [page(SENTIMENT, WHY), page(WHY)]).json()
    layout = batch["batch_items"]
    ids = [layout[0]["id"], layout[0]["rows"][0]["id"], layout[0]["rows"][0]["columns"][0]["id"],
           *(item["id"] for item in layout[0]["rows"][0]["columns"][0]["items"]), layout[1]["id"]]
    assert len(set(ids)) == len(ids) and all(ids)
    kept = layout[0]["rows"][0]["columns"][0]["items"][0]                       # the SENTIMENT item, with its id
    patch = [{**layout[0], "rows": [{**layout[0]["rows"][0], "columns": [
        {**layout[0]["rows"][0]["columns"][0], "items": [kept, {**WHY, "description": "Why, briefly?"}]}]}]}]
    patched = api.patch(f"{BATCHES}/{batch['id']}", json={"batch_items": patch})
    assert patched.status_code == 200
    items = patched.json()["batch_items"][0]["rows"][0]["columns"][0]["items"]
    assert items[0]["id"] == kept["id"] and items[1]["id"] not in ids            # new item, new id
    assert len(patched.json()["batch_items"]) == 1 and patched.json()["total_instruction_count"] == 2
    unknown = [{**patch[0], "id": "not-an-id-of-this-batch"}]
    response = api.patch(f"{BATCHES}/{batch['id']}", json={"batch_items": unknown})
    assert response.status_code == 422 and response.json()["issues"][0]["page"] == 0
    dropped = [layout[1]]                                                       # page 1 was dropped by the PATCH
    assert api.patch(f"{BATCHES}/{batch['id']}", json={"batch_items": dropped}).status_code == 422
    assert strip_ids(patched.json()["batch_items"]) == strip_ids(patch)


def test_setup_rechecks_dataset_fields_against_the_dataset(api, workspace_id, tmp_path):
    schema = {"fields": {"text": {"type": "text"}}}
    batch = create(api, workspace_id, [page(field("text"), field("other"), WHY)]).json()   # no dataset yet: accepted
    dataset = create_v4_dataset(api, workspace_id, schema)
    job = import_settled(api, dataset["id"], upload_v4(api, dataset["id"], write_csv(tmp_path, "text\na\n"))["import_id"])
    assert job["status"] == "complete"
    response = api.post(f"{BATCHES}/{batch['id']}/setup", json={"dataset_id": dataset["id"]})
    assert response.status_code == 422 and response.json()["issues"][0]["field"] == "other"
