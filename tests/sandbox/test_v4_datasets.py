"""V4 datasets (§1 of the API facts): schema, upload URLs bound to a Content-Type, import jobs, JSONL,
schema updates and migrations, appended datapoints."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.sandbox.helpers import (REVIEW_SCHEMA, assert_error, create_dataset, create_v4_dataset, import_settled,
                                   put_file, ready_batch, upload, upload_v4, wait_for, write_csv)

DATASETS = "/data-collection/datasets"
CSV = 'id,review_text,product_name,META_gold\n1,"Great, really ""great""",Widget,positive\n2,Broke,Widget,negative\n'


def test_create_with_schema_is_v4_without_status(api, workspace_id):
    dataset = create_v4_dataset(api, workspace_id)
    assert dataset["schema_version"] == 4 and "status" not in dataset
    shown = api.get(f"{DATASETS}/{dataset['id']}").json()
    assert shown["schema"] == REVIEW_SCHEMA and shown["imports"] == [] and shown["schema_version"] == 4
    assert "status" not in shown and "filename" not in shown
    assert_error(api.get(f"{DATASETS}/{dataset['id']}/status"), 400)


@pytest.mark.parametrize("schema, field", [
    ({"fields": {}}, "schema.fields"),
    ({"fields": {"a": {"type": "number"}}}, "schema.fields.a.type"),
    ({"fields": {"a": {"type": "task_group_id"}, "b": {"type": "task_group_id"}}}, "schema.fields"),
    ({"strict": "yes", "fields": {"a": {"type": "text"}}}, "schema.strict"),
])
def test_bad_schema_is_refused_naming_the_field(api, workspace_id, schema, field):
    error = assert_error(api.post(DATASETS, json={"name": "n", "workspace_id": workspace_id, "schema": schema}), 400)
    assert field in error["detail"], error


def test_upload_url_creates_one_import_job_per_call(api, workspace_id):
    dataset = create_v4_dataset(api, workspace_id)
    first = api.get(f"{DATASETS}/{dataset['id']}/upload-url/reviews.csv")
    second = api.get(f"{DATASETS}/{dataset['id']}/upload-url/more.jsonl")
    assert first.status_code == second.status_code == 201
    a, b = first.json(), second.json()
    assert set(a) == {"upload_url", "expires_at", "http_method", "dataset_id", "import_id", "content_type", "file_key"}
    assert a["content_type"] == "text/csv" and b["content_type"] == "application/x-ndjson"
    assert a["import_id"] != b["import_id"] and a["file_key"] != b["file_key"]
    imports = api.get(f"{DATASETS}/{dataset['id']}").json()["imports"]
    assert [job["import_id"] for job in imports] == [b["import_id"], a["import_id"]]   # most recent first
    assert {job["status"] for job in imports} == {"uninitialised"}
    assert_error(api.get(f"{DATASETS}/{dataset['id']}/upload-url/reviews.zip"), 400)


def test_v4_url_is_signed_for_its_content_type_and_v3_is_not(api, workspace_id, tmp_path):
    path = write_csv(tmp_path, CSV, "reviews.csv")
    dataset = create_v4_dataset(api, workspace_id)
    url = api.get(f"{DATASETS}/{dataset['id']}/upload-url/reviews.csv").json()["upload_url"]
    assert put_file(url, path).status_code == 403                                    # no Content-Type
    assert put_file(url, path, {"Content-Type": "application/octet-stream"}).status_code == 403
    assert put_file(url, path, {"Content-Type": "text/csv"}).status_code == 200
    v3 = create_dataset(api, workspace_id)
    v3_url = api.get(f"{DATASETS}/{v3['id']}/upload-url/reviews.csv").json()["upload_url"]
    assert put_file(v3_url, path).status_code == 200                                 # seed-era client: no header


