"""Removing secrets from URLs and free text before they are logged or put in an error.

A presigned S3 URL carries its signature (and credential scope) in the query string, so anything that
may be logged keeps only scheme, host, port and path. ``httpx`` itself logs every request's full URL
at INFO on the logger ``httpx`` (and ``httpcore`` logs at DEBUG): importing this module puts a
:class:`RedactingFilter` on those loggers, so whatever level or handlers a program gives them
(``logging.basicConfig(level=INFO)``, ``dictConfig``, Prefect's extra loggers), their records reach
the handlers with URLs redacted. Every module of the core that makes HTTP requests imports this one.
"""

from __future__ import annotations

import logging
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


HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")
"""Loggers of the HTTP stack that may print a request's URL. A logger's filter applies only to records
logged on that very logger (not its children), so httpcore's modules are named one by one."""


class RedactingFilter(logging.Filter):
    """A :class:`logging.Filter` that keeps every record but rewrites its message through
    :func:`redact_text` when the message holds a URL (query strings, signatures and credentials gone)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        if "://" in message or "X-Amz-" in message:
            record.msg, record.args = redact_text(message), None
        return True


def install_log_redaction() -> None:
    """Put one :class:`RedactingFilter` on each of :data:`HTTP_LOGGERS` (idempotent; called at import)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())


install_log_redaction()
