"""Datasets (API doc §2): create, get, status, upload URL, upload through the presigned URL, processing."""

from __future__ import annotations

import time

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.sandbox.helpers import (assert_error, create_dataset, dataset_settled, put_file, ready_dataset, upload,
                                   wait_for, write_csv)

CSV = 'id,review_text,META_source,rating\n1,"Great product, exactly what I needed!",amazon,5\n2,"Arrived damaged",shop,1\n'


def test_create_answers_201_with_the_documented_fields(api, workspace_id):
    response = api.post("/data-collection/datasets", json={"name": "Product reviews", "workspace_id": workspace_id,
                                                            "unknown_field": "ignored"})
    assert response.status_code == 201
    dataset = response.json()
    assert dataset["status"] == "UNINITIALISED" and dataset["total_datapoint_count"] == 0
    assert dataset["workspace_id"] == workspace_id and dataset["name"] == "Product reviews"
    assert dataset["id"].count("-") == 4 and dataset["created_at"].endswith("Z") and len(dataset["created_by"]) == 24
    assert api.get(f"/data-collection/datasets/{dataset['id']}").json() == dataset
    assert api.get(f"/data-collection/datasets/{dataset['id']}/status/").json() == {"status": "UNINITIALISED"}


@pytest.mark.parametrize("body, field", [
    ({"workspace_id": "x"}, "name"),
    ({"name": "", "workspace_id": "WS"}, "name"),
    ({"name": 5, "workspace_id": "WS"}, "name"),
    ({"name": "n"}, "workspace_id"),
    ({"name": "n", "workspace_id": "000000000000000000000000"}, "workspace_id"),
    ({"name": "n", "workspace_id": "WS", "schema": {"fields": {}}}, "schema.fields"),
])
def test_create_refuses_bad_bodies_naming_the_field(api, workspace_id, body, field):
    body = {k: (workspace_id if v == "WS" else v) for k, v in body.items()}
    error = assert_error(api.post("/data-collection/datasets", json=body), 400)
    assert field in error["detail"]


def test_unknown_dataset_is_404(api):
    for path in ("", "/status", "/upload-url/a.csv"):
        assert_error(api.get(f"/data-collection/datasets/0192a3b5-e8f9-7a0b-1c2d-3e4f5a6b7c8d{path}"), 404)


def test_upload_url_shape(api, workspace_id):
    dataset = create_dataset(api, workspace_id)
    response = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/reviews.csv")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"upload_url", "expires_at", "http_method", "dataset_id"}
    assert body["http_method"] == "PUT" and body["dataset_id"] == dataset["id"]
    assert "X-Amz-Signature=" in body["upload_url"] and "reviews.csv" in body["upload_url"]


def test_upload_moves_dataset_to_ready_with_counts_and_metadata_columns(api, workspace_id, tmp_path):
    dataset = create_dataset(api, workspace_id)
    assert upload(api, dataset["id"], write_csv(tmp_path, CSV, "reviews.csv")).status_code == 200
    seen = wait_for(lambda: api.get(f"/data-collection/datasets/{dataset['id']}/status").json(),
                    lambda s: s["status"] != "UNINITIALISED", interval_seconds=0.02)
    assert seen["status"] in ("PROCESSING", "READY")
    dataset = dataset_settled(api, dataset["id"])
    assert dataset["status"] == "READY"
    assert dataset["total_datapoint_count"] == 2 and dataset["filename"] == "reviews.csv"
    assert dataset["columns"] == ["id", "review_text", "META_source", "rating"]
    assert dataset["metadata_columns"] == ["META_source"]
    assert dataset["has_predetermined_grouping_id"] is False


def test_task_group_column_is_recognised(api, workspace_id, tmp_path):
    path = write_csv(tmp_path, "text,META_TASK_GROUP_ID\na,g1\nb,g1\nc,g2\n")
    dataset = ready_dataset(api, workspace_id, path)
    assert dataset["has_predetermined_grouping_id"] is True and dataset["total_datapoint_count"] == 3


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"a,b\n", "no datapoint rows"),
    (b"a,a\n1,2\n", "duplicate column"),
    (b"a,,c\n1,2,3\n", "no name"),
    (b"a,b\n1,2,3\n", "not a readable CSV"),
    ("a,b\n1,caf\u00e9\n".encode("latin-1"), "not UTF-8"),
    (b"a,META_TASK_GROUP_ID\n1,\n", "META_TASK_GROUP_ID is empty"),
])
def test_unparseable_file_moves_dataset_to_error_with_reason(api, workspace_id, tmp_path, content, reason):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    dataset = create_dataset(api, workspace_id)
    assert upload(api, dataset["id"], path).status_code == 200
    dataset = dataset_settled(api, dataset["id"])
    assert dataset["status"] == "ERROR"
    assert reason in dataset["reason"]


