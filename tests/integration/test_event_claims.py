"""A webhook event's claim (tasks/seen_events.py) survives its own create being sent again: the server made the
variable but its answer was lost (a 503 after the commit), the resend gets 409, and it is still this call's claim;
another delivery of the same event is still a redelivery."""

from __future__ import annotations

import uuid

import pytest

from tasks.seen_events import claim_event

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_create_sent_again_is_still_this_calls_claim(monkeypatch):
    from prefect.client.orchestration import SyncPrefectClient

    create = SyncPrefectClient.create_variable

    def made_then_sent_again(self, variable):
        create(self, variable)            # the server made it ...
        return create(self, variable)     # ... and the resend of the unanswered request meets it: 409

    event_id = f"evt-{uuid.uuid4().hex}"
    with monkeypatch.context() as patched:
        patched.setattr(SyncPrefectClient, "create_variable", made_then_sent_again)
        assert claim_event(event_id, "study.status.change") is True
    assert claim_event(event_id, "study.status.change") is False  # Prolific's redelivery of the same event


def test_two_claims_of_one_event_one_wins():
    event_id = f"evt-{uuid.uuid4().hex}"
    assert [claim_event(event_id, "submission.status.change") for _ in range(2)] == [True, False]
