"""Identifiers and timestamps in Prolific's formats (API doc §1 "IDs", "Timestamps")."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import datetime, timezone


def object_id() -> str:
    """A new 24-hex id (studies, workspaces, projects, submissions, participants), e.g. ``6278acb09062db3b35bcbeb0``."""
    return f"{int(time.time()):08x}" + os.urandom(8).hex()


def uuid7() -> str:
    """A new time-ordered UUID (version 7 layout) for datasets, batches and instructions."""
    millis = int(time.time() * 1000)
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)          # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)          # RFC 4122 variant
    return str(uuid.UUID(int=value))


def iso(timestamp: float | None = None) -> str:
    """UNIX time (default now) as ISO-8601 UTC with milliseconds and ``Z``, e.g. ``2026-02-03T05:47:24.483Z``."""
    moment = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_id(what: str) -> str:
    """The fixed 24-hex id of a default resource (``"user"``, ``"workspace"``, ``"project"``): the same
    across resets, seed changes and restarts."""
    return hashlib.sha256(f"prolific-sandbox:{what}".encode()).hexdigest()[:24]
