"""Receiver of Prolific webhooks: verified ``study.status.change`` deliveries become Prefect events.

Run: ``python -m deployments.webhooks --port 8787`` (binds 127.0.0.1 unless ``--host`` says otherwise;
put an HTTPS reverse proxy in front: Prolific only delivers to public https URLs, API doc §8). Needs
``PREFECT_API_URL`` and the workspace's webhook secret from ``PROLIFIC_WEBHOOK_SECRET``, or from the
Prefect Secret block named by ``--secret-block`` / ``PROLIFIC_WEBHOOK_SECRET_BLOCK``.

``POST /prolific/webhook`` checks, in order (API doc §8 "Signature"):

1. ``X-Prolific-Request-Timestamp`` (UNIX seconds) and ``X-Prolific-Request-Signature`` are present;
2. the signature equals base64(HMAC-SHA256(secret, timestamp + raw body)) → else 401 (forged);
3. the timestamp is at most 5 minutes from now → else 401 (stale);
4. the signature was not seen before → else 409 (replayed). Seen signatures are kept in memory for
   the freshness window, so one receiver process catches replays; run one receiver (or put the
   seen-set in shared storage) if you scale it out.

A good ``study.status.change`` for a study of a recorded job (:mod:`tasks.records`) whose status
differs from the recorded one emits ``prolific.study.status-changed`` (:mod:`tasks.events`, the same
event the monitor emits) and updates the record; the answer is 200 with what was done. Other event
types and unknown studies are acknowledged (200) and ignored. ``GET /health`` answers 200.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import threading
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


class WebhookRejected(Exception):
    """A delivery that must not be acted on; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Prolific's signature: base64(HMAC-SHA256(key=secret, msg=timestamp + body)) (API doc §8)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class WebhookVerifier:
    """Checks signature, freshness and replays of deliveries (see the module docstring).

    ``secret``: the workspace's webhook secret; ``max_age_seconds``: largest allowed distance between
    the delivery's timestamp and now (both directions); ``clock``: UNIX time source (tests).
    Thread-safe.
    """

    def __init__(self, secret: str, *, max_age_seconds: float = MAX_AGE_SECONDS, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("the webhook secret is empty")
        self._secret = secret
        self._max_age_seconds = max_age_seconds
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> None:
        """Return when the delivery is authentic, fresh and new; raise :class:`WebhookRejected` otherwise."""
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
        with self._lock:
            for seen, at in list(self._seen.items()):
                if now - at > 2 * self._max_age_seconds:
                    del self._seen[seen]
            if signature in self._seen:
                raise WebhookRejected(409, "replayed delivery: this signature was seen before")
            self._seen[signature] = now


def handle_study_status_change(payload: dict[str, Any]) -> dict[str, Any]:
    """Turn a verified ``study.status.change`` payload into the Prefect event; return what was done.

    ``payload``: ``{"resource_id": <study id>, "event_type": "study.status.change", "status": <new>}``.
    The job is found by study id among the job records; its recorded status is the previous status.
    """
    from tasks.events import emit_study_status_changed
    from tasks.records import list_job_records, update_job_record

    study_id, status = str(payload.get("resource_id") or ""), str(payload.get("status") or "")
    if not study_id or not status:
        return {"emitted": False, "reason": "no resource_id or status in the payload"}
    records = [record for record in list_job_records() if record.get("study_id") == study_id]
    if not records:
        return {"emitted": False, "reason": f"study {study_id} belongs to no recorded job"}
    record = records[0]
    previous = (record.get("statuses") or {}).get("study")
    if previous == status:
        return {"emitted": False, "reason": f"study {study_id} was already known to be {status}", "job_key": record["job_key"]}
    event_id = emit_study_status_changed(
        study_id=study_id, batch_id=record.get("batch_id"), job_key=record["job_key"], status=status,
        previous_status=previous, base_url=record["base_url"],
    )
    update_job_record(record["job_key"], record["base_url"], statuses={"study": status})
    logger.info("Study %s of job %r: %s → %s (webhook)", study_id, record["job_key"], previous, status)
    return {"emitted": True, "event_id": event_id, "job_key": record["job_key"], "status": status, "previous_status": previous}


def create_app(verifier: WebhookVerifier) -> Starlette:
    """The Starlette app: ``POST /prolific/webhook`` and ``GET /health``."""

    async def prolific_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verifier.verify(request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body)
        except WebhookRejected as rejected:
            logger.warning("Rejected a webhook delivery: %s", rejected.reason)
            return JSONResponse({"detail": rejected.reason}, status_code=rejected.status)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
        if not isinstance(payload, dict) or payload.get("event_type") != "study.status.change":
            kind = payload.get("event_type") if isinstance(payload, dict) else None
            return JSONResponse({"emitted": False, "reason": f"event type {kind!r} is not handled"})
        return JSONResponse(await run_in_threadpool(handle_study_status_change, payload))

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
            "No webhook secret: set PROLIFIC_WEBHOOK_SECRET (the workspace secret from POST /api/v1/hooks/secrets/) "
            "or name a Prefect Secret block with --secret-block"
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
