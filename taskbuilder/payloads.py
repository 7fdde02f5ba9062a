"""The job spec turned into API bodies: every conversion from the spec's models to what Prolific receives.

- `instructions_payload(batch)`: the legacy instructions body (API doc §4).
- `batch_items_payload(batch)`: the `batch_items` array (API doc §12), as the spec wrote it.
- `instructions_as_batch_items(batch, visible_columns)`: legacy instructions as one `batch_items` task page.
- `study_payload(study, batch_id, internal_name)`: the study body (seed "Publishing a batch"; API doc §6.1).
- `instruction_payloads(job)`: the job's instructions as payload dicts in the order participants see them
  (either layout), what the report parser and the aggregation read answers against.

Text reaches Prolific as written: models are dumped in JSON mode, nothing is re-typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskbuilder.jobspec.layout import BatchSpec
from taskbuilder.jobspec.study import StudySpec

if TYPE_CHECKING:
    from taskbuilder.jobspec import AnnotationJob

INSTRUCTION_TYPES = {"multiple_choice", "multiple_choice_with_free_text", "free_text", "free_text_with_unit", "file_upload"}
"""The ``batch_items`` item types that are instructions (answered by participants), not displayed content."""


def instructions_payload(batch: BatchSpec) -> list[dict]:
    """Body items for `POST /batches/{id}/instructions` (legacy, API doc §4): sorted by `order`.

    Non-choice instructions get `answer_limit: 1`, as Prolific's example clients send it on every
    instruction (API doc §4.3 [I]). Raises ValueError when the spec uses batch_items.
    """
    if batch.instructions is None:
        raise ValueError("this job uses batch_items; use batch_items_payload()")
    payload = []
    for ins in batch.ordered_instructions():
        item = ins.model_dump(mode="json", exclude_none=True)
        item.setdefault("answer_limit", 1)
        payload.append(item)
    return payload


def batch_items_payload(batch: BatchSpec) -> list[dict] | None:
    """The `batch_items` array for `POST/PATCH /batches` (API doc §12), or None for a legacy-instructions job."""
    if batch.batch_items is None:
        return None
    return [page.model_dump(mode="json", exclude_none=True) for page in batch.batch_items]


def instructions_as_batch_items(batch: BatchSpec, visible_columns: list[str]) -> list[dict]:
    """The legacy instructions as ONE `batch_items` task page (API doc §12): each visible dataset column as a
    `dataset_field` reference first, then the instructions in order (without `order`). For when the legacy
    endpoint is retired. `visible_columns`: the CSV columns participants see (not META_), in CSV order.
    Raises ValueError when the spec already uses batch_items.
    """
    items: list[dict] = [{"type": "dataset_field", "field": column} for column in visible_columns]
    if batch.instructions is None:
        raise ValueError("this job already uses batch_items; use batch_items_payload()")
    items += [ins.model_dump(mode="json", exclude_none=True, exclude={"order"}) for ins in batch.ordered_instructions()]
    return [{"rows": [{"columns": [{"items": items}]}]}]


def study_payload(study: StudySpec, batch_id: str, internal_name: str) -> dict:
    """Body for `POST /api/v1/studies/` (seed "Publishing a batch"; API doc §6.1): the study fields, the
    passthrough extras, `data_collection_method: AI_TASK_BUILDER_BATCH`, `data_collection_id: batch_id`,
    `data_collection_metadata: {annotators_per_task}`. `internal_name` replaces the spec's (the flow adds the
    job key). reward in cents, times in minutes.
    """
    payload = study.model_dump(mode="json", exclude_none=True, exclude={"annotators_per_task"})
    payload["internal_name"] = internal_name
    payload["data_collection_method"] = "AI_TASK_BUILDER_BATCH"
    payload["data_collection_id"] = batch_id
    payload["data_collection_metadata"] = {"annotators_per_task": study.annotators_per_task}
    return payload


def instruction_payloads(job: AnnotationJob) -> list[dict[str, Any]]:
    """The job's instructions as API payload dicts (API doc §4.3 shape: ``type``, ``description``,
    ``options[{label, value}]``, ``answer_limit``), in the order participants see them: the legacy
    instructions (:func:`instructions_payload`) or the instruction items of the spec's ``batch_items`` pages,
    page by page, row by row, column by column (§12)."""
    if job.batch.instructions is not None:
        return instructions_payload(job.batch)
    return [
        item
        for page in batch_items_payload(job.batch) or []
        for row in page.get("rows", [])
        for column in row.get("columns", [])
        for item in column.get("items", [])
        if item.get("type") in INSTRUCTION_TYPES
    ]
