"""The bonus and review endpoints of the client (§7, §5.7) against httpx.MockTransport: paths, bodies, and the
pay call sent exactly once even when it fails (it is not idempotent)."""

from __future__ import annotations

import json

import httpx
import pytest

from taskbuilder.client import ProlificClient
from taskbuilder.errors import ServerError

MESSAGE = "Your answers on the check questions did not match what the instructions asked for on the task page, sorry."


def _client(handler) -> ProlificClient:
    return ProlificClient("https://api.test", "tok", transport=httpx.MockTransport(handler))


def test_create_and_pay_send_the_documented_requests():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, json.loads(request.content) if request.content else None))
        if request.url.path.endswith("/bonus-payments/"):
            return httpx.Response(201, json={"id": "bp1", "study": "s1", "amount": 150, "fees": 50, "vat": 10, "total_amount": 210})
        return httpx.Response(202, json="Successfully received bonus payments request.")

    with _client(handler) as client:
        bonus = client.create_bonus_payments("s1", "p1,1.50\n")
        client.pay_bonus_payments(bonus.id)
    assert bonus.total_amount == 210
    assert seen == [("POST", "/api/v1/submissions/bonus-payments/", {"study_id": "s1", "csv_bonuses": "p1,1.50\n"}),
                    ("POST", "/api/v1/bulk-bonus-payments/bp1/pay/", None)]


def test_pay_is_sent_once_even_on_a_server_error():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(500, json={"error": {"status": 500, "title": "x", "error_code": 1, "detail": "boom"}})

    with _client(handler) as client, pytest.raises(ServerError):
        client.pay_bonus_payments("bp1")
    assert calls == ["/api/v1/bulk-bonus-payments/bp1/pay/"]


def test_reject_needs_message_and_category_before_anything_is_sent():
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"id": "sub1", "status": "REJECTED"})

    with _client(handler) as client:
        with pytest.raises(ValueError, match="100 characters"):
            client.transition_submission("sub1", "REJECT", message="too short", rejection_category="LOW_EFFORT")
        with pytest.raises(ValueError):
            client.transition_submission("sub1", "REJECT", message=MESSAGE, rejection_category="SLOPPY")
        assert sent == []
        result = client.transition_submission("sub1", "REJECT", message=MESSAGE, rejection_category="FAILED_CHECK")
    assert str(result.status) == "REJECTED"
    assert sent == [{"action": "REJECT", "message": MESSAGE, "rejection_category": "FAILED_CHECK"}]
