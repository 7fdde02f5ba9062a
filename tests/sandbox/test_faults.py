"""Control plane (not Prolific's API): request log, fault rules on "api" and "s3", settings, reset."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.sandbox.helpers import assert_error, create_dataset, dataset_settled, put_file, write_csv


def set_faults(control, *rules):
    response = control.post("/_sandbox/faults", json={"rules": list(rules)})
    assert response.status_code == 200, response.text
    return response.json()


def test_status_fault_on_nth_request_with_retry_after(api, control):
    set_faults(control, {"target": "api", "method": "GET", "path": "/api/v1/users/me*", "nth": 2,
                         "effect": "status", "status": 503, "retry_after": 7})
    assert api.get("/users/me").status_code == 200
    second = api.get("/users/me/")
    error = assert_error(second, 503)
    assert second.headers["Retry-After"] == "7" and error["title"] == "Service Unavailable"
    assert api.get("/users/me").status_code == 200
    statuses = [r["status"] for r in control.get("/_sandbox/requests").json()["requests"]]
    assert statuses == [200, 503, 200]


def test_drop_closes_the_connection_without_a_response(api, control, workspace_id):
    set_faults(control, {"target": "api", "method": "POST", "path": "/api/v1/data-collection/batches",
                         "effect": "drop"})
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id})
    control.delete("/_sandbox/faults").raise_for_status()
    assert api.get("/data-collection/batches", params={"workspace_id": workspace_id}).json()["results"] == []
    log = control.get("/_sandbox/requests").json()["requests"]
    assert (log[-2]["method"], log[-2]["status"]) == ("POST", 0)


def test_lost_response_does_the_work_then_drops(api, control, workspace_id):
    set_faults(control, {"target": "api", "method": "POST", "path": "/api/v1/data-collection/batches*",
                         "nth": 1, "effect": "lost_response"})
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/data-collection/batches", json={"name": "made anyway", "workspace_id": workspace_id})
    batches = api.get("/data-collection/batches", params={"workspace_id": workspace_id}).json()["results"]
    assert [b["name"] for b in batches] == ["made anyway"]
    posts = [r for r in control.get("/_sandbox/requests").json()["requests"] if r["method"] == "POST"]
    assert [r["status"] for r in posts] == [0]


def test_delay_answers_late(api, control):
    set_faults(control, {"target": "api", "path": "/api/v1/users/me", "effect": "delay", "delay_seconds": 1.0})
    started = time.monotonic()
    assert api.get("/users/me").status_code == 200
    assert time.monotonic() - started >= 1.0
    with pytest.raises(httpx.ReadTimeout):
        api.get("/users/me", timeout=0.3)


def test_probability_is_seeded_and_reproducible(api, control):
    rule = {"target": "api", "path": "/api/v1/users/me", "probability": 0.5, "effect": "status", "status": 500}

    def pattern():
        set_faults(control, rule)
        return [api.get("/users/me").status_code for _ in range(20)]

    first, second = pattern(), pattern()
    assert first == second and 500 in first and 200 in first
    control.post("/_sandbox/settings", json={"seed": 12345}).raise_for_status()
    assert pattern() != first


def test_method_glob_and_target_must_match(api, control):
    set_faults(control, {"target": "api", "method": "POST", "path": "/api/v1/studies/*/transition/", "effect": "status",
                         "status": 500},
               {"target": "s3", "path": "*", "effect": "status", "status": 500})
    assert api.get("/users/me").status_code == 200
    response = api.post("/studies/abc/transition", json={"action": "PUBLISH"})   # without the trailing slash
    assert response.status_code == 500


def test_fault_rules_are_validated_and_listed(control):
    for bad in ({"target": "db", "effect": "drop"}, {"target": "api", "effect": "status"},
                {"target": "api", "effect": "delay"}, {"target": "api", "effect": "drop", "nth": 0},
                {"target": "api", "effect": "drop", "nth": 1, "probability": 0.5},
                {"target": "api", "effect": "explode"}):
        assert_error(control.post("/_sandbox/faults", json={"rules": [bad]}), 400)
    set_faults(control, {"target": "api", "effect": "drop", "path": "/x"})
    assert control.get("/_sandbox/faults").json()["rules"][0]["path"] == "/x"
    assert control.delete("/_sandbox/faults").json() == {"rules": []}


def test_s3_faults_on_the_upload(api, control, workspace_id, tmp_path):
    path = write_csv(tmp_path, "a\n1\n")
    dataset = create_dataset(api, workspace_id)
    url = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/r.csv").json()["upload_url"]
    set_faults(control, {"target": "s3", "method": "PUT", "path": "/sandbox/datasets/*", "nth": 1, "effect": "drop"},
               {"target": "s3", "method": "PUT", "path": "/sandbox/datasets/*", "nth": 2, "effect": "status",
                "status": 503})
    with pytest.raises(httpx.TransportError):
        put_file(url, path)
    assert put_file(url, path).status_code == 503
    assert api.get(f"/data-collection/datasets/{dataset['id']}/status").json()["status"] == "UNINITIALISED"
    assert put_file(url, path).status_code == 200
    assert dataset_settled(api, dataset["id"])["status"] == "READY"
    s3 = [(r["method"], r["status"]) for r in control.get("/_sandbox/requests").json()["requests"] if r["target"] == "s3"]
    assert s3 == [("PUT", 0), ("PUT", 503), ("PUT", 200)]


def test_s3_lost_response_still_stores_the_upload(api, control, workspace_id, tmp_path):
    dataset = create_dataset(api, workspace_id)
    url = api.get(f"/data-collection/datasets/{dataset['id']}/upload-url/r.csv").json()["upload_url"]
    set_faults(control, {"target": "s3", "method": "PUT", "effect": "lost_response"})
    with pytest.raises(httpx.TransportError):
        put_file(url, write_csv(tmp_path, "a\n1\n"))
    assert dataset_settled(api, dataset["id"])["status"] == "READY"


def test_settings_validate_and_reset_clears_state_but_keeps_settings(api, control, workspace_id):
    for bad in ({"accuracy_mean": 2}, {"legacy_instructions": "gone"}, {"no_such_setting": 1},
                {"submission_seconds": "fast"}, {"return_rate": 0.6, "timeout_rate": 0.5}):
        assert_error(control.post("/_sandbox/settings", json=bad), 400)
    changed = control.post("/_sandbox/settings", json={"submission_seconds": 2.5}).json()
    assert changed["submission_seconds"] == 2.5
    create_dataset(api, workspace_id)
    api.post("/data-collection/batches", json={"name": "b", "workspace_id": workspace_id})
    control.post("/_sandbox/faults", json={"rules": [{"target": "api", "path": "/none", "effect": "drop"}]})
    assert control.post("/_sandbox/reset").status_code == 200
    assert control.get("/_sandbox/requests").json() == {"requests": []}
    assert control.get("/_sandbox/faults").json() == {"rules": []}
    assert control.get("/_sandbox/settings").json()["submission_seconds"] == 2.5
    assert api.get("/data-collection/batches", params={"workspace_id": workspace_id}).json()["results"] == []
    assert api.get("/workspaces/").json()["results"][0]["id"] == workspace_id   # defaults back, same id
