"""Helpers of the sandbox tests: the API steps of the seed, done with plain httpx calls."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Callable

import httpx
import pandas as pd

SENTIMENT = {"type": "multiple_choice", "description": "What is the overall sentiment of this review?",
             "answer_limit": 1, "created_by": "tests",
             "options": [{"label": "Positive", "value": "positive"}, {"label": "Neutral", "value": "neutral"},
                         {"label": "Negative", "value": "negative"}]}
WHY = {"type": "free_text", "description": "Briefly explain why you chose this sentiment rating",
       "created_by": "tests", "placeholder_text_input": "e.g. ..."}


def wait_for(read: Callable[[], dict], done: Callable[[dict], bool], timeout_seconds: float = 30,
             interval_seconds: float = 0.1) -> dict:
    """Call ``read`` until ``done(result)``; the last result, or AssertionError after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        result = read()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout_seconds} s; last: {result}")
        time.sleep(interval_seconds)


def assert_error(response: httpx.Response, status: int) -> dict:
    """Assert the Prolific error shape (API doc §1.1) with ``status``; returns the ``error`` object."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"status", "title", "error_code", "detail", "additional_information"}
    assert error["status"] == status
    return error


def write_csv(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    """Write ``text`` (UTF-8) to ``tmp_path/name``."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def put_file(url: str, path: Path, headers: dict | None = None) -> httpx.Response:
    """PUT a file to a presigned URL, streamed (httpx sends Content-Length from the file size)."""
    with open(path, "rb") as stream, httpx.Client(timeout=30) as client:
        return client.put(url, content=stream, headers=headers or {})


def create_dataset(api: httpx.Client, workspace_id: str, name: str = "reviews") -> dict:
    """POST a dataset; asserts 201."""
    response = api.post("/data-collection/datasets", json={"name": name, "workspace_id": workspace_id})
    assert response.status_code == 201, response.text
    return response.json()


def upload(api: httpx.Client, dataset_id: str, path: Path) -> httpx.Response:
    """Ask for an upload URL and PUT the file there (the seed's step 2)."""
    answer = api.get(f"/data-collection/datasets/{dataset_id}/upload-url/{path.name}")
    assert answer.status_code == 201, answer.text
    return put_file(answer.json()["upload_url"], path, {"Content-Type": "text/csv"})


def dataset_settled(api: httpx.Client, dataset_id: str) -> dict:
    """Wait until the dataset is READY or ERROR; returns it."""
    return wait_for(lambda: api.get(f"/data-collection/datasets/{dataset_id}").json(),
                    lambda d: d["status"] in ("READY", "ERROR"))


def ready_dataset(api: httpx.Client, workspace_id: str, path: Path) -> dict:
    """Create, upload and wait: a READY dataset."""
    dataset = create_dataset(api, workspace_id)
    assert upload(api, dataset["id"], path).status_code == 200
    dataset = dataset_settled(api, dataset["id"])
    assert dataset["status"] == "READY", dataset
    return dataset


def ready_batch(api: httpx.Client, workspace_id: str, dataset_id: str, instructions: list[dict] | None = None,
                tasks_per_group: int | None = None, batch_items: list | None = None) -> dict:
    """Create a batch, add instructions (legacy unless ``batch_items``), set it up, wait for READY."""
    body = {"name": "batch", "workspace_id": workspace_id, "dataset_id": dataset_id,
            "task_details": {"task_name": "Sentiment", "task_introduction": "<p>Read.</p>", "task_steps": "<ol></ol>"}}
    if batch_items is not None:
        body["batch_items"] = batch_items
    response = api.post("/data-collection/batches", json=body)
    assert response.status_code == 201, response.text
    batch = response.json()
    if batch_items is None:
        response = api.post(f"/data-collection/batches/{batch['id']}/instructions",
                            json={"instructions": instructions or [SENTIMENT, WHY]})
        assert response.status_code == 201, response.text
    setup = {} if tasks_per_group is None else {"tasks_per_group": tasks_per_group}
    response = api.post(f"/data-collection/batches/{batch['id']}/setup", json=setup)
    assert response.status_code == 202, response.text
    batch = wait_for(lambda: api.get(f"/data-collection/batches/{batch['id']}").json(),
                     lambda b: b["status"] in ("READY", "ERROR"))
    assert batch["status"] == "READY", batch
    return batch


def study_body(batch_id: str, annotators_per_task: int = 1, **fields) -> dict:
    """A study body like the seed's, for the batch."""
    return {"name": "Product Review Sentiment Analysis", "internal_name": "sentiment-analysis",
            "description": "<p>Classify reviews.</p>", "estimated_completion_time": 15, "maximum_allowed_time": 45,
            "reward": 300, "data_collection_method": "AI_TASK_BUILDER_BATCH", "data_collection_id": batch_id,
            "data_collection_metadata": {"annotators_per_task": annotators_per_task}, **fields}


