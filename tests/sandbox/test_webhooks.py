"""Webhooks (API doc §8): secrets, subscription handshake (X-Hook-Secret), signed deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.sandbox.helpers import (AUTO_APPROVE, assert_error, create_study, publish, ready_batch, ready_dataset,
                                   sentences_csv, study_in, wait_for, write_csv)


class _Received(list):
    failures = 0


@pytest.fixture
def receiver():
    """A local HTTP server recording each POST as (headers, body bytes); it answers 500 to the first
    ``received.failures`` deliveries, 200 after."""
    received = _Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(500 if len(received) <= received.failures else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_event_types_and_secrets(api, workspace_id):
    types = {t["event_type"] for t in api.get("/hooks/event-types/").json()["results"]}
    assert {"study.status.change", "submission.status.change", "participant.submission.created",
            "study.progress.change", "study.has_high_return_rate"} <= types
    first = api.post("/hooks/secrets/", json={"workspace_id": workspace_id})
    assert first.status_code == 201 and first.json()["workspace_id"] == workspace_id and first.json()["value"]
    second = api.post("/hooks/secrets/", json={"workspace_id": workspace_id}).json()
    listed = api.get("/hooks/secrets/", params={"workspace_id": workspace_id}).json()["results"]
    assert listed == [second]                               # creating replaces the old one
    assert "workspace_id" in assert_error(api.post("/hooks/secrets/", json={"workspace_id": "nope"}), 400)["detail"]


def test_subscription_handshake_and_signed_deliveries(api, workspace_id, receiver, tmp_path):
    url, received = receiver
    secret = api.post("/hooks/secrets/", json={"workspace_id": workspace_id}).json()["value"]
    created = api.post("/hooks/subscriptions/", json={"event_type": "study.status.change", "target_url": url,
                                                       "workspace_id": workspace_id})
    assert created.status_code == 201 and created.json()["is_enabled"] is False
    handshake = created.headers["X-Hook-Secret"]
    hook_id = created.json()["id"]
    assert_error(api.post(f"/hooks/subscriptions/{hook_id}/", json={"secret": "wrong"}), 400)
    confirmed = api.post(f"/hooks/subscriptions/{hook_id}/", json={"secret": handshake})
    assert confirmed.status_code == 200 and confirmed.json()["is_enabled"] is True

    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(2)))
    batch = ready_batch(api, workspace_id, dataset["id"])
    study = create_study(api, batch["id"], completion_codes=AUTO_APPROVE)
    publish(api, study["id"])
    study_in(api, study["id"], ("COMPLETED",))
    wait_for(lambda: {"n": len(received)}, lambda r: r["n"] >= 2)
    statuses = []
    for headers, body in received:
        expected = base64.b64encode(hmac.new(secret.encode(), headers["x-prolific-request-timestamp"].encode() + body,
                                             hashlib.sha256).digest()).decode()
        assert headers["x-prolific-request-signature"] == expected
        payload = json.loads(body)
        assert payload["resource_id"] == study["id"] and payload["event_type"] == "study.status.change"
        statuses.append(payload["status"])
    assert statuses == ["ACTIVE", "COMPLETED"]
    events = wait_for(lambda: api.get(f"/hooks/subscriptions/{hook_id}/events/").json(),
                      lambda e: all(x["status"] == "SUCCEEDED" for x in e["results"]))
    assert events["meta"]["count"] == 2


def test_unconfirmed_subscription_gets_nothing_and_crud(api, workspace_id, receiver):
    url, received = receiver
    hook = api.post("/hooks/subscriptions/", json={"event_type": "submission.status.change", "target_url": url,
                                                    "workspace_id": workspace_id}).json()
    assert api.get("/hooks/subscriptions/", params={"workspace_id": workspace_id, "is_enabled": "false"}).json()["meta"]["count"] == 1
    patched = api.patch(f"/hooks/subscriptions/{hook['id']}/", json={"target_url": url + "/x"}).json()
    assert patched["target_url"] == url + "/x" and api.get(f"/hooks/subscriptions/{hook['id']}/").json() == patched
    assert api.delete(f"/hooks/subscriptions/{hook['id']}/").status_code == 204
    assert_error(api.get(f"/hooks/subscriptions/{hook['id']}/"), 404)
    assert_error(api.post("/hooks/subscriptions/", json={"event_type": "nope", "target_url": url,
                                                          "workspace_id": workspace_id}), 400)
    assert_error(api.post("/hooks/subscriptions/", json={"event_type": "study.status.change", "target_url": "ftp://x",
                                                          "workspace_id": workspace_id}), 400)
    assert received == []


def _subscribe(api, workspace_id: str, url: str, event_type: str = "study.status.change") -> str:
    created = api.post("/hooks/subscriptions/", json={"event_type": event_type, "target_url": url,
                                                       "workspace_id": workspace_id})
    hook_id = created.json()["id"]
    api.post(f"/hooks/subscriptions/{hook_id}/", json={"secret": created.headers["X-Hook-Secret"]}).raise_for_status()
    return hook_id


def _publish_a_study(api, workspace_id, tmp_path) -> dict:
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(2)))
    study = create_study(api, ready_batch(api, workspace_id, dataset["id"])["id"], completion_codes=AUTO_APPROVE)
    publish(api, study["id"])
    return study


def test_failed_delivery_is_redelivered_with_the_same_event_id(api, control, workspace_id, receiver, tmp_path):
    url, received = receiver
    received.failures = 2
    control.post("/_sandbox/settings", json={"webhook_retry_base_seconds": 0.05}).raise_for_status()
    secret = api.post("/hooks/secrets/", json={"workspace_id": workspace_id}).json()["value"]
    hook_id = _subscribe(api, workspace_id, url)
    study = _publish_a_study(api, workspace_id, tmp_path)
    wait_for(lambda: {"n": len(received)}, lambda r: r["n"] >= 3)
    first_three = received[:3]
    event_ids = {headers["x-event-id"] for headers, _ in first_three}
    assert len(event_ids) == 1                                               # one event, three attempts
    assert len({headers["x-timestamp"] for headers, _ in first_three}) == 1
    for headers, body in first_three:
        assert json.loads(body)["resource_id"] == study["id"]
        expected = base64.b64encode(hmac.new(secret.encode(), headers["x-prolific-request-timestamp"].encode() + body,
                                             hashlib.sha256).digest()).decode()
        assert headers["x-prolific-request-signature"] == expected
    events = wait_for(lambda: api.get(f"/hooks/subscriptions/{hook_id}/events/").json(),
                      lambda e: e["meta"]["count"] >= 1 and e["results"][0]["status"] == "SUCCEEDED")
    assert events["results"][0]["id"] in event_ids
    assert api.get(f"/hooks/subscriptions/{hook_id}/events/?status=FAILED").json()["meta"]["count"] == 0


def test_delivery_gives_up_after_the_attempts(api, control, workspace_id, receiver, tmp_path):
    url, received = receiver
    received.failures = 1000
    control.post("/_sandbox/settings", json={"webhook_attempts": 2, "webhook_retry_base_seconds": 0.05}).raise_for_status()
    hook_id = _subscribe(api, workspace_id, url)
    _publish_a_study(api, workspace_id, tmp_path)
    failed = wait_for(lambda: api.get(f"/hooks/subscriptions/{hook_id}/events/?status=FAILED").json(),
                      lambda e: e["meta"]["count"] >= 1)
    event_id = failed["results"][0]["id"]
    assert [h["x-event-id"] for h, _ in received].count(event_id) == 2


def test_submission_created_events(api, workspace_id, receiver, tmp_path):
    url, received = receiver
    _subscribe(api, workspace_id, url, "participant.submission.created")
    study = _publish_a_study(api, workspace_id, tmp_path)
    study_in(api, study["id"], ("COMPLETED",))
    wait_for(lambda: {"n": len(received)}, lambda r: r["n"] >= 2)
    payloads = [json.loads(body) for _, body in received]
    assert {p["event_type"] for p in payloads} == {"participant.submission.created"}
    assert {p["study_id"] for p in payloads} == {study["id"]}
