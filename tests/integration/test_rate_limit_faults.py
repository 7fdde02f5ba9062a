"""The Prefect rate limit of Prolific API requests when it cannot grant a slot: the Prefect server unreachable,
a limit without slot decay, an inactive limit. The Prolific request is never sent unthrottled by mistake, and
the error says that the Prefect rate limit (not Prolific) is the trouble."""

from __future__ import annotations

import socket

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from taskbuilder.client import ProlificClient
from taskbuilder.errors import BadInput, ConnectError
from taskbuilder.failures import classify
from tasks.ratelimit import RateLimitedTransport


def _client_counting_sends(limit_name: str) -> tuple[ProlificClient, list[str]]:
    """A Prolific client behind the rate limit ``limit_name`` whose requests end in a recording transport."""
    sent: list[str] = []
    inner = httpx.MockTransport(lambda request: (sent.append(request.url.path), httpx.Response(200, json={"id": "me"}))[1])
    client = ProlificClient("http://prolific.invalid/api/v1/", "token", transport=RateLimitedTransport(limit_name, inner=inner))
    return client, sent


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_prefect_server_is_named_as_such_and_the_request_is_not_sent():
    client, sent = _client_counting_sends("prolific-api")
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{_closed_port()}/api"}):
        with pytest.raises(ConnectError) as caught:
            client._request("GET", "/users/me/")
    assert sent == []
    message = str(caught.value)
    assert "Prefect rate limit 'prolific-api'" in message and "not sent" in message, message
    assert classify(caught.value).action == "retry"  # nothing was sent: sending it again is safe


@pytest.fixture
def prefect_limits(prefect_harness):
    """Create global concurrency limits on the harness's server; delete them afterwards."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    names: list[str] = []

    def create(name: str, **fields) -> str:
        with get_client(sync_client=True) as prefect:
            prefect.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, **fields))
        names.append(name)
        return name

    yield create
    with get_client(sync_client=True) as prefect:
        for name in names:
            prefect.delete_global_concurrency_limit_by_name(name)


def test_a_limit_without_slot_decay_is_a_clear_error_before_the_request_is_sent(prefect_limits):
    name = prefect_limits("no-decay-limit", limit=5)
    client, sent = _client_counting_sends(name)
    with pytest.raises(BadInput) as caught:
        client._request("GET", "/users/me/")
    assert sent == []
    message = str(caught.value)
    assert repr(name) in message and "--slot-decay-per-second" in message, message
    assert classify(caught.value).action == "stop"


def test_an_inactive_limit_lets_requests_through(prefect_limits):
    name = prefect_limits("inactive-limit", limit=1, slot_decay_per_second=0.01, active=False)
    client, sent = _client_counting_sends(name)
    for _ in range(3):
        client._request("GET", "/users/me/")
    assert len(sent) == 3 and all(path.endswith("/users/me/") for path in sent), sent


def test_after_a_refusal_the_next_ask_waits_a_whole_decay_interval(prefect_limits, monkeypatch):
    """A refused ask moves the limit's row without decaying it, so asking again sooner than ``1 / decay`` is
    refused again: each wait after a refusal is at least one decay interval, and a lone asker is refused at most
    once per slot."""
    import sys

    import tasks.ratelimit as ratelimit

    name = prefect_limits("paced-limit", limit=1, slot_decay_per_second=5.0)  # one slot per 0.2 s
    waits: list[float] = []
    real_sleep = ratelimit.time.sleep

    def recorded(seconds: float) -> None:
        caller = sys._getframe(1)  # the waits after a refusal (not the pace's rest of an interval, nor other threads')
        if caller.f_globals.get("__name__") == "tasks.ratelimit" and caller.f_code.co_name == "_ask_until_granted":
            waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(ratelimit.time, "sleep", recorded)
    client, sent = _client_counting_sends(name)
    for _ in range(6):
        client._request("GET", "/users/me/")
    assert len(sent) == 6
    assert waits and min(waits) >= 0.2, waits  # never sooner than the decay interval
    assert len(waits) <= 6, waits  # at most one refusal per slot
