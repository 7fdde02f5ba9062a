"""The V4 dataset schema of a job, from its file's columns and the spec (``../shared/docs/prolific-api-current.md``
§1.1). The seed's instructions become one ``batch_items`` page in :mod:`taskbuilder.payloads`.

Field types: the task-group column (``META_TASK_GROUP_ID``) → ``task_group_id``; the id column and every
``META_`` column → ``metadata`` (exported, never shown: "equivalent to the META_ column prefix in V3",
§1.1); every other column is displayed → ``text``, or ``image_url`` / ``audio_url`` / ``video_url`` where
the spec says so for that column. Fields keep the file's column order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskbuilder.models import DISPLAYED_FIELD_TYPES

TASK_GROUP_COLUMN = "META_TASK_GROUP_ID"
METADATA_PREFIX = "META_"


def field_types(
    columns: Sequence[str], *, id_column: str | None = None, column_types: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``{column: schema field type}`` in file order (see the module docstring). ``column_types`` gives a
    displayed column's type (``text``, ``image_url``, ``audio_url``, ``video_url``). Raises ``ValueError``
    naming the column when ``column_types`` names a column that is not in the file, or a hidden column, or
    a type that is not a displayed one."""
    given = dict(column_types or {})
    types: dict[str, str] = {}
    for column in columns:
        if column == TASK_GROUP_COLUMN:
            types[column] = "task_group_id"
        elif column == id_column or column.startswith(METADATA_PREFIX):
            types[column] = "metadata"
        else:
            types[column] = given.get(column, "text")
    for column, kind in given.items():
        if column not in types:
            raise ValueError(f"dataset.column_types names {column!r}, which is not a column of the file")
        if kind not in DISPLAYED_FIELD_TYPES:
            raise ValueError(f"dataset.column_types.{column}: {kind!r} is not one of {', '.join(DISPLAYED_FIELD_TYPES)}")
        if types[column] != kind:
            raise ValueError(f"dataset.column_types.{column}: the column is hidden from participants (the id column "
                             f"or a {METADATA_PREFIX} column), so it cannot be {kind}")
    return types


def schema_body(types: Mapping[str, str], *, strict: bool = False) -> dict[str, Any]:
    """The ``schema`` of ``POST /api/v1/data-collection/datasets`` (§1.1): ``{"strict", "fields": {name: {"type"}}}``."""
    return {"strict": strict, "fields": {name: {"type": kind} for name, kind in types.items()}}


def displayed_columns(types: Mapping[str, str]) -> list[str]:
    """The columns participants see (``text`` and the media types), in file order."""
    return [name for name, kind in types.items() if kind in DISPLAYED_FIELD_TYPES]