def test_csv_import_completes_with_counts(api, workspace_id, tmp_path):
    dataset = create_v4_dataset(api, workspace_id)
    pointer = upload_v4(api, dataset["id"], write_csv(tmp_path, CSV, "reviews.csv"))
    seen = set()
    job = wait_for(lambda: api.get(f"{DATASETS}/{dataset['id']}/imports/{pointer['import_id']}").json(),
                   lambda j: seen.add(j["status"]) or j["status"] == "complete", interval_seconds=0.02)
    assert seen <= {"uninitialised", "processing", "queued", "complete"}
    assert job["accepted_count"] == 2 and job["rejected_count"] == 0 and job["type"] == "file_upload"
    assert api.get(f"{DATASETS}/{dataset['id']}").json()["total_datapoint_count"] == 2


def test_strict_schema_rejects_records_missing_fields(api, workspace_id, tmp_path):
    schema = {"strict": True, "fields": {"text": {"type": "text"}, "source": {"type": "metadata"}}}
    dataset = create_v4_dataset(api, workspace_id, schema)
    lines = [{"text": "a", "source": "x"}, {"text": "b"}, {"text": "c", "source": "y"}, {"source": "z"}]
    path = write_csv(tmp_path, "\n".join(json.dumps(line) for line in lines) + "\n\n", "data.jsonl")
    job = import_settled(api, dataset["id"], upload_v4(api, dataset["id"], path)["import_id"])
    assert job["status"] == "partial" and job["accepted_count"] == 2 and job["rejected_count"] == 2
    assert job["errors"] == [{"record_index": 1, "field": "source", "reason": "missing"},
                             {"record_index": 3, "field": "text", "reason": "missing"}]


def test_lenient_schema_fills_missing_fields_and_all_rejected_fails(api, workspace_id, tmp_path):
    dataset = create_v4_dataset(api, workspace_id, {"fields": {"text": {"type": "text"}, "n": {"type": "metadata"}}})
    path = write_csv(tmp_path, '{"text": "a"}\n[1, 2]\nnot json\n', "data.jsonl")
    job = import_settled(api, dataset["id"], upload_v4(api, dataset["id"], path)["import_id"])
    assert job["status"] == "partial" and job["accepted_count"] == 1
    assert [(e["record_index"], e["field"]) for e in job["errors"]] == [(1, ""), (2, "")]
    bad = write_csv(tmp_path, '{"text": 5}\n', "bad.jsonl")
    failed = import_settled(api, dataset["id"], upload_v4(api, dataset["id"], bad)["import_id"])
    assert failed["status"] == "failed" and failed["reason"] and failed["accepted_count"] == 0
    assert failed["errors"] == [{"record_index": 0, "field": "text", "reason": "must be a string, got int"}]


def test_dataset_without_schema_parks_imports_until_first_schema(api, workspace_id, tmp_path):
    dataset = create_v4_dataset(api, workspace_id, {})
    assert dataset["schema_version"] == 4 and api.get(f"{DATASETS}/{dataset['id']}").json()["schema"] is None
    pointer = upload_v4(api, dataset["id"], write_csv(tmp_path, CSV, "reviews.csv"))
    assert import_settled(api, dataset["id"], pointer["import_id"])["status"] == "pending_schema"
    patched = api.patch(f"{DATASETS}/{dataset['id']}", json={"schema": REVIEW_SCHEMA})
    assert patched.status_code == 200 and "migration_job_id" not in patched.json()
    job = wait_for(lambda: api.get(f"{DATASETS}/{dataset['id']}/imports/{pointer['import_id']}").json(),
                   lambda j: j["status"] == "complete")
    assert job["accepted_count"] == 2


