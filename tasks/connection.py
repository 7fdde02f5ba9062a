"""Where a task gets its Prolific client from: credentials → HTTP client.

A flow passes a :class:`ProlificConnection` (plain, serialisable settings: API URL, timeouts, the
*name* of a Prefect Secret block) and every task builds its own client from it. The token itself is
resolved inside the task, from the Secret block when one is named, else from the environment
(``PROLIFIC_API_TOKEN``), so it never appears in a flow-run parameter, a cached result or a log line.
"""

from __future__ import annotations

import logging
import os

from pydantic import BaseModel, Field, SecretStr

from taskbuilder.client import ClientTimeouts, ProlificClient
from taskbuilder.credentials import resolve_api_token


# httpx logs every request's full URL at INFO, which would put presigned-URL signatures in the run
# logs (prefect-notes §9): keep its logger at WARNING whatever the root level is.
logging.getLogger("httpx").setLevel(logging.WARNING)


class ProlificConnection(BaseModel):
    """Settings to reach one Prolific API (or the sandbox). Holds no secret.

    Fields:
        base_url: the API root without ``/api/v1`` (``https://api.prolific.com`` or the sandbox's URL).
        token_secret_block: name of a Prefect ``Secret`` block holding the token; ``None`` means the
            ``PROLIFIC_API_TOKEN`` environment variable of the process that runs the task.
        timeouts: per-kind httpx timeouts in seconds (see :class:`taskbuilder.client.ClientTimeouts`).
        rate_limit_name: name of a Prefect global concurrency limit (with a slot decay) that every API
            request takes a slot of, shared by all workers on the Prefect server
            (:mod:`tasks.ratelimit`); default env ``PROLIFIC_RATE_LIMIT_NAME``; ``None`` = no limit.
    """

    base_url: str = Field(
        default_factory=lambda: os.environ.get("PROLIFIC_API_URL", "https://api.prolific.com"),
        description="API root without /api/v1, e.g. https://api.prolific.com or the sandbox URL.",
    )
    token_secret_block: str | None = Field(
        default=None,
        description="Name of a Prefect Secret block holding the API token; else env PROLIFIC_API_TOKEN.",
    )
    timeouts: ClientTimeouts = Field(default_factory=ClientTimeouts, description="HTTP timeouts in seconds.")
    rate_limit_name: str | None = Field(
        default_factory=lambda: os.environ.get("PROLIFIC_RATE_LIMIT_NAME") or None,
        description="Prefect global concurrency limit (with slot decay) shared by all workers as the API rate "
        "limit, e.g. prolific-api; empty = env PROLIFIC_RATE_LIMIT_NAME, else no limit.",
    )


def load_token(connection: ProlificConnection) -> SecretStr:
    """Return the API token for ``connection``.

    Source: the Prefect Secret block named by ``connection.token_secret_block`` if set, else the
    environment (``PROLIFIC_API_TOKEN``). Raises ``taskbuilder.errors.MissingCredentials`` when the
    environment has no token, or Prefect's error when the block does not exist.
    """
    if connection.token_secret_block:
        from prefect.blocks.system import Secret

        return SecretStr(str(Secret.load(connection.token_secret_block).get()))
    return resolve_api_token()


def open_client(connection: ProlificConnection) -> ProlificClient:
    """Build a :class:`ProlificClient` for ``connection`` (use it as a context manager).

    When ``connection.rate_limit_name`` is set, every API request first takes a slot of that Prefect
    rate limit (:class:`tasks.ratelimit.RateLimitedTransport`).
    """
    transport = None
    if connection.rate_limit_name:
        from tasks.ratelimit import RateLimitedTransport

        transport = RateLimitedTransport(connection.rate_limit_name)
    return ProlificClient(connection.base_url, load_token(connection), timeouts=connection.timeouts, transport=transport)
