"""The preview: the job's draft (dataset, batch, study; never published) and a test study of it, whose URL
shows the task as a participant meets it (§5.9 of ``../shared/docs/prolific-api-current.md``).

The draft is the job's own, made by :func:`flows.annotation_batch.annotation_batch` with ``publish`` off
(the same job key, so a later ``taskbuilder run`` of the job reuses the dataset, batch and study it made,
and a second preview makes nothing new). Nothing is paid: no PUBLISH, and a test study goes to the
workspace's test participants only.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from taskbuilder.polling import PollSettings
from taskbuilder.jobspec import AnnotationJob

from flows.annotation_batch import annotation_batch
from tasks.connection import ProlificConnection
from tasks.previews import PreviewRefused, create_test_study

__all__ = ["PreviewRefused", "preview_job"]


@flow(name="preview-job", log_prints=False)
def preview_job(
    job: AnnotationJob,
    connection: ProlificConnection | None = None,
    polling: PollSettings | None = None,
    output_dir: str | None = None,
) -> dict[str, Any]:
    """Make (or find) the job's draft and its test study; return the draft's run summary (as
    :func:`annotation_batch` returns it, ``published`` false) with ``test_study``:
    ``{source_study_id, study_id, study_url}``.

    Raises what :func:`annotation_batch` raises before PUBLISH (bad input, ``CostRefused``, API errors) and
    :class:`PreviewRefused` when the job's study was published before.
    """
    connection = connection or ProlificConnection(token_secret_block=job.token_secret_block)
    draft = job.model_copy(update={"publish": False, "require_approval": False})
    summary = annotation_batch(job=draft, connection=connection, polling=polling, output_dir=output_dir)
    summary["test_study"] = create_test_study(connection, summary["job_key"], summary["study_id"])
    return summary
