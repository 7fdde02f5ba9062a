"""What to do about a failure (`classify` → `FailureDecision`: retry / wait / refresh / stop), decided from the
typed errors of `taskbuilder.errors`; the one place the task layer's retry policy asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from taskbuilder.errors import (
    BadInput,
    ProlificError,
    Refusal,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TransportError,
    UploadServerError,
    UploadSlowDown,
    UploadURLExpired,
)
from taskbuilder.redact import redact_text


@dataclass(frozen=True)
class FailureDecision:
    """What to do about a failure.

    ``action``: ``"retry"`` (transient: try again after a backoff), ``"wait"`` (try again after
    ``wait_seconds``; ``None`` means back off by your own schedule), ``"refresh"`` (get a new presigned
    URL, then try again), ``"stop"`` (a resend will not help). ``reason``: one line for the log.
    """

    action: Literal["retry", "wait", "refresh", "stop"]
    reason: str
    wait_seconds: float | None = None


def classify(exc: BaseException) -> FailureDecision:
    """Decide retry / wait / refresh / stop for ``exc``. Pure: no I/O, no state.

    Rules: :class:`TransportError` → retry; :class:`RateLimited` or :class:`ServiceUnavailable` with
    ``Retry-After`` → wait that long; other 429/5xx → retry; :class:`UploadURLExpired` → refresh;
    :class:`UploadSlowDown` → wait (its Retry-After or ``None``); :class:`UploadServerError` → retry;
    every other status error (400/401/403/404/409/410/422…), :class:`UploadRejected`,
    :class:`DatasetProcessingFailed`, :class:`BatchSetupFailed`, :class:`WaitTimedOut`,
    :class:`MissingCredentials`, :class:`UnexpectedResponse`, a :class:`Refusal` or :class:`BadInput` (said as
    they are) and any other exception (said as a likely bug) → stop.
    """
    reason = redact_text(str(exc)) or type(exc).__name__
    if isinstance(exc, TransportError):
        return FailureDecision("retry", reason)
    if isinstance(exc, (RateLimited, ServiceUnavailable)) and exc.retry_after_seconds is not None:
        return FailureDecision("wait", reason, exc.retry_after_seconds)
    if isinstance(exc, (RateLimited, ServerError)):
        return FailureDecision("retry", reason)
    if isinstance(exc, UploadURLExpired):
        return FailureDecision("refresh", reason)
    if isinstance(exc, UploadSlowDown):
        return FailureDecision("wait", reason, exc.retry_after_seconds)
    if isinstance(exc, UploadServerError):
        return FailureDecision("retry", reason)
    if isinstance(exc, (ProlificError, Refusal, BadInput)):
        return FailureDecision("stop", reason)
    return FailureDecision("stop", f"unexpected {type(exc).__name__} (a bug?): {reason}")
