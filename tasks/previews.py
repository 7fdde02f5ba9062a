"""Prefect task for the preview: a test study of the job's draft study (§5.9 of
``../shared/docs/prolific-api-current.md``), made once per draft and remembered in the job record.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.errors import Refusal
from taskbuilder.models import StudyStatus

from tasks.connection import ProlificConnection, open_client
from tasks.logs import run_logger
from tasks.records import load_job_record, update_job_record
from tasks.retry import API_TASK_OPTIONS


class PreviewRefused(Refusal):
    """The job's study is no longer a draft (published before): a test study is made from drafts only."""


@task(name="create-test-study", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def create_test_study(connection: ProlificConnection, job_key: str, study_id: str) -> dict[str, str | None]:
    """Return ``{"source_study_id", "study_id", "study_url"}`` of the test study of the draft ``study_id``.

    ``GET /api/v1/studies/{id}/`` first: the study must be UNPUBLISHED, else :class:`PreviewRefused`. The
    job record's ``test_study`` is used when it was made from this draft (a re-run makes no second test
    study); else ``POST /api/v1/studies/{id}/test-study`` ``{}`` (§5.9), remembered in the record. Nothing is paid.
    """
    remembered = (load_job_record(job_key, connection.base_url) or {}).get("test_study") or {}
    with open_client(connection) as client:
        status = str(client.get_study(study_id).status)
        if status != StudyStatus.UNPUBLISHED:
            raise PreviewRefused(
                f"study {study_id} is {status}: a test study is made from a draft only. The job was published "
                "before; preview a job before running it (or give it a new `name`)."
            )
        if remembered.get("source_study_id") == study_id and remembered.get("study_url"):
            run_logger().info("Test study %s of study %s made before: not making another", remembered.get("study_id"), study_id)
            return remembered
        test = client.create_test_study(study_id)
    made = {"source_study_id": study_id, "study_id": test.study_id, "study_url": test.study_url}
    update_job_record(job_key, connection.base_url, test_study=made)
    run_logger().info("Made test study %s of study %s", test.study_id, study_id)
    return made
