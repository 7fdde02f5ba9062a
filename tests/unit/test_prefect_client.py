"""The records' Prefect client: a SQLite write conflict's 503 is sent again within milliseconds; what asks for a
wait, or cannot be sent again, is handed on at once (tasks/prefect_client.py, issue 18's B8)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tasks.prefect_client import QUICK_RETRY_DELAYS_SECONDS, QuickRetryTransport, prefect_client


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 (with the headers of ``server.refusal_headers``) to the first ``server.refusals`` requests."""

    def do_PATCH(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.bodies.append(body)
        if len(self.server.bodies) <= self.server.refusals:
            self.send_response(503)
            for name, value in self.server.refusal_headers.items():
                self.send_header(name, value)
            payload = b'{"exception_message": "Service Unavailable"}'
        else:
            self.send_response(200)
            payload = b"{}"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    server.bodies, server.refusals, server.refusal_headers = [], 0, {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def patch(server, content=None, **kwargs) -> tuple[httpx.Response, float]:
    with httpx.Client(transport=QuickRetryTransport(), base_url=f"http://127.0.0.1:{server.server_port}") as client:
        started = time.perf_counter()
        response = client.patch("/api/block_documents/x", content=content if content is not None else b'{"a": 1}', **kwargs)
        return response, time.perf_counter() - started


def test_a_conflict_is_sent_again_quickly_with_the_same_body(flaky, monkeypatch):
    import tasks.prefect_client as module

    waits: list[float] = []
    monkeypatch.setattr(module, "time", type("Clock", (), {"sleep": staticmethod(waits.append)}))
    flaky.refusals = 3
    response, _ = patch(flaky)
    assert response.status_code == 200
    assert flaky.bodies == [b'{"a": 1}'] * 4
    assert len(waits) == 3 and sum(waits) < 0.6  # three quick waits (≤ 0.53 s with jitter), not Prefect's 2 + 4 + 8 s


def test_a_conflict_that_lasts_is_handed_on_after_the_quick_tries(flaky):
    flaky.refusals = 100
    response, _ = patch(flaky)
    assert response.status_code == 503
    assert len(flaky.bodies) == len(QUICK_RETRY_DELAYS_SECONDS) + 1


@pytest.mark.parametrize("headers", [{"Retry-After": "3"}, {"Prefect-Maintenance": "true"}])
def test_a_503_that_asks_for_a_wait_is_handed_on_at_once(flaky, headers):
    flaky.refusals, flaky.refusal_headers = 5, headers
    response, _ = patch(flaky)
    assert response.status_code == 503 and len(flaky.bodies) == 1


def test_a_body_that_cannot_be_sent_again_is_handed_on_at_once(flaky):
    flaky.refusals = 5
    response, _ = patch(flaky, content=iter([b'{"a": ', b"1}"]))
    assert response.status_code == 503 and len(flaky.bodies) == 1


def test_one_client_per_server_kept_open(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with prefect_client() as first:
            pass
        with prefect_client() as second:
            assert second is first and not first._closed
            assert isinstance(first._client._transport, QuickRetryTransport)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:10/api"}):
        with prefect_client() as other:
            assert other is not first


def test_a_proxy_in_the_environment_keeps_prefects_own_client(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:11/api"}):
        with prefect_client() as client:
            assert not isinstance(client._client._transport, QuickRetryTransport)
