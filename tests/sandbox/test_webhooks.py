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


@pytest.fixture
def receiver():
    """A local HTTP server recording each POST as (headers, body bytes)."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
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
    assert {"study.status.change", "submission.status.change"} <= types
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
