"""Receiver of Prolific webhooks: verified deliveries become Prefect events, each event once.

Run: ``python -m deployments.webhooks --port 8787`` (binds 127.0.0.1 unless ``--host`` says otherwise;
put an HTTPS reverse proxy in front: Prolific only delivers to public https URLs,
../shared/docs/prolific-api-current.md §6). Needs ``PREFECT_API_URL`` and the workspace's webhook secret
(the ``value`` of ``POST /api/v1/hooks/secrets/``, not ``X-Hook-Secret``) from
``PROLIFIC_WEBHOOK_SECRET``, or from the Prefect Secret block named by ``--secret-block`` /
``PROLIFIC_WEBHOOK_SECRET_BLOCK`` (``taskbuilder webhooks subscribe`` saves it there).

``POST /prolific/webhook`` checks, in order (§6 "Delivery headers", "Signing recipe"):

1. ``X-Prolific-Request-Timestamp`` (UNIX seconds) and ``X-Prolific-Request-Signature`` are present;
2. the signature equals base64(HMAC-SHA256(secret, timestamp + raw body)) → else 401 (forged);
3. the timestamp is at most 5 minutes from now → else 401 (stale);
4. ``X-Event-ID`` (the signature when absent) was not handled before (:mod:`tasks.seen_events`, kept
   on the Prefect server, so every replica reads it) → else **200** ``{"emitted": false, "redelivery":
   true}`` and nothing emitted: an error answer would make Prolific retry and may disable the
   subscription.

Then ``study.status.change`` of an active job (:mod:`tasks.active_jobs`, its record :mod:`tasks.records`) follows the monitor's rule
(:func:`tasks.records.collect_decision`): a status not announced before → ``prolific.study.status-changed``
(:mod:`tasks.events`, the event collect-report's trigger acts on), stored as announced and seen; a
finished, published study of a job not collected yet → the event again (the earlier collect failed or
never ran); a collected job → nothing. ``submission.status.change`` → ``prolific.submission.status-changed``.
Other event types and unknown studies: 200, nothing emitted. A handling error answers 500 and forgets
the event id, so Prolific's redelivery is handled. ``GET /health`` answers 200.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

logger = logging.getLogger("taskbuilder.webhooks")

MAX_AGE_SECONDS = 300
SIGNATURE_HEADER = "X-Prolific-Request-Signature"
TIMESTAMP_HEADER = "X-Prolific-Request-Timestamp"
EVENT_ID_HEADER = "X-Event-ID"


class WebhookRejected(Exception):
    """A delivery that must not be acted on; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Prolific's signature: base64(HMAC-SHA256(key=secret, msg=timestamp + body)) (§6 "Signing recipe")."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class WebhookVerifier:
    """Checks signature and freshness of deliveries (steps 1-3 of the module docstring).

    ``secret``: the workspace's webhook secret; ``max_age_seconds``: largest allowed distance between
    the delivery's timestamp and now (both directions); ``clock``: UNIX time source (tests).
    """

    def __init__(self, secret: str, *, max_age_seconds: float = MAX_AGE_SECONDS, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("the webhook secret is empty")
        self._secret = secret
        self._max_age_seconds = max_age_seconds
        self._clock = clock

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> None:
        """Return when the delivery is authentic and fresh; raise :class:`WebhookRejected` (401) otherwise."""
        if not timestamp or not signature:
            raise WebhookRejected(401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
        if not hmac.compare_digest(sign(self._secret, timestamp, body), signature.strip()):
            raise WebhookRejected(401, "bad signature")
        try:
            sent_at = float(timestamp)
        except ValueError:
            raise WebhookRejected(401, "the timestamp is not UNIX seconds") from None
        now = self._clock()
        if abs(now - sent_at) > self._max_age_seconds:
            raise WebhookRejected(401, f"stale delivery: timestamp is {now - sent_at:.0f} s from now (limit {self._max_age_seconds:.0f} s)")


def handle_study_status_change(payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the monitor's rule to a verified ``study.status.change`` payload; return what was done.

    ``payload``: ``{"resource_id": <study id>, "event_type": "study.status.change", "status": <new>}``.
    The job is found by study id among the records of the active jobs only (a study, not collected:
    :func:`tasks.records.active_job_records`, two Prefect requests for up to 200 active jobs), so a
    delivery costs what the active jobs cost, not every job ever run; a collected job's study is not
    among them and gets nothing, as the rule says.
    """
    from flows.monitor_studies import store_seen, watched_view
    from tasks.events import emit_study_status_changed
    from tasks.records import active_job_records, collect_decision, previous_status

    study_id, status = str(payload.get("resource_id") or ""), str(payload.get("status") or "")
    if not study_id or not status:
        return {"emitted": False, "reason": "no resource_id or status in the payload"}
    # A job in rounds is watched by its current round's study, as the monitor watches it (watched_view).
    records = [watched for watched in map(watched_view, active_job_records()) if watched.get("study_id") == study_id]
    if not records:
        return {"emitted": False, "reason": f"study {study_id} belongs to no active job (none recorded, or collected)"}
    record = records[0]
    announce, collect = collect_decision(record, status)
    if not (announce or collect):
        store_seen(record, status)
        why = "is collected" if record.get("collected_at") else f"was announced as {status} before"
        return {"emitted": False, "reason": f"job {record['job_key']!r} {why}", "job_key": record["job_key"]}
    previous = previous_status(record, status)
    event_id = emit_study_status_changed(
        study_id=study_id, batch_id=record.get("batch_id"), job_key=record["job_key"], status=status,
        previous_status=previous, base_url=record["base_url"],
    )
    store_seen(record, status, announced=True)
    logger.info("Study %s of job %r: %s → %s (webhook)", study_id, record["job_key"], previous, status)
    return {"emitted": True, "event_id": event_id, "job_key": record["job_key"], "status": status, "previous_status": previous}


def handle_submission_status_change(payload: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    """Turn a verified ``submission.status.change`` (``resource_id`` = submission id, ``status``,
    ``participant_id``) into ``prolific.submission.status-changed``; return what was done."""
    from tasks.events import emit_submission_status_changed

    submission_id, status = str(payload.get("resource_id") or ""), str(payload.get("status") or "")
    if not submission_id or not status:
        return {"emitted": False, "reason": "no resource_id or status in the payload"}
    prefect_event_id = emit_submission_status_changed(
        submission_id=submission_id, status=status, participant_id=payload.get("participant_id"), event_id=event_id
    )
    return {"emitted": True, "event_id": prefect_event_id, "submission_id": submission_id, "status": status}


def handle_delivery(payload: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Handle one verified delivery once (step 4 of the module docstring, then its event type)."""
    from tasks.seen_events import claim_event, release_event

    event_type = str(payload.get("event_type") or "")
    if event_type not in ("study.status.change", "submission.status.change"):
        return {"emitted": False, "reason": f"event type {event_type!r} is not handled"}
    if not claim_event(event_id, event_type):
        return {"emitted": False, "redelivery": True, "reason": f"event {event_id} was handled before"}
    try:
        if event_type == "study.status.change":
            return handle_study_status_change(payload)
        return handle_submission_status_change(payload, event_id)
    except BaseException:
        release_event(event_id)
        raise


def create_app(verifier: WebhookVerifier, handler: Callable[[dict[str, Any], str], dict[str, Any]] = handle_delivery) -> Starlette:
    """The Starlette app: ``POST /prolific/webhook`` and ``GET /health``. ``handler(payload, event_id)``
    acts on a verified delivery (default :func:`handle_delivery`)."""

    async def prolific_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        signature = request.headers.get(SIGNATURE_HEADER)
        try:
            verifier.verify(request.headers.get(TIMESTAMP_HEADER), signature, body)
        except WebhookRejected as rejected:
            logger.warning("Rejected a webhook delivery: %s", rejected.reason)
            return JSONResponse({"detail": rejected.reason}, status_code=rejected.status)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"emitted": False, "reason": "the body is not a JSON object"})
        event_id = request.headers.get(EVENT_ID_HEADER) or f"signature:{signature}"
        try:
            return JSONResponse(await run_in_threadpool(handler, payload, event_id))
        except Exception as error:  # noqa: BLE001 - answered 500 so that Prolific delivers again
            logger.exception("Handling webhook event %s failed", event_id)
            return JSONResponse({"detail": f"handling failed: {type(error).__name__}; deliver again"}, status_code=500)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/prolific/webhook", prolific_webhook, methods=["POST"]), Route("/health", health)])


def load_webhook_secret(secret_block: str | None = None) -> str:
    """The webhook secret: the Prefect Secret block ``secret_block`` (or env
    ``PROLIFIC_WEBHOOK_SECRET_BLOCK``), else env ``PROLIFIC_WEBHOOK_SECRET``. Raises ``SystemExit``
    with what to set when there is none."""
    block = secret_block or os.environ.get("PROLIFIC_WEBHOOK_SECRET_BLOCK")
    if block:
        from prefect.blocks.system import Secret

        return str(Secret.load(block).get())
    secret = os.environ.get("PROLIFIC_WEBHOOK_SECRET", "").strip()
    if not secret:
        raise SystemExit(
            "No webhook secret: run `taskbuilder webhooks subscribe` (it saves the secret in a Prefect Secret block), "
            "then pass --secret-block NAME, or set PROLIFIC_WEBHOOK_SECRET"
        )
    return secret


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m deployments.webhooks [--host H] [--port N] [--secret-block NAME]``."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Receive Prolific webhooks and emit Prefect events.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    parser.add_argument("--secret-block", default=None, help="Prefect Secret block holding the webhook secret")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(WebhookVerifier(load_webhook_secret(args.secret_block)))
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
