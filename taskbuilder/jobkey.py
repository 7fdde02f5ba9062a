"""Helpers around the job key, the stable name of one annotation job (``AnnotationJob.job_key``).

The flows carry the key in the batch name and the study ``internal_name`` (see :func:`tag_name`) so
the server can be asked for them again, and in Prefect cache keys, lock files and the job record
(see :func:`storage_slug`). The tag also carries the first 12 hex of the job's work fingerprint
(``AnnotationJob.work_fingerprint``), so a host that has no record of the job can tell that resources
under its key were made from other work (:func:`other_work_tag`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import NamedTuple

JOB_TAG_PATTERN = re.compile(r"\[job:(?P<key>[^\]]+?)(?: work:(?P<work>[0-9a-f]{12}))?\]$")
"""``[job:<key>]`` (the older form) or ``[job:<key> work:<12 hex>]`` at the end of a server-side name."""
WORK_TAG_HEX = 12
"""Hex digits of the work fingerprint carried in the tag (48 bits: a different work matches by chance
once in 2.8e14)."""


class JobTag(NamedTuple):
    """The tag of a server-side name: the job key and the work tag (``None`` in the older form)."""

    key: str
    work: str | None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (never whole into memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def work_tag(fingerprint: str) -> str:
    """The work tag of a work fingerprint (hex SHA-256, ``AnnotationJob.work_fingerprint``): its first 12 hex."""
    return fingerprint[:WORK_TAG_HEX].lower()


def tag_name(name: str, job_key: str, fingerprint: str | None = None) -> str:
    """``"<name> [job:<job_key> work:<12 hex>]"`` (``"<name> [job:<job_key>]"`` without ``fingerprint``): the
    form a batch name / study internal_name takes on the server. Every round of a job carries the job's
    fingerprint, under the round's key."""
    work = f" work:{work_tag(fingerprint)}" if fingerprint else ""
    return f"{name} [job:{job_key}{work}]"


def tag_of(tagged_name: str | None) -> JobTag | None:
    """Inverse of :func:`tag_name`: the :class:`JobTag` at the end of a server-side name (either form), or ``None``."""
    match = JOB_TAG_PATTERN.search(tagged_name) if tagged_name else None
    return JobTag(match.group("key"), match.group("work")) if match else None


def job_key_of(tagged_name: str | None) -> str | None:
    """The job key in a server-side name (either form of :func:`tag_name`), or ``None``."""
    tag = tag_of(tagged_name)
    return tag.key if tag else None


def other_work_tag(tagged_names: list[str | None], job_key: str, fingerprint: str) -> str | None:
    """The first of ``tagged_names`` that carries ``job_key`` with another work tag than ``fingerprint``'s, or
    ``None``. A name in the older form (no work tag) cannot tell and is never returned."""
    mine = work_tag(fingerprint)
    for name in tagged_names:
        tag = tag_of(name)
        if tag and tag.key == job_key and tag.work is not None and tag.work != mine:
            return name
    return None


def storage_slug(*parts: str) -> str:
    """A short, filesystem- and Prefect-key-safe slug for ``parts`` (lowercase, digits, dashes).

    Readable prefix from the first part plus a 12-hex hash of all parts, so distinct inputs never share
    a slug. Used for cache keys, lock files and Prefect variable names.
    """
    readable = re.sub(r"[^a-z0-9]+", "-", parts[0].lower()).strip("-")[:40] or "job"
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]
    return f"{readable}-{digest}"
