"""The seed's ten steps ("Working with Batches"), done by hand with httpx against the sandbox."""

from __future__ import annotations

import time

from tests.sandbox.helpers import (AUTO_APPROVE, SENTIMENT, WHY, assert_error, assert_report, put_file, sentences_csv,
                                   study_in, wait_for, write_csv)


def test_seed_ten_steps_by_hand(api, workspace_id, tmp_path):
    rows, tasks_per_group, annotators = 100, 5, 3
    path = write_csv(tmp_path, sentences_csv(rows), "reviews.csv")
    started = time.monotonic()

    # 1. Create a dataset.
    created = api.post("/data-collection/datasets", json={"name": "Product reviews Q4 2024", "workspace_id": workspace_id})
    assert created.status_code == 201
    dataset = created.json()
    assert dataset["status"] == "UNINITIALISED" and dataset["name"] == "Product reviews Q4 2024"

    # 2. Upload: presigned URL, then a streamed PUT of the file.
    pointer = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/reviews.csv")
    assert pointer.status_code == 201
    assert pointer.json()["http_method"] == "PUT" and pointer.json()["expires_at"].endswith("Z")
    assert put_file(pointer.json()["upload_url"], path, {"Content-Type": "text/csv"}).status_code == 200

    # 3. Monitor dataset status.
    dataset = wait_for(lambda: api.get(f"/data-collection/datasets/{dataset['id']}").json(),
                       lambda d: d["status"] == "READY")
    assert dataset["total_datapoint_count"] == rows
    assert api.get(f"/data-collection/datasets/{dataset['id']}/status").json() == {"status": "READY"}

    # 4. Create a batch with the dataset.
    batch = api.post("/data-collection/batches", json={
        "workspace_id": workspace_id, "name": "Product review sentiment analysis", "dataset_id": dataset["id"],
        "task_details": {"task_name": "Review Sentiment Classification", "task_introduction": "<p>Read.</p>",
                         "task_steps": "<ol><li>Read</li></ol>"}}).json()
    assert batch["status"] == "UNINITIALISED" and batch["total_task_count"] == 0

    # 5. Create instructions (legacy endpoint, as in the seed).
    made = api.post(f"/data-collection/batches/{batch['id']}/instructions",
                    json={"instructions": [{**SENTIMENT, "order": 1}, {**WHY, "order": 2}]})
    assert made.status_code == 201 and len(made.json()) == 2

    # 6. Set up the batch; 7. monitor it.
    assert api.post(f"/data-collection/batches/{batch['id']}/setup",
                    json={"tasks_per_group": tasks_per_group}).status_code == 202
    batch = wait_for(lambda: api.get(f"/data-collection/batches/{batch['id']}").json(), lambda b: b["status"] == "READY")
    assert batch["total_task_count"] == rows
    assert batch["total_task_groups"] == rows // tasks_per_group

    # 8. Create the study; 9. publish it.
    study = api.post("/studies/", json={
        "name": "Product Review Sentiment Analysis", "internal_name": "sentiment-analysis-q4-2024",
        "description": "<p>Help us.</p>", "estimated_completion_time": 15, "maximum_allowed_time": 45,
        "reward": 300, "data_collection_method": "AI_TASK_BUILDER_BATCH", "data_collection_id": batch["id"],
        "data_collection_metadata": {"annotators_per_task": annotators}, "completion_codes": AUTO_APPROVE}).json()
    assert study["total_available_places"] == batch["total_task_groups"] * annotators
    assert study["status"] == "UNPUBLISHED"
    published = api.post(f"/studies/{study['id']}/transition/", json={"action": "PUBLISH"})
    assert published.status_code == 200 and published.json()["status"] == "ACTIVE"
    assert_error(api.post(f"/studies/{study['id']}/transition/", json={"action": "PUBLISH"}), 400)
    study = study_in(api, study["id"], ("COMPLETED",))
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"upload to completed study took {elapsed:.1f} s"

    # 10. Retrieve responses: JSON pointer to a presigned CSV.
    assert_report(api, batch["id"], path, rows, tasks_per_group, annotators)

    submissions = api.get(f"/studies/{study['id']}/submissions/").json()
    approved = [s for s in submissions["results"] if s["status"] == "APPROVED"]
    assert len(approved) == study["total_available_places"]


def _page(*items: dict) -> dict:
    return {"rows": [{"columns": [{"items": list(items)}]}]}


def test_same_job_by_hand_on_v4(api, workspace_id, tmp_path):
    """The seed's job on today's path: a V4 dataset with a schema, an import job, batch_items with
    dataset_field items, a task_group_id field grouping the rows."""
    rows, group_size, annotators = 60, 4, 2
    path = write_csv(tmp_path, sentences_csv(rows, group_size=group_size), "reviews.csv")
    schema = {"strict": True, "fields": {"id": {"type": "metadata"}, "review_text": {"type": "text"},
                                         "product_name": {"type": "text"}, "META_gold": {"type": "metadata"},
                                         "META_TASK_GROUP_ID": {"type": "task_group_id"}}}
    created = api.post("/data-collection/datasets", json={"name": "Reviews V4", "workspace_id": workspace_id,
                                                          "schema": schema})
    assert created.status_code == 201 and created.json()["schema_version"] == 4
    dataset = created.json()

    pointer = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/reviews.csv").json()
    assert pointer["content_type"] == "text/csv"
    assert put_file(pointer["upload_url"], path, {"Content-Type": pointer["content_type"]}).status_code == 200
    job = wait_for(lambda: api.get(f"/data-collection/datasets/{dataset['id']}/imports/{pointer['import_id']}").json(),
                   lambda j: j["status"] in ("complete", "partial", "failed"))
    assert job["status"] == "complete" and job["accepted_count"] == rows

    layout = [{"display_position": "intro", **_page({"type": "rich_text", "content": "<p>Welcome</p>"})},
              _page({"type": "dataset_field", "field": "review_text"}, {"type": "dataset_field", "field": "product_name"},
                    SENTIMENT, WHY)]
    batch = api.post("/data-collection/batches", json={
        "workspace_id": workspace_id, "name": "Reviews V4", "dataset_id": dataset["id"], "batch_items": layout,
        "task_details": {"task_name": "Sentiment", "task_introduction": "<p>Read.</p>", "task_steps": "<ol></ol>"}})
    assert batch.status_code == 201, batch.text
    batch = batch.json()
    assert batch["total_instruction_count"] == 2
    assert api.post(f"/data-collection/batches/{batch['id']}/setup", json={}).status_code == 202
    batch = wait_for(lambda: api.get(f"/data-collection/batches/{batch['id']}").json(), lambda b: b["status"] == "READY")
    assert batch["total_task_groups"] == rows // group_size and batch["total_task_count"] == rows

    study = api.post("/studies/", json={
        "name": "Reviews V4", "internal_name": "reviews-v4", "description": "<p>Help.</p>",
        "estimated_completion_time": 10, "reward": 200, "data_collection_method": "AI_TASK_BUILDER_BATCH",
        "data_collection_id": batch["id"], "data_collection_metadata": {"annotators_per_task": annotators},
        "completion_codes": AUTO_APPROVE}).json()
    assert api.post(f"/studies/{study['id']}/transition/", json={"action": "PUBLISH"}).status_code == 200
    study_in(api, study["id"], ("COMPLETED",))
    assert_report(api, batch["id"], path, rows, group_size, annotators)
