"""The seed's ten steps ("Working with Batches"), done by hand with httpx against the sandbox."""

from __future__ import annotations

import io
import time

import httpx
import pandas as pd

from tests.sandbox.helpers import (AUTO_APPROVE, SENTIMENT, WHY, assert_error, put_file, sentences_csv, study_in,
                                   wait_for, write_csv)


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
    pointer = api.get(f"/data-collection/batches/{batch['id']}/report/")
    assert pointer.status_code == 200
    assert set(pointer.json()) == {"url", "expires_at", "http_method"} and pointer.json()["http_method"] == "GET"
    csv = httpx.get(pointer.json()["url"])
    assert csv.status_code == 200
    report = pd.read_csv(io.StringIO(csv.text), dtype=str, keep_default_na=False)
    original = pd.read_csv(path, dtype=str, keep_default_na=False)

    annotator_columns = [f"Annotator{k}_{p}" for k in range(1, annotators + 1) for p in ("ID", "Response", "Timestamp")]
    assert list(report.columns) == ["DataPoint_ID", "Task_Group_ID", "Task_Type", "Question",
                                    *original.columns, *annotator_columns]
    assert len(report) == rows * 2                               # one row per datapoint × instruction
    assert report["DataPoint_ID"].nunique() == rows
    assert report["Task_Group_ID"].nunique() == rows // tasks_per_group
    assert (report.groupby("Task_Group_ID")["DataPoint_ID"].nunique() == tasks_per_group).all()
    for question, kind in ((SENTIMENT["description"], "multiple_choice"), (WHY["description"], "free_text")):
        part = report[report["Question"] == question].reset_index(drop=True)
        assert (part["Task_Type"] == kind).all()
        pd.testing.assert_frame_equal(part[list(original.columns)], original)   # cell text byte for byte
    for k in range(1, annotators + 1):
        assert (report[f"Annotator{k}_ID"].str.fullmatch(r"[0-9a-f]{24}")).all()
        assert (report[f"Annotator{k}_Timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")).all()
    labels = report[report["Task_Type"] == "multiple_choice"][[f"Annotator{k}_Response" for k in range(1, 4)]]
    assert set(labels.stack()) <= {"Positive", "Neutral", "Negative"}
    # three different annotators on every row
    ids = report[[f"Annotator{k}_ID" for k in range(1, annotators + 1)]]
    assert (ids.nunique(axis=1) == annotators).all()

    submissions = api.get(f"/studies/{study['id']}/submissions/").json()
    approved = [s for s in submissions["results"] if s["status"] == "APPROVED"]
    assert len(approved) == study["total_available_places"]
