"""The job's resources on the server, found by the tag in their names (:func:`taskbuilder.jobkey.tag_name`),
and the refusal when a resource under the job key was made from other work.

A batch name / study ``internal_name`` ends in ``[job:<key> work:<12 hex>]``. A look-up matches by the job
key (not the whole name); a match whose work tag differs from the one asked for means the job key (the spec's
``name``) is already used on Prolific for other work (another CSV, other dataset/batch/study fields):
:class:`JobChanged`, before anything is created or adopted. This is the same refusal the job record gives on
the Prefect server that ran the job first, for a host (or Prefect server) that has no record of it. A name in
the older form (``[job:<key>]``, no work tag) cannot tell and is adopted.

Endpoint: ``GET /api/v1/data-collection/batches?workspace_id=`` (§2.3 of
``../shared/docs/prolific-api-current.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.jobkey import tag_of

from tasks.connection import ProlificConnection, open_client
from tasks.inputs import InputInvalid
from tasks.retry import API_TASK_OPTIONS

R = TypeVar("R")


class JobChanged(InputInvalid):
    """A job key that already has resources was run with a different CSV or different work fields (the job
    record says so, or the work tag of a resource found under the key on the server)."""


TAGGED_FIELD = {"batch": "name", "study": "internal_name"}
"""The field of each kind of resource that carries the tag."""


def of_job(resources: Iterable[R], tagged_name: str, kind: str, base_url: str, *, refuse: bool = True) -> list[R]:
    """The ``resources`` of a ``kind`` (``"batch"``: their ``name``, ``"study"``: their ``internal_name``) that
    carry the job key of ``tagged_name``, in their order. One in the older form (no work tag) is one of them;
    one under the key with another work tag raises :class:`JobChanged` (``base_url``: the API, for the
    message), or is left out with ``refuse=False``. A ``tagged_name`` without a tag matches by the whole name."""
    field = TAGGED_FIELD[kind]
    wanted = tag_of(tagged_name)
    if wanted is None:
        return [resource for resource in resources if getattr(resource, field, None) == tagged_name]
    found = []
    for resource in resources:
        name = getattr(resource, field, None)
        tag = tag_of(name)
        if tag is None or tag.key != wanted.key:
            continue
        if tag.work is not None and wanted.work is not None and tag.work != wanted.work:
            if not refuse:
                continue
            raise JobChanged(other_work_message(wanted.key, kind, getattr(resource, "id", "?"), name, base_url))
        found.append(resource)
    return found


def other_work_message(job_key: str, kind: str, resource_id: str, name: str | None, base_url: str) -> str:
    """The refusal's text: which resource shows the job key used for other work, and what to do."""
    return (
        f"job {job_key!r}: the job `name:` is already used on Prolific ({base_url}) for other work: {kind} {resource_id} "
        f"({name!r}) was made from another CSV or other dataset/batch/study fields than this run's. Nothing was created "
        "or reused. Give the job a new `name:` (or leave `name` empty to key the job on its content), or restore the "
        "CSV and spec it was first run with. Only run-control fields (publish, max_budget, output_dir, ...) may change."
    )


@task(name="check-job-tags", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def refuse_other_work(connection: ProlificConnection, workspace_id: str, batch_name: str) -> None:
    """Raise :class:`JobChanged` when the workspace has a batch under the job key of ``batch_name`` (its tagged
    name) made from other work. The job's first batch exists before any of its studies, so its batch tells;
    run before anything of the job is priced, recorded or created (``GET …/batches?workspace_id=``, §2.3)."""
    with open_client(connection) as client:
        of_job(client.list_batches(workspace_id), batch_name, "batch", connection.base_url)