def test_later_schema_starts_a_migration(api, workspace_id, tmp_path):
    dataset = create_v4_dataset(api, workspace_id)
    import_settled(api, dataset["id"], upload_v4(api, dataset["id"], write_csv(tmp_path, CSV))["import_id"])
    new_schema = {"fields": {**REVIEW_SCHEMA["fields"], "product_name": {"type": "image_url"}}}
    patched = api.patch(f"{DATASETS}/{dataset['id']}", json={"schema": new_schema})
    assert patched.status_code == 200
    job_id = patched.json()["migration_job_id"]
    migration = wait_for(lambda: api.get(f"{DATASETS}/{dataset['id']}/schema-migrations/{job_id}").json(),
                         lambda m: m["status"] != "processing")
    assert migration["status"] == "partial" and migration["reprocessed_count"] == 2 and migration["failed_count"] == 2
    assert {e["field"] for e in migration["errors"]} == {"product_name"}
    grouped = {"fields": {**REVIEW_SCHEMA["fields"], "id": {"type": "task_group_id"}}}
    assert_error(api.patch(f"{DATASETS}/{dataset['id']}", json={"schema": grouped}), 400)
    assert_error(api.patch(f"{DATASETS}/{dataset['id']}", json={}), 400)
    v3 = create_dataset(api, workspace_id)
    assert_error(api.patch(f"{DATASETS}/{v3['id']}", json={"schema": REVIEW_SCHEMA}), 400)
    assert_error(api.get(f"{DATASETS}/{dataset['id']}/schema-migrations/0192a3b5-e8f9-7a0b-1c2d-3e4f5a6b7c8d"), 404)


def _append(api: httpx.Client, dataset_id: str, records: list, content_type: str = "application/x-ndjson"):
    body = "\n".join(json.dumps(r) for r in records).encode()
    return api.post(f"{DATASETS}/{dataset_id}/datapoints", content=body, headers={"Content-Type": content_type})


def test_append_datapoints_counts_rejects_and_is_idempotent(api, workspace_id, tmp_path):
    dataset = create_v4_dataset(api, workspace_id, {"strict": True, "fields": {"text": {"type": "text"}}})
    answer = _append(api, dataset["id"], [{"text": "a"}, {"other": 1}, {"text": "b"}])
    assert answer.status_code == 200
    assert answer.json() == {"accepted_count": 2, "rejected_count": 1,
                             "errors": [{"record_index": 1, "field": "text", "reason": "missing"}]}
    again = _append(api, dataset["id"], [{"text": "a"}])
    assert again.json()["accepted_count"] == 1
    assert api.get(f"{DATASETS}/{dataset['id']}").json()["total_datapoint_count"] == 2   # not written twice
    assert_error(_append(api, dataset["id"], [{"text": str(i)} for i in range(1001)]), 400)
    assert_error(_append(api, dataset["id"], [{"text": "c"}], "text/csv"), 415)
    v3 = create_dataset(api, workspace_id)
    assert_error(_append(api, v3["id"], [{"text": "a"}]), 400)


def test_append_is_refused_while_an_import_runs(api, control, workspace_id, tmp_path):
    control.post("/_sandbox/settings", json={"dataset_processing_seconds": 30.0}).raise_for_status()
    dataset = create_v4_dataset(api, workspace_id)
    pointer = upload_v4(api, dataset["id"], write_csv(tmp_path, CSV))
    wait_for(lambda: api.get(f"{DATASETS}/{dataset['id']}/imports/{pointer['import_id']}").json(),
             lambda j: j["status"] == "processing")
    assert_error(_append(api, dataset["id"], [{"review_text": "x"}]), 409)
    assert_error(api.patch(f"{DATASETS}/{dataset['id']}", json={"schema": REVIEW_SCHEMA}), 409)