AUTO_APPROVE = [{"code": "DONE123", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}]
MANUAL_REVIEW = [{"code": "DONE123", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}]


def create_study(api: httpx.Client, batch_id: str, annotators_per_task: int = 1, **fields) -> dict:
    """POST a study; asserts 201."""
    response = api.post("/studies/", json=study_body(batch_id, annotators_per_task, **fields))
    assert response.status_code == 201, response.text
    return response.json()


def publish(api: httpx.Client, study_id: str) -> dict:
    """PUBLISH a study; asserts 200."""
    response = api.post(f"/studies/{study_id}/transition/", json={"action": "PUBLISH"})
    assert response.status_code == 200, response.text
    return response.json()


def study_in(api: httpx.Client, study_id: str, statuses: tuple[str, ...], timeout_seconds: float = 60) -> dict:
    """Wait until the study's status is one of ``statuses``."""
    return wait_for(lambda: api.get(f"/studies/{study_id}/").json(), lambda s: s["status"] in statuses,
                    timeout_seconds, 0.2)


def sentences_csv(rows: int, *, gold: bool = True, group_size: int | None = None) -> str:
    """A CSV of ``rows`` made-up reviews with id, text, product and (optionally) META_gold / META_TASK_GROUP_ID."""
    header = ["id", "review_text", "product_name"] + (["META_gold"] if gold else []) + \
        (["META_TASK_GROUP_ID"] if group_size else [])
    lines = [",".join(header)]
    for i in range(rows):
        cells = [str(i + 1), f'"Review {i + 1}, with a comma and ""quotes"""', "Widget Pro"]
        if gold:
            cells.append(("positive", "neutral", "negative")[i % 3])
        if group_size:
            cells.append(f"g{i // group_size}")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


REVIEW_SCHEMA = {"strict": False, "fields": {"id": {"type": "metadata"}, "review_text": {"type": "text"},
                                             "product_name": {"type": "text"}, "META_gold": {"type": "metadata"}}}
IMPORT_TERMINAL = ("complete", "partial", "failed", "pending_schema")


def create_v4_dataset(api: httpx.Client, workspace_id: str, schema: dict | None = None, name: str = "reviews") -> dict:
    """POST a V4 dataset (with ``schema``, default ``REVIEW_SCHEMA``); asserts 201."""
    response = api.post("/data-collection/datasets", json={"name": name, "workspace_id": workspace_id,
                                                           "schema": REVIEW_SCHEMA if schema is None else schema})
    assert response.status_code == 201, response.text
    return response.json()


def upload_v4(api: httpx.Client, dataset_id: str, path: Path) -> dict:
    """Ask for a V4 upload URL and PUT the file with the answered Content-Type; returns the URL answer."""
    answer = api.get(f"/data-collection/datasets/{dataset_id}/upload-url/{path.name}")
    assert answer.status_code == 201, answer.text
    pointer = answer.json()
    response = put_file(pointer["upload_url"], path, {"Content-Type": pointer["content_type"]})
    assert response.status_code == 200, response.text
    return pointer


def import_settled(api: httpx.Client, dataset_id: str, import_id: str) -> dict:
    """Wait until the import job is in a terminal status; returns it."""
    return wait_for(lambda: api.get(f"/data-collection/datasets/{dataset_id}/imports/{import_id}").json(),
                    lambda job: job["status"] in IMPORT_TERMINAL)


def assert_report(api: httpx.Client, batch_id: str, path: Path, rows: int, tasks_per_group: int,
                  annotators: int) -> None:
    """Download the batch's report through its presigned URL and check it against the uploaded CSV: one row
    per datapoint × instruction, the dataset's cells byte for byte, ``annotators`` distinct annotators per
    row, groups of ``tasks_per_group`` datapoints."""
    pointer = api.get(f"/data-collection/batches/{batch_id}/report/")
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
    labels = report[report["Task_Type"] == "multiple_choice"][[f"Annotator{k}_Response" for k in range(1, annotators + 1)]]
    assert set(labels.stack()) <= {"Positive", "Neutral", "Negative"}
    # three different annotators on every row
    ids = report[[f"Annotator{k}_ID" for k in range(1, annotators + 1)]]
    assert (ids.nunique(axis=1) == annotators).all()



def strip_ids(pages: list) -> list:
    """A ``batch_items`` value without the server-assigned ``id`` of its pages, rows, columns and items."""
    def strip(node: dict, child: str | None) -> dict:
        below = {"rows": "columns", "columns": "items", "items": None}
        copy = {k: v for k, v in node.items() if k != "id"}
        if child is not None:
            copy[child] = [strip(sub, below[child]) for sub in node[child]]
        return copy
    return [strip(page, "rows") for page in pages]