def test_short_rows_are_padded_with_empty_cells(api, workspace_id, tmp_path):
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, "a,b,c\n1,2\n3,4,5\n"))
    assert dataset["total_datapoint_count"] == 2


def test_error_dataset_takes_a_new_upload(api, workspace_id, tmp_path):
    dataset = create_dataset(api, workspace_id)
    upload(api, dataset["id"], write_csv(tmp_path, "", "first.csv"))
    assert dataset_settled(api, dataset["id"])["status"] == "ERROR"
    upload(api, dataset["id"], write_csv(tmp_path, CSV, "second.csv"))
    dataset = wait_for(lambda: api.get(f"/data-collection/datasets/{dataset['id']}").json(),
                       lambda d: d["status"] == "READY")
    assert dataset["filename"] == "second.csv" and dataset["reason"] is None


def test_tampered_upload_url_fails_as_s3_does_and_dataset_stays_uninitialised(api, workspace_id, tmp_path):
    dataset = create_dataset(api, workspace_id)
    url = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/r.csv").json()["upload_url"]
    signature = url.split("X-Amz-Signature=")[1][:64]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    response = put_file(tampered, write_csv(tmp_path, CSV), {"Content-Type": "text/csv"})
    assert response.status_code == 403 and b"SignatureDoesNotMatch" in response.content
    assert api.get(f"/data-collection/datasets/{dataset['id']}/status").json()["status"] == "UNINITIALISED"


def test_upload_without_content_length_is_refused(api, workspace_id):
    dataset = create_dataset(api, workspace_id)
    url = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/r.csv").json()["upload_url"]
    response = httpx.put(url, content=iter([CSV.encode()]))          # generator → chunked, no length
    assert response.status_code == 411


def test_content_type_is_unsigned_by_default_and_signed_by_setting(api, control, workspace_id, tmp_path):
    path = write_csv(tmp_path, CSV)
    dataset = create_dataset(api, workspace_id)
    url = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/r.csv").json()["upload_url"]
    assert "content-type" not in url.lower()
    assert put_file(url, path, {"Content-Type": "application/octet-stream"}).status_code == 200

    control.post("/_sandbox/settings", json={"sign_content_type": True}).raise_for_status()
    dataset = create_dataset(api, workspace_id)
    url = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/r.csv").json()["upload_url"]
    assert put_file(url, path, {"Content-Type": "application/octet-stream"}).status_code == 403
    assert put_file(url, path, {"Content-Type": "text/csv"}).status_code == 200
    assert dataset_settled(api, dataset["id"])["status"] == "READY"


def test_expired_upload_url_is_refused(api, control, workspace_id, tmp_path):
    control.post("/_sandbox/settings", json={"upload_url_expires_seconds": 1}).raise_for_status()
    dataset = create_dataset(api, workspace_id)
    answer = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/r.csv").json()
    time.sleep(2.5)
    assert put_file(answer["upload_url"], write_csv(tmp_path, CSV)).status_code in (400, 403)
    assert api.get(f"/data-collection/datasets/{dataset['id']}/status").json()["status"] == "UNINITIALISED"


def test_settings_expose_the_object_store_for_s3_access(api, control, workspace_id, tmp_path):
    settings = control.get("/_sandbox/settings").json()
    s3 = boto3.client("s3", endpoint_url=settings["object_store_endpoint_url"],
                      aws_access_key_id=settings["object_store_access_key"],
                      aws_secret_access_key=settings["object_store_secret_key"],
                      region_name=settings["object_store_region"],
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                    response_checksum_validation="when_required"))
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, CSV, "reviews.csv"))
    body = s3.get_object(Bucket=settings["object_store_bucket"], Key=f"datasets/{dataset['id']}/reviews.csv")["Body"]
    assert body.read() == CSV.encode()
    assert_error(control.post("/_sandbox/settings", json={"object_store_bucket": "x"}), 400)
