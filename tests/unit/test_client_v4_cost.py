"""Unit tests of the client's V4 dataset and cost endpoints, and of the contract table, against
httpx.MockTransport (the sandbox tests in tests/integration drive the real thing)."""

from __future__ import annotations

import pydantic
import pytest
import httpx

from taskbuilder.models import ImportStatus
from taskbuilder.models.contract import ENDPOINTS, check_exchange, find_endpoint
from tests.unit.test_client import Recorder, body_of, make_client

SCHEMA = {"strict": False, "fields": {"review_text": {"type": "text"}, "META_gold": {"type": "metadata"}}}


def test_create_v4_dataset_sends_the_schema_and_reads_imports_back():
    dataset = {"id": "d1", "name": "n", "workspace_id": "w1", "schema_version": 4, "schema": SCHEMA,
               "imports": [{"import_id": "i1", "dataset_id": "d1", "status": "complete", "accepted_count": 3}]}
    recorder = Recorder({("POST", "/api/v1/data-collection/datasets"): httpx.Response(201, json=dataset),
                         ("GET", "/api/v1/data-collection/datasets/d1"): httpx.Response(200, json=dataset)})
    client = make_client(recorder)
    created = client.create_dataset(name="n", workspace_id="w1", schema=SCHEMA)
    assert body_of(recorder.last) == {"name": "n", "workspace_id": "w1", "schema": SCHEMA}
    assert created.dataset_schema.fields["META_gold"].type == "metadata"
    got = client.get_dataset("d1")
    assert got.imports[0].status is ImportStatus.COMPLETE and got.imports[0].accepted_count == 3


def test_v3_dataset_create_sends_no_schema_and_a_bad_schema_is_refused_before_sending():
    recorder = Recorder({("POST", "/api/v1/data-collection/datasets"): httpx.Response(201, json={"id": "d1"})})
    client = make_client(recorder)
    client.create_dataset(name="n", workspace_id="w1")
    assert body_of(recorder.last) == {"name": "n", "workspace_id": "w1"}
    two_groups = {"fields": {"a": {"type": "task_group_id"}, "b": {"type": "task_group_id"}}}
    with pytest.raises(pydantic.ValidationError):
        client.create_dataset(name="n", workspace_id="w1", schema=two_groups)
    with pytest.raises(pydantic.ValidationError):
        client.create_dataset(name="n", workspace_id="w1", schema={"fields": {"a": {"type": "number"}}})
    assert len(recorder.requests) == 1


def test_import_job_partial_carries_rejected_records():
    job = {"import_id": "i1", "dataset_id": "d1", "status": "partial", "accepted_count": 2, "rejected_count": 1,
           "errors": [{"record_index": 0, "field": "review_text", "reason": "not a string"}]}
    recorder = Recorder({("GET", "/api/v1/data-collection/datasets/d1/imports/i1"): httpx.Response(200, json=job)})
    got = make_client(recorder).get_import_job("d1", "i1")
    assert got.status is ImportStatus.PARTIAL and got.status.is_terminal
    assert (got.errors[0].record_index, got.errors[0].field) == (0, "review_text")


def test_upload_url_v4_fields():
    answer = {"upload_url": "https://s3.test/k?X-Amz-Signature=abc", "http_method": "PUT", "dataset_id": "d1",
              "import_id": "i1", "content_type": "text/csv", "file_key": "k", "expires_at": "2030-01-01T00:00:00Z"}
    recorder = Recorder({("GET", "/api/v1/data-collection/datasets/d1/upload-url/a.csv"): httpx.Response(201, json=answer)})
    got = make_client(recorder).get_dataset_upload_url("d1", "a.csv")
    assert (got.import_id, got.content_type, got.file_key) == ("i1", "text/csv", "k")


def test_cost_calculator_and_study_cost():
    cost = {"rewards": {"rewards": {"amount": 3000, "currency": "GBP"}, "fees": {"amount": 3000, "currency": "GBP"},
                        "tax": {"amount": 600, "currency": "GBP"}}, "bonuses": None}
    recorder = Recorder({("POST", "/api/v1/study-cost-calculator/"): httpx.Response(200, json={"total_cost": 6600.0}),
                         ("GET", "/api/v1/studies/s1/cost/"): httpx.Response(200, json=cost)})
    client = make_client(recorder)
    assert client.calculate_study_cost(reward_cents=300, places=10).total_cost == 6600
    assert body_of(recorder.last) == {"reward": 300, "total_available_places": 10}
    study_cost = client.get_study_cost("s1")
    assert study_cost.rewards.total() == 6600 and study_cost.bonuses is None
    assert recorder.last.url.params.get("is_projected") is None
    client.get_study_cost("s1", projected=True)
    assert recorder.last.url.params["is_projected"] == "true"


def test_incomplete_cost_breakdown_has_no_total():
    from taskbuilder.models import CostBreakdown

    assert CostBreakdown.model_validate({"rewards": {"amount": 100}, "fees": {"amount": 10}}).total() is None


def test_contract_matches_paths_and_flags_wrong_statuses_and_shapes():
    assert find_endpoint("GET", "/api/v1/studies/s1/cost").operation_id == "get-study-cost"
    assert find_endpoint("GET", "/api/v1/studies/?limit=200&offset=0").operation_id is None
    assert find_endpoint("GET", "/api/v1/nothing/") is None
    assert check_exchange("POST", "/api/v1/study-cost-calculator/", 200, {"reward": 1, "total_available_places": 2},
                          {"total_cost": 4.0}) == []
    assert check_exchange("POST", "/api/v1/study-cost-calculator/", 201, {"reward": 1, "total_available_places": 2},
                          {"total_cost": 4.0})  # wrong status
    problems = check_exchange("GET", "/api/v1/data-collection/datasets/d1/imports/i1", 200, None,
                              {"import_id": "i1", "dataset_id": "d1", "status": "failed"})
    assert problems and "reason" in problems[0]
    assert check_exchange("POST", "/api/v1/data-collection/batches", 422, {"name": "x"}, {"type": "X"}) == []
    assert len({(e.method, e.template) for e in ENDPOINTS}) == len(ENDPOINTS)
