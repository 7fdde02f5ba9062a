"""Where the API token and the API settings come from (brief: cross-team conventions).

The token is returned as ``pydantic.SecretStr`` and is never a field of :class:`ApiSettings`, so
settings can be logged, serialised and passed as Prefect parameters safely.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, SecretStr, field_validator

from taskbuilder.client import normalise_base_url
from taskbuilder.errors import MissingCredentials

TOKEN_ENV = "PROLIFIC_API_TOKEN"
BASE_URL_ENV = "PROLIFIC_API_URL"
WORKSPACE_ENV = "PROLIFIC_WORKSPACE_ID"
PROJECT_ENV = "PROLIFIC_PROJECT_ID"
DEFAULT_BASE_URL = "https://api.prolific.com"

__all__ = ["ApiSettings", "MissingCredentials", "resolve_api_token"]


def resolve_api_token(env: Mapping[str, str] = os.environ) -> SecretStr:
    """Return the Prolific API token from ``env[PROLIFIC_API_TOKEN]`` (surrounding whitespace removed).

    Raises :class:`~taskbuilder.errors.MissingCredentials` (naming the variable and the Prefect
    Secret-block alternative) when it is unset or blank. The message never contains a token.
    """
    token = (env.get(TOKEN_ENV) or "").strip()
    if not token:
        raise MissingCredentials(
            f"No Prolific API token: set the environment variable {TOKEN_ENV} (create a token in Prolific's "
            f"app settings; for the local sandbox use 'sandbox-token'), or name a Prefect Secret block holding "
            f"the token in the job spec."
        )
    return SecretStr(token)


class ApiSettings(BaseModel):
    """Which API to talk to and where to put things; holds no secret.

    Fields: ``base_url`` (API root without ``/api/v1``; env ``PROLIFIC_API_URL``, default
    ``https://api.prolific.com``; normalised by :func:`taskbuilder.client.normalise_base_url`),
    ``workspace_id`` (env ``PROLIFIC_WORKSPACE_ID``), ``project_id`` (env ``PROLIFIC_PROJECT_ID``).
    """

    base_url: str = Field(DEFAULT_BASE_URL, description="API root without /api/v1.")
    workspace_id: str | None = Field(None, description="Prolific workspace id (24 hex characters).")
    project_id: str | None = Field(None, description="Prolific project id; studies bill its workspace.")

    @field_validator("base_url")
    @classmethod
    def _normalise_base_url(cls, value: str) -> str:
        return normalise_base_url(value)

    @field_validator("workspace_id", "project_id", mode="before")
    @classmethod
    def _blank_id_is_none(cls, value: str | None) -> str | None:
        return (value.strip() or None) if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ApiSettings:
        """Build settings from ``env`` (blank variables count as unset). Raises ``pydantic.ValidationError``
        for a malformed ``PROLIFIC_API_URL``."""
        return cls(
            base_url=(env.get(BASE_URL_ENV) or "").strip() or DEFAULT_BASE_URL,
            workspace_id=env.get(WORKSPACE_ENV),
            project_id=env.get(PROJECT_ENV),
        )
