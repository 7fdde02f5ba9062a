"""The Prolific API client: one method per endpoint, one private request path (build → send → map errors).

Layering follows httpx and prefect-dbt's ``DbtCloudAdministrativeClient``: a thin class around one
``httpx.Client`` (:mod:`.base`, the request path), endpoint methods grouped per resource (:mod:`.accounts`,
:mod:`.datasets`, :mod:`.batches`, :mod:`.studies`, :mod:`.bonuses`, :mod:`.hooks`) that build their bodies through the
request models and return the resource models of :mod:`taskbuilder.models`, and typed errors
(:mod:`taskbuilder.errors`). Settings shared with the uploads are in :mod:`.config`.

Endpoints: ``../shared/docs/prolific-api-current.md`` (the § in each method); paths keep the doc's
trailing slashes. Logger ``taskbuilder.client`` (see :mod:`.base`).
"""

from __future__ import annotations

from taskbuilder.client.accounts import AccountEndpoints
from taskbuilder.client.batches import BatchEndpoints
from taskbuilder.client.bonuses import BonusEndpoints
from taskbuilder.client.config import PAGE_SIZE, ClientTimeouts, normalise_base_url, shared_ssl_context
from taskbuilder.client.datasets import DatasetEndpoints
from taskbuilder.client.hooks import HookEndpoints
from taskbuilder.client.participant_groups import ParticipantGroupEndpoints
from taskbuilder.client.studies import StudyEndpoints

__all__ = ["PAGE_SIZE", "ClientTimeouts", "ProlificClient", "normalise_base_url", "shared_ssl_context"]


class ProlificClient(AccountEndpoints, DatasetEndpoints, BatchEndpoints, StudyEndpoints, BonusEndpoints, HookEndpoints,
                      ParticipantGroupEndpoints):
    """Client of Prolific's REST API (or the local sandbox); see :class:`~taskbuilder.client.base.ClientBase`
    for the constructor (``base_url``, ``token``, ``timeouts``, ``transport``) and the errors every
    method raises. Use as a context manager, or call :meth:`close`."""
