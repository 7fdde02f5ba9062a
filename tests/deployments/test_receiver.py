"""The webhook receiver's HTTP answers and the collect rule, without a server: deliveries signed here
as ../shared/docs/prolific-api-current.md §6 describes, the handler replaced by a recording one, and the
seen-event store replaced by a dict (its real form, Prefect Variables, runs in test_webhooks_collect.py)."""

from __future__ import annotations

import json
import time

import pytest
from starlette.testclient import TestClient

import deployments.webhooks as webhooks
from deployments.webhooks import WebhookVerifier, create_app, sign
from tasks.records import collect_decision

SECRET = "whsec-unit-" + "ab" * 8


def deliver(client: TestClient, payload: dict, *, event_id: str | None = "evt-1", secret: str = SECRET, age_seconds: float = 0):
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time() - age_seconds))
    headers = {"X-Prolific-Request-Timestamp": timestamp, "X-Prolific-Request-Signature": sign(secret, timestamp, body),
               "Content-Type": "application/json", "X-Timestamp": timestamp}
    if event_id:
        headers["X-Event-ID"] = event_id
    return client.post("/prolific/webhook", content=body, headers=headers)


@pytest.fixture
def receiver(monkeypatch):
    """The real app and handle_delivery, with the claim store and the two event handlers recorded."""
    claimed: dict[str, str] = {}
    handled: list[tuple[str, dict]] = []

    def claim(event_id: str, kind: str) -> bool:
        first = event_id not in claimed
        claimed.setdefault(event_id, kind)
        return first

    monkeypatch.setattr("tasks.seen_events.claim_event", claim)
    monkeypatch.setattr("tasks.seen_events.release_event", lambda event_id: claimed.pop(event_id, None))

    def study(payload):
        handled.append((payload["resource_id"], payload))
        if payload.get("status") == "BROKEN":
            raise RuntimeError("the Prefect server is down")
        return {"emitted": True}

    monkeypatch.setattr(webhooks, "handle_study_status_change", study)
    monkeypatch.setattr(webhooks, "handle_submission_status_change", lambda payload, event_id: handled.append((payload["resource_id"], payload)) or {"emitted": True})
    return TestClient(create_app(WebhookVerifier(SECRET))), handled, claimed


STUDY = {"resource_id": "s1", "event_type": "study.status.change", "metadata": {}, "status": "AWAITING REVIEW"}
SUBMISSION = {"resource_id": "sub1", "event_type": "submission.status.change", "participant_id": "p1", "status": "APPROVED"}


def test_both_event_types_are_handled_and_a_redelivery_is_acknowledged_without_emitting(receiver):
    client, handled, _ = receiver
    first = deliver(client, STUDY, event_id="evt-study")
    assert first.status_code == 200 and first.json()["emitted"] is True
    again = deliver(client, STUDY, event_id="evt-study")  # Prolific's redelivery: same X-Event-ID, new timestamp
    assert again.status_code == 200 and again.json() == {"emitted": False, "redelivery": True, "reason": "event evt-study was handled before"}
    assert deliver(client, SUBMISSION, event_id="evt-sub").json()["emitted"] is True
    assert [resource for resource, _ in handled] == ["s1", "sub1"]


def test_forged_stale_and_unsigned_deliveries_are_refused_before_anything_is_handled(receiver):
    client, handled, claimed = receiver
    assert deliver(client, STUDY, secret="not-the-secret").status_code == 401
    assert deliver(client, STUDY, age_seconds=301).status_code == 401
    assert client.post("/prolific/webhook", content=json.dumps(STUDY)).status_code == 401
    assert handled == [] and claimed == {}


def test_a_failed_handling_answers_500_and_the_redelivery_is_handled(receiver):
    client, handled, claimed = receiver
    broken = {**STUDY, "status": "BROKEN"}
    assert deliver(client, broken, event_id="evt-broken").status_code == 500
    assert "evt-broken" not in claimed  # forgotten, so that Prolific's next attempt counts
    assert deliver(client, {**STUDY, "status": "COMPLETED"}, event_id="evt-broken").json()["emitted"] is True


def test_other_event_types_are_acknowledged_and_ignored(receiver):
    client, handled, claimed = receiver
    answer = deliver(client, {"resource_id": "s1", "event_type": "study.progress.change"})
    assert answer.status_code == 200 and answer.json()["emitted"] is False and handled == [] and claimed == {}


@pytest.mark.parametrize(
    ("record", "status", "expected"),
    [
        # C24: the launch flow saw COMPLETED, nobody announced it → announce and collect
        ({"published": True, "statuses": {"study": "COMPLETED"}}, "COMPLETED", (True, True)),
        # announced before, the collect failed → collect again, nothing to announce
        ({"published": True, "announced_status": "AWAITING REVIEW", "collect_error": "x"}, "AWAITING REVIEW", (False, True)),
        # collected → nothing, ever
        ({"published": True, "announced_status": "ACTIVE", "collected_at": "2026-01-01T00:00:00+00:00"}, "COMPLETED", (False, False)),
        # still running → announce the change only
        ({"published": True, "announced_status": None}, "ACTIVE", (True, False)),
        # never published (rejected / over budget) → no collect
        ({"published": False, "statuses": {"study": "UNPUBLISHED"}}, "UNPUBLISHED", (True, False)),
        # records from before `published` was kept: a seen status past UNPUBLISHED means published
        ({"statuses": {"study": "ACTIVE"}, "announced_status": "AWAITING REVIEW"}, "AWAITING REVIEW", (False, True)),
    ],
)
def test_collect_decision(record, status, expected):
    assert collect_decision(record, status) == expected


def test_previous_status_is_the_last_seen_unless_that_is_the_new_one():
    from tasks.records import previous_status

    assert previous_status({"statuses": {"study": "ACTIVE"}, "announced_status": None}, "COMPLETED") == "ACTIVE"
    assert previous_status({"statuses": {"study": "COMPLETED"}, "announced_status": "ACTIVE"}, "COMPLETED") == "ACTIVE"
    assert previous_status({"statuses": {"study": "COMPLETED"}}, "COMPLETED") is None