def test_setup_needs_a_complete_import(api, workspace_id, tmp_path):
    schema = {"strict": True, "fields": {"review_text": {"type": "text"}, "META_gold": {"type": "metadata"}}}
    dataset = create_v4_dataset(api, workspace_id, schema)
    batch = api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id,
                                                       "dataset_id": dataset["id"]}).json()
    api.post(f"/data-collection/batches/{batch['id']}/instructions",
             json={"instructions": [{"type": "free_text", "description": "Why?"}]}).raise_for_status()
    error = assert_error(api.post(f"/data-collection/batches/{batch['id']}/setup", json={}), 400)
    assert "dataset_id" in error["detail"]
    partial = write_csv(tmp_path, '{"review_text": "a", "META_gold": "positive"}\n{"review_text": "b"}\n', "partial.jsonl")
    assert import_settled(api, dataset["id"], upload_v4(api, dataset["id"], partial)["import_id"])["status"] == "partial"
    assert_error(api.post(f"/data-collection/batches/{batch['id']}/setup", json={}), 400)
    full = write_csv(tmp_path, "review_text,META_gold\nc,negative\n", "full.csv")
    assert import_settled(api, dataset["id"], upload_v4(api, dataset["id"], full)["import_id"])["status"] == "complete"
    assert api.post(f"/data-collection/batches/{batch['id']}/setup", json={}).status_code == 202


def _v4_batch(api, workspace_id, tmp_path, schema: dict, csv_text: str, **setup) -> tuple[dict, dict]:
    dataset = create_v4_dataset(api, workspace_id, schema)
    job = import_settled(api, dataset["id"], upload_v4(api, dataset["id"], write_csv(tmp_path, csv_text))["import_id"])
    assert job["status"] == "complete", job
    return dataset, ready_batch(api, workspace_id, dataset["id"], **setup)


def test_sync_adds_appended_datapoints_to_task_groups(api, workspace_id, tmp_path):
    schema = {"fields": {"text": {"type": "text"}, "group": {"type": "task_group_id"}}}
    dataset, batch = _v4_batch(api, workspace_id, tmp_path, schema, "text,group\na,g1\nb,g1\nc,g2\n")
    assert batch["total_task_groups"] == 2
    _append(api, dataset["id"], [{"text": "d", "group": "g2"}, {"text": "e", "group": "g3"}]).raise_for_status()
    started = api.post(f"/data-collection/batches/{batch['id']}/sync")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    sync_id = started.json()["sync_id"]
    done = wait_for(lambda: api.get(f"/data-collection/batches/{batch['id']}/syncs/{sync_id}").json(),
                    lambda s: s["status"] in ("complete", "failed"))
    assert (done["status"], done["datapoints_processed"], done["groups_created"], done["groups_expanded"]) == \
        ("complete", 2, 1, 1)
    assert api.get(f"/data-collection/batches/{batch['id']}").json()["total_task_groups"] == 3


def test_sync_refuses_v3_and_unready_batches(api, workspace_id, tmp_path):
    v3 = create_dataset(api, workspace_id)
    assert upload(api, v3["id"], write_csv(tmp_path, "text\na\n")).status_code == 200
    wait_for(lambda: api.get(f"{DATASETS}/{v3['id']}").json(), lambda d: d["status"] == "READY")
    batch = ready_batch(api, workspace_id, v3["id"])
    assert_error(api.post(f"/data-collection/batches/{batch['id']}/sync"), 400)
    fresh = api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id}).json()
    assert_error(api.post(f"/data-collection/batches/{fresh['id']}/sync"), 400)


def test_duplicate_shares_the_dataset_unless_asked(api, workspace_id, tmp_path):
    dataset, batch = _v4_batch(api, workspace_id, tmp_path, REVIEW_SCHEMA, CSV)
    copy = api.post(f"/data-collection/batches/{batch['id']}/duplicate", json={})
    assert copy.status_code == 201
    copy = copy.json()
    assert copy["id"] != batch["id"] and copy["name"] == f"{batch['name']} (Copy)"
    assert copy["status"] == "UNINITIALISED" and copy["dataset_id"] == dataset["id"]
    assert copy["total_instruction_count"] == batch["total_instruction_count"]
    fresh = api.post(f"/data-collection/batches/{batch['id']}/duplicate",
                     json={"name": "Second", "upload_new_dataset": True}).json()
    assert fresh["name"] == "Second" and fresh["dataset_id"] is None
