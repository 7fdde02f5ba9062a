"""Control plane state: the request log and the fault rules, shared by the API ("api") and the
object store's front door ("s3"). Not part of Prolific's API (served under ``/_sandbox/``).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.ids import iso


class FaultRule(BaseModel):
    """One fault rule (``POST /_sandbox/faults``).

    Fires on the ``nth`` matching request counted from when the rules were set (1-based, once), or
    on each matching request with ``probability`` (seeded), or on every matching request when
    neither is given. ``path`` is a glob over the request path (query string excluded).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    target: Literal["api", "s3"]
    method: str = "*"
    path: str = "*"
    nth: int | None = Field(None, ge=1)
    probability: float | None = Field(None, ge=0.0, le=1.0)
    effect: Literal["status", "drop", "delay", "lost_response"]
    status: int | None = Field(None, ge=100, le=599)
    retry_after: int | None = Field(None, ge=0)
    delay_seconds: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> "FaultRule":
        if self.nth is not None and self.probability is not None:
            raise ValueError("give nth or probability, not both")
        if self.effect == "status" and self.status is None:
            raise ValueError("effect 'status' needs a status")
        if self.effect == "delay" and self.delay_seconds is None:
            raise ValueError("effect 'delay' needs delay_seconds")
        return self


class FaultRules(BaseModel):
    """Body of ``POST /_sandbox/faults``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    rules: list[FaultRule]


class ControlPlane:
    """Request log + fault matcher; also the object store's ``StoreListener``.

    ``on_object_put(key, size)`` is called after each successful PUT through the store's front door.
    """

    def __init__(self, seed: Callable[[], int], on_object_put: Callable[[str, int], None]) -> None:
        self._seed = seed
        self._on_object_put = on_object_put
        self._lock = threading.Lock()
        self._requests: list[dict] = []
        self._rules: list[FaultRule] = []
        self._counts: list[int] = []
        self._rng = random.Random(seed())

    # -- request log ---------------------------------------------------------------------------
    def record(self, target: str, method: str, path: str, status: int, body: object = None) -> None:
        """Log one request; ``status`` 0 means the connection was dropped without a response. ``body`` is
        the request's JSON body (None when it had none, or not JSON), logged with secrets redacted."""
        with self._lock:
            self._requests.append({"target": target, "method": method, "path": path,
                                   "status": status, "time": iso(), "body": redact(body)})

    def requests(self) -> list[dict]:
        """Every logged request, in order."""
        with self._lock:
            return list(self._requests)

    # -- faults ----------------------------------------------------------------------------------
    def set_rules(self, rules: list[FaultRule]) -> None:
        """Replace the fault rules; counting for ``nth`` and the probability draws restart."""
        with self._lock:
            self._rules = list(rules)
            self._counts = [0] * len(rules)
            self._rng = random.Random(self._seed())

    def rules(self) -> list[dict]:
        """The current rules as dicts."""
        with self._lock:
            return [rule.model_dump() for rule in self._rules]

    def match_fault(self, target: str, method: str, path: str) -> dict | None:
        """The first rule that fires for this request (as a dict), or None.

        A rule matches on target, method (``*`` = any) and path glob (tried with and without a
        trailing slash). Every matching rule counts the request, even when an earlier one fires.
        """
        fired = None
        with self._lock:
            for i, rule in enumerate(self._rules):
                if not _matches(rule, target, method, path):
                    continue
                self._counts[i] += 1
                if rule.nth is not None:
                    fires = self._counts[i] == rule.nth
                elif rule.probability is not None:
                    fires = self._rng.random() < rule.probability
                else:
                    fires = True
                if fires and fired is None:
                    fired = rule.model_dump()
        return fired

    # -- StoreListener -------------------------------------------------------------------------
    def object_put(self, key: str, size: int) -> None:
        """Called by the object store after a successful PUT of ``key`` (``size`` bytes)."""
        self._on_object_put(key, size)

    def reset(self) -> None:
        """Clear the request log and the fault rules."""
        with self._lock:
            self._requests.clear()
            self._rules = []
            self._counts = []


SECRET_WORDS = ("secret", "token", "signature", "password", "authorization")
REDACTED = "[redacted]"


def redact(value: object) -> object:
    """A copy of a JSON value where every object key naming a secret (``secret``, ``token``, ``signature``,
    ``password``, ``authorization``, in any case or as part of the key) has its value replaced by
    ``"[redacted]"``."""
    if isinstance(value, dict):
        return {k: REDACTED if any(w in str(k).lower() for w in SECRET_WORDS) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _matches(rule: FaultRule, target: str, method: str, path: str) -> bool:
    if rule.target != target:
        return False
    if rule.method != "*" and rule.method.upper() != method.upper():
        return False
    alternative = path[:-1] if path.endswith("/") else path + "/"
    return fnmatch.fnmatchcase(path, rule.path) or fnmatch.fnmatchcase(alternative, rule.path)
