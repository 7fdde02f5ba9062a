"""Removing secrets from URLs and free text before they are logged or put in an error.

A presigned S3 URL carries its signature (and credential scope) in the query string, so anything that
may be logged keeps only scheme, host, port and path. Note: ``httpx`` itself logs every request's full
URL at INFO on the logger ``httpx``; this project never configures that logger, and it must not be
enabled, or presigned URLs reach the log.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_SIGNATURE_PARAM = re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s<>\"']+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Return ``url`` with its query string, fragment and user-info removed.

    ``https://bucket.s3.amazonaws.com/a/b.csv?X-Amz-Signature=…`` → ``https://bucket.s3.amazonaws.com/a/b.csv``.
    A value that does not parse as a URL is replaced by ``"<unparseable URL>"`` rather than echoed.
    """
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<unparseable URL>"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_text(text: str) -> str:
    """Return ``text`` with every ``http(s)://`` URL in it passed through :func:`redact_url`, and any
    stray ``X-Amz-Signature=`` / ``X-Amz-Credential=`` / ``X-Amz-Security-Token=`` value replaced by
    ``<redacted>`` (for messages that quote a query string without its URL)."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), str(text))
    return _SIGNATURE_PARAM.sub(r"\1<redacted>", text)
