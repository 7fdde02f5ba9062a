"""The statuses of many studies at once, for the study monitor: the study list filtered by status.

``GET /api/v1/studies/?status=active`` (§5.2 of ../shared/docs/prolific-api-current.md: the list filtered by
lower-case status names; all pages, 200 a page) answers for every study of the account that is ACTIVE, the
status most monitored jobs are in, in one request instead of one ``GET /api/v1/studies/{id}/`` per job.
Studies not in that list changed status (or are in another one): the monitor reads those one by one.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.models import StudyStatus

from tasks.connection import ProlificConnection, open_client
from tasks.retry import API_TASK_OPTIONS

BULK_FROM_STUDIES = 3
"""From this many studies on one API the list is read; below it, one GET per study costs no more."""


@task(name="read-active-studies", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def read_active_studies(connection: ProlificConnection, study_ids: list[str]) -> dict[str, str]:
    """Study id → status for those of ``study_ids`` the ACTIVE study list holds (each study's own ``status``);
    ``{}`` without a request when there are fewer than :data:`BULK_FROM_STUDIES`. Raises the typed API errors
    of :mod:`taskbuilder.errors` after retries."""
    if len(study_ids) < BULK_FROM_STUDIES:
        return {}
    wanted = set(study_ids)
    with open_client(connection) as client:
        return {study.id: str(study.status) for study in client.list_studies_by_status(StudyStatus.ACTIVE) if study.id in wanted}
