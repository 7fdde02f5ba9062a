"""Helpers around the job key, the stable name of one annotation job (``AnnotationJob.job_key``).

The flows carry the key in the batch name and the study ``internal_name`` (see :func:`tag_name`) so
the server can be asked for them again, and in Prefect cache keys, lock files and the job record
(see :func:`storage_slug`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

JOB_TAG_PATTERN = re.compile(r"\[job:(?P<key>[^\]]+)\]$")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (never whole into memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tag_name(name: str, job_key: str) -> str:
    """``"<name> [job:<job_key>]"``: the form a batch name / study internal_name takes on the server."""
    return f"{name} [job:{job_key}]"


def job_key_of(tagged_name: str | None) -> str | None:
    """Inverse of :func:`tag_name`: the job key in a server-side name, or ``None``."""
    if not tagged_name:
        return None
    match = JOB_TAG_PATTERN.search(tagged_name)
    return match.group("key") if match else None


def storage_slug(*parts: str) -> str:
    """A short, filesystem- and Prefect-key-safe slug for ``parts`` (lowercase, digits, dashes).

    Readable prefix from the first part plus a 12-hex hash of all parts, so distinct inputs never share
    a slug. Used for cache keys, lock files and Prefect variable names.
    """
    readable = re.sub(r"[^a-z0-9]+", "-", parts[0].lower()).strip("-")[:40] or "job"
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]
    return f"{readable}-{digest}"
