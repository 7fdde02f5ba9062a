"""The flow parameters of a launch from Prefect's form (or the API), checked before anything else runs.

Prefect's form runs no validators: it checks the JSON schema's types only. So `annotation-batch` takes its
parameters unvalidated (`validate_parameters=False`) and :func:`launch_parameters` validates them here:
the job spec with every problem at once (`SpecError` text: field path, what is wrong, what to do), the
connection and poll settings with pydantic.

Paths in a form launch (`dataset.csv`, `output_dir`) have no spec file to be relative to: a relative one
resolves against :func:`form_base_dir`, ``TASKBUILDER_FORM_BASE_DIR`` on the worker, else the run's working
directory (for a deployment, the folder ``prefect deploy`` ran in: the project root). A job given as an
``AnnotationJob`` (the CLI, in-process callers) was resolved when it was loaded and is used as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taskbuilder.jobspec import AnnotationJob, SpecError
from taskbuilder.polling import PollSettings

from tasks.connection import ProlificConnection
from tasks.inputs import InputInvalid

FORM_BASE_ENV = "TASKBUILDER_FORM_BASE_DIR"
FORM_SOURCE = "the job parameter (launch form)"


def form_base_dir() -> Path:
    """The folder relative paths of a form launch resolve against (absolute): ``$TASKBUILDER_FORM_BASE_DIR``,
    else the current working directory."""
    return Path(os.environ.get(FORM_BASE_ENV) or os.getcwd()).expanduser().resolve()


def job_from_parameter(job: AnnotationJob | dict[str, Any]) -> AnnotationJob:
    """``job`` as an :class:`AnnotationJob`: a mapping (the form's, the API's) is validated with its relative
    paths resolved against :func:`form_base_dir`. Raises :class:`tasks.inputs.InputInvalid` listing every
    problem (nothing is created)."""
    if isinstance(job, AnnotationJob):
        return job
    try:
        return AnnotationJob.from_dict(job, source=FORM_SOURCE, base_dir=form_base_dir())
    except SpecError as error:
        raise InputInvalid(str(error)) from None


def launch_parameters(
    job: AnnotationJob | dict[str, Any],
    connection: ProlificConnection | dict[str, Any] | None,
    polling: PollSettings | dict[str, Any] | None,
    output_dir: str | None,
) -> tuple[AnnotationJob, ProlificConnection | None, PollSettings | None, str | None]:
    """The flow's parameters validated: ``(job, connection, polling, output_dir)``; a relative ``output_dir``
    override resolved against :func:`form_base_dir`. Raises ``InputInvalid`` (the job) or pydantic's
    ``ValidationError`` (connection, polling)."""
    checked_job = job_from_parameter(job)
    if isinstance(connection, dict):
        connection = ProlificConnection.model_validate(connection)
    if isinstance(polling, dict):
        polling = PollSettings.model_validate(polling)
    if output_dir and not output_dir.startswith("s3://") and not Path(output_dir).expanduser().is_absolute():
        output_dir = str(form_base_dir() / output_dir)
    return checked_job, connection, polling, output_dir


def job_form_values(job: AnnotationJob) -> dict[str, Any]:
    """``job`` as the launch form holds it (JSON): instructions as ``{instruction: {...}}`` and batch_items
    items as ``{item: {...}}`` (``taskbuilder.jobspec.form_schema.FormChoice``). Every field is written, empty
    ones as null: the form picks an item's type by the field names it shares with each type.
    Use it for pre-filled deployment parameters or a launch through the API; :func:`job_from_parameter`
    reads it back to the same job."""
    from taskbuilder.jobspec.instructions import INSTRUCTION_CHOICE
    from taskbuilder.jobspec.layout import BATCH_ITEM_CHOICE

    values = job.model_dump(mode="json")
    batch = values["batch"]
    if batch.get("instructions") is not None:
        batch["instructions"] = [INSTRUCTION_CHOICE.wrap(item) for item in batch["instructions"]]
    for page in batch.get("batch_items") or []:
        for row in page["rows"]:
            for column in row["columns"]:
                column["items"] = [BATCH_ITEM_CHOICE.wrap(item) for item in column["items"]]
    return values
