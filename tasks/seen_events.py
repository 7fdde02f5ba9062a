"""Which Prolific webhook deliveries were handled, kept on the Prefect server so every receiver replica reads them.

Prolific delivers each event at least once and keeps its ``X-Event-ID`` across redeliveries
(../shared/docs/prolific-api-current.md §6 "Delivery headers"). A handled event is a Prefect Variable
named ``prolific_event_<first 40 hex of sha256(event id)>`` (variable names allow only lowercase letters,
digits, ``_`` and ``-``), value: the event type, when it was claimed and a random token of the claim. Creating
it is the claim: the server answers 409 to the second create, so two replicas given the same delivery at once
handle it once; a 409 to this call's own create sent again (the server made it, its answer was lost) reads the
token back and is this call's claim.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from tasks.prefect_client import prefect_client
from prefect.client.schemas.actions import VariableCreate
from prefect.exceptions import ObjectAlreadyExists

PREFIX = "prolific_event_"


def seen_event_name(event_id: str) -> str:
    """The Variable name that marks event ``event_id`` as handled."""
    return PREFIX + hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:40]


def claim_event(event_id: str, event_type: str) -> bool:
    """Mark ``event_id`` handled; ``True`` when this call is the first (handle it), ``False`` when it was
    claimed before (a redelivery: acknowledge it, do nothing). Needs ``PREFECT_API_URL``
    (``POST /api/variables/``)."""
    claim = uuid.uuid4().hex  # whose claim it is: a create the server made but answered 503 is sent again (409)
    value = {"event_type": event_type, "claimed_at": dt.datetime.now(dt.timezone.utc).isoformat(), "claim": claim}
    name = seen_event_name(event_id)
    with prefect_client() as client:
        try:
            client.create_variable(VariableCreate(name=name, value=value, tags=["prolific-webhook"]))
        except ObjectAlreadyExists:
            stored = client.read_variable_by_name(name)
            return stored is not None and isinstance(stored.value, dict) and stored.value.get("claim") == claim
    return True


def release_event(event_id: str) -> None:
    """Forget a claim whose handling failed, so that Prolific's redelivery is handled
    (``DELETE /api/variables/name/{name}``; no error when it is gone)."""
    from prefect.exceptions import ObjectNotFound

    with prefect_client() as client:
        try:
            client.delete_variable_by_name(seen_event_name(event_id))
        except ObjectNotFound:
            pass
