"""The contract test: the whole example job against the sandbox, then every request the client sent and every
answer it got (the sandbox's request log) checked against the contract (taskbuilder.models.contract): the
endpoint is one the contract knows, the status code is the endpoint's, the request and response bodies
fit their models (unknown fields allowed; missing required fields and wrong types not). Prints which
operation ids of §0 the client uses and which this run checked."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

import tasks.connection
from taskbuilder.client import ProlificClient
from taskbuilder.models.contract import ENDPOINTS, SECTION_0_OPERATION_IDS, check_exchange, find_endpoint

from tests.integration.test_annotation_batch import example_job, run

pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")

REQUEST_BODY_KEYS = ("request_body", "request_json", "body")
RESPONSE_BODY_KEYS = ("response_body", "response_json")


class RecordingTransport(httpx.BaseTransport):
    """The client's own view: each request's JSON body and its answer's status and JSON body."""

    def __init__(self, log: list[dict]) -> None:
        self.inner = httpx.HTTPTransport()
        self.log = log
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        entry = {"method": request.method, "path": request.url.path, "status": response.status_code,
                 "request_body": _json(request.content), "response_body": _json(response.content)}
        with self.lock:
            self.log.append(entry)
        return response

    def close(self) -> None:
        self.inner.close()


def _json(content: bytes):
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


def _body(entry: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in entry:
            return entry[key]
    return None


def test_the_job_keeps_the_contract(tmp_path, sandbox, capsys, monkeypatch):
    client_log: list[dict] = []

    def recording_client(base_url, token, *, timeouts=None, transport=None):
        return ProlificClient(base_url, token, timeouts=timeouts, transport=RecordingTransport(client_log))

    monkeypatch.setattr(tasks.connection, "ProlificClient", recording_client)
    run(example_job(tmp_path), sandbox)
    server_log = [r for r in sandbox.requests() if r["target"] == "api" and not r["path"].startswith("/_sandbox")]
    assert server_log and client_log, "no API request was logged"
    assert [(r["method"], r["path"]) for r in server_log] == [(r["method"], r["path"]) for r in client_log]
    # request bodies as the server received them (its log) when it logs them, answers as the client got them
    server_has_bodies = any(_body(r, REQUEST_BODY_KEYS) is not None for r in server_log)
    exchanges = [
        {**mine, "status": theirs["status"],
         "request_body": _body(theirs, REQUEST_BODY_KEYS) if server_has_bodies else mine["request_body"],
         "response_body": _body(theirs, RESPONSE_BODY_KEYS) or mine["response_body"]}
        for theirs, mine in zip(server_log, client_log)
    ]

    problems: list[str] = []
    seen: dict[str, set[str]] = {}
    bodies = {"request": 0, "response": 0}
    for entry in exchanges:
        request_body, response_body = _body(entry, REQUEST_BODY_KEYS), _body(entry, RESPONSE_BODY_KEYS)
        bodies["request"] += request_body is not None
        bodies["response"] += response_body is not None
        problems += check_exchange(entry["method"], entry["path"], entry["status"], request_body, response_body)
        endpoint = find_endpoint(entry["method"], entry["path"])
        if endpoint is not None:
            seen.setdefault(endpoint.operation_id or f"{endpoint.method} {endpoint.template}", set()).add(str(entry["status"]))

    used = {e.operation_id for e in ENDPOINTS if e.operation_id}
    with capsys.disabled():
        print(f"\n[contract] {len(exchanges)} requests, request bodies from {'the sandbox log' if server_has_bodies else 'the client'}, answers from the client: "
              f"{bodies['request']} request bodies, {bodies['response']} response bodies checked")
        print("[contract] §0 operation id                      used by the client  checked in this run")
        for operation_id in SECTION_0_OPERATION_IDS:
            if operation_id in used or operation_id in seen:
                print(f"[contract] {operation_id:<45} {'yes' if operation_id in used else 'no':<19} "
                      f"{'yes ' + ','.join(sorted(seen[operation_id])) if operation_id in seen else 'no'}")
        others = sorted(k for k in seen if k not in SECTION_0_OPERATION_IDS)
        print(f"[contract] not in §0, checked: {', '.join(others) or 'none'}")
        print(f"[contract] §0 operation ids: {len(SECTION_0_OPERATION_IDS)}; the client uses {len(used)}; "
              f"this run checked {len([k for k in seen if k in SECTION_0_OPERATION_IDS])}")
    assert not problems, "\n".join(problems)
    for needed in ("calculate-study-cost", "get-study-cost", "create-task-builder-dataset", "publish-study"):
        assert needed in seen, f"the job did not call {needed}"
