"""Token check, error shape, unknown paths/methods, trailing slashes, bad JSON (API doc §1, §1.1)."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.helpers import assert_error


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Token wrong"}, {"Authorization": "Bearer test-token-sandbox"},
                                     {"Authorization": "test-token-sandbox"}])
def test_missing_or_bad_token_is_401_in_error_shape(sandbox, control, headers):
    response = httpx.get(sandbox.base_url + "/api/v1/users/me/", headers=headers)
    error = assert_error(response, 401)
    assert error["title"] == "Unauthorized"
    assert "Authorization: Token" in error["detail"]


def test_unknown_path_is_404_and_wrong_method_405(api):
    assert_error(api.get("/no-such-thing/"), 404)
    response = api.delete("/users/me/")
    assert_error(response, 405)
    assert response.headers["Allow"] == "GET"


def test_paths_work_with_and_without_trailing_slash(api):
    assert api.get("/users/me").json() == api.get("/users/me/").json()
    assert api.get("/workspaces").status_code == api.get("/workspaces/").status_code == 200


def test_invalid_json_and_non_object_bodies_are_400(api, workspace_id):
    assert "not valid JSON" in assert_error(
        api.post("/data-collection/datasets", content=b"{nope", headers={"Content-Type": "application/json"}), 400)["detail"]
    assert_error(api.post("/data-collection/datasets", json=["a list"]), 400)


def test_chunked_request_body_is_refused_with_411(api, workspace_id):
    response = api.post("/data-collection/datasets", content=iter([b'{"name": "n", ', b'"workspace_id": "x"}']),
                        headers={"Content-Type": "application/json"})
    assert_error(response, 411)
    assert api.get("/users/me").status_code == 200          # the client reconnects after the close


def test_users_me_has_currency_and_balance(api, control):
    me = api.get("/users/me/").json()
    assert len(me["id"]) == 24 and me["currency_code"] == "GBP"
    assert me["balance"] == control.get("/_sandbox/settings").json()["account_balance_cents"]


def test_default_workspace_and_project_exist_with_24_hex_ids(api, workspace_id):
    assert len(workspace_id) == 24 and int(workspace_id, 16) >= 0
    projects = api.get(f"/workspaces/{workspace_id}/projects/").json()
    assert projects["meta"]["count"] == 1
    project = projects["results"][0]
    assert len(project["id"]) == 24 and project["workspace"] == workspace_id
    assert api.get(f"/projects/{project['id']}/").json() == project
    assert_error(api.get("/projects/000000000000000000000000/"), 404)
    assert_error(api.get("/workspaces/000000000000000000000000/"), 404)


def test_workspace_and_project_create_and_balance(api, workspace_id):
    created = api.post("/workspaces/", json={"title": "Second", "description": "x"})
    assert created.status_code == 201
    assert api.get("/workspaces/").json()["meta"]["count"] == 2
    assert_error(api.post("/workspaces/", json={"title": 5}), 400)
    project = api.post(f"/workspaces/{created.json()['id']}/projects/", json={"title": "P"})
    assert project.status_code == 201 and project.json()["workspace"] == created.json()["id"]
    balance = api.get(f"/workspaces/{workspace_id}/balance/").json()
    assert balance["currency_code"] == "GBP" and balance["available_balance"] == api.get("/users/me").json()["balance"]


def test_control_plane_needs_no_token_and_is_not_logged(sandbox, control, api):
    api.get("/users/me")
    assert httpx.get(sandbox.base_url + "/_sandbox/settings").status_code == 200
    logged = control.get("/_sandbox/requests").json()["requests"]
    assert [(r["target"], r["method"], r["path"], r["status"]) for r in logged] == [
        ("api", "GET", "/api/v1/users/me", 200)]
    assert logged[0]["time"].endswith("Z")


def test_request_log_keeps_json_bodies_with_secrets_redacted(control, api, workspace_id):
    api.post("/workspaces/", json={"title": "Logged", "description": "d"})
    hook = api.post("/hooks/subscriptions/", json={"event_type": "study.status.change", "workspace_id": workspace_id,
                                                    "target_url": "http://127.0.0.1:9/x"})
    api.post(f"/hooks/subscriptions/{hook.json()['id']}/", json={"secret": hook.headers["X-Hook-Secret"]})
    api.post(f"/data-collection/datasets/{'0' * 8}/datapoints", content=b'{"a": 1}\n{"a": 2}\n',
             headers={"Content-Type": "application/x-ndjson"})
    everything = control.get("/_sandbox/requests").json()["requests"]
    assert all(r["body"] is None for r in everything if r["method"] == "GET")
    logged = [r for r in everything if r["method"] == "POST"]
    assert {"target", "method", "path", "status", "time", "body"} <= set(logged[0])
    assert logged[0]["body"] == {"title": "Logged", "description": "d"}
    assert logged[1]["body"]["target_url"] == "http://127.0.0.1:9/x"
    assert logged[2]["body"] == {"secret": "[redacted]"}
    assert hook.headers["X-Hook-Secret"] not in str(logged)
    assert logged[3]["body"] is None                                            # JSONL is not one JSON value
