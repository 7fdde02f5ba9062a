"""V4 dataset records: the schema model, reading an uploaded CSV or JSONL file into records, and checking
each record against the schema (§1.1, §1.6 and §1.7 of ../shared/docs/prolific-api-current.md).

Pure functions: no state, no I/O beyond the stream they are given. A record is a dict of field name →
value; a stored row keeps only the schema's fields, each value as it was given (CSV cells are text;
JSONL values stay JSON scalars).
"""

from __future__ import annotations

import csv
import io
import json
from typing import IO, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FIELD_TYPES = ("text", "image_url", "audio_url", "video_url", "metadata", "task_group_id")
DISPLAYABLE_TYPES = ("text", "image_url", "audio_url", "video_url")
URL_TYPES = ("image_url", "audio_url", "video_url")
CONTENT_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson"}
MAX_ERRORS = 1000


class SchemaField(BaseModel):
    """One field of a schema: ``{type, label?}`` (§1.1)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    type: Literal[FIELD_TYPES]  # type: ignore[valid-type]
    label: str | None = None


class DatasetSchema(BaseModel):
    """A V4 dataset schema ``{strict, fields: {name: {type, label?}}}`` (§1.1): at least one field, at most
    one ``task_group_id`` field."""

    model_config = ConfigDict(strict=True, extra="forbid")
    strict: bool = False
    fields: dict[str, SchemaField] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _names_and_grouping(cls, fields: dict[str, SchemaField]) -> dict[str, SchemaField]:
        blank = [name for name in fields if not name.strip()]
        if blank:
            raise ValueError("a field name must not be blank")
        grouping = [name for name, field in fields.items() if field.type == "task_group_id"]
        if len(grouping) > 1:
            raise ValueError(f"at most one field may have type task_group_id; got {', '.join(grouping)}")
        return fields


def grouping_field(schema: dict | None) -> str | None:
    """The name of the schema's ``task_group_id`` field, or None."""
    for name, field in ((schema or {}).get("fields") or {}).items():
        if field["type"] == "task_group_id":
            return name
    return None


def field_types(schema: dict | None) -> dict[str, str]:
    """``{field name: type}`` of a stored schema (empty when there is none)."""
    return {name: field["type"] for name, field in ((schema or {}).get("fields") or {}).items()}


class FileUnreadable(Exception):
    """The file cannot be read at all (not UTF-8, no header, nothing in it); the message is the reason."""


def read_records(stream: IO[bytes], extension: str) -> Iterator[tuple[int, dict | None, str | None]]:
    """Yield ``(record_index, record, problem)`` for each record of a ``.csv`` or ``.jsonl`` file.

    Record indexes are zero-based: CSV data rows after the header, JSONL non-blank lines. ``record`` is None
    when the record cannot be read (``problem`` says why, e.g. a JSONL line that is not a JSON object).
    CSV cells are text exactly as written; a row with more cells than the header is a problem.
    Raises FileUnreadable for a file that is not UTF-8, empty, or a CSV without a header.
    """
    try:
        text = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileUnreadable(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise FileUnreadable("the file is empty")
    if extension == ".csv":
        yield from _csv_records(text)
    else:
        yield from _jsonl_records(text)


def _csv_records(text: str) -> Iterator[tuple[int, dict | None, str | None]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or any(not name for name in header):
        raise FileUnreadable("the CSV header is missing or has a column without a name")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise FileUnreadable(f"duplicate column names in the header: {', '.join(duplicates)}")
    for index, cells in enumerate(reader):
        if len(cells) > len(header):
            yield index, None, f"the row has {len(cells)} cells, the header {len(header)}"
            continue
        yield index, dict(zip(header, cells + [""] * (len(header) - len(cells)))), None


def _jsonl_records(text: str) -> Iterator[tuple[int, dict | None, str | None]]:
    index = 0
    for line in text.splitlines():
        if not line.strip():
            continue  # blank lines are skipped (§1.7)
        try:
            record = json.loads(line)
        except ValueError as exc:
            yield index, None, f"the line is not valid JSON: {exc}"
        else:
            if isinstance(record, dict):
                yield index, record, None
            else:
                yield index, None, "the line is not a JSON object"
        index += 1


def check_record(schema: dict, record: dict) -> tuple[dict | None, list[tuple[str, str]]]:
    """The stored row for ``record`` (schema fields only, in schema order), or None with its problems
    ``[(field, reason)]``.

    Rules (sandbox choices where §1 is silent, see ASSUMPTIONS.md): a ``strict`` schema rejects a record
    missing any schema field; otherwise a missing field is stored as ``""`` (text-like) or None. A value of a
    text or URL field must be a string; a URL field's value must start with ``http://`` or ``https://``; the
    ``task_group_id`` field must hold a non-empty value in every record. Fields not in the schema are
    dropped.
    """
    problems: list[tuple[str, str]] = []
    row: dict = {}
    for name, kind in field_types(schema).items():
        value = record.get(name)
        if name not in record or value is None:
            if schema.get("strict") or kind == "task_group_id":
                problems.append((name, "missing" if name not in record else "null"))
                continue
            value = "" if kind != "metadata" else None
        elif kind in DISPLAYABLE_TYPES and not isinstance(value, str):
            problems.append((name, f"must be a string, got {type(value).__name__}"))
            continue
        elif kind in URL_TYPES and value and not value.startswith(("http://", "https://")):
            problems.append((name, "must be an http(s) URL"))
            continue
        elif kind == "task_group_id" and (value == "" or isinstance(value, (dict, list))):
            problems.append((name, "must be a non-empty value"))
            continue
        row[name] = value
    return (None, problems) if problems else (row, [])


def cell_text(value: object) -> str:
    """A stored value as a table cell: strings as they are, None as ``""``, other JSON values as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def ingest(schema: dict, records: Iterator[tuple[int, dict | None, str | None]]) -> tuple[list[dict], int, list[dict]]:
    """Check every record: ``(accepted rows, rejected count, errors)``, errors as
    ``[{record_index, field, reason}]`` (at most ``MAX_ERRORS``; the count says how many were rejected)."""
    accepted: list[dict] = []
    rejected = 0
    errors: list[dict] = []
    for index, record, problem in records:
        row, problems = (None, [("", problem or "unreadable")]) if record is None else check_record(schema, record)
        if row is not None:
            accepted.append(row)
            continue
        rejected += 1
        for field, reason in problems:
            if len(errors) < MAX_ERRORS:
                errors.append({"record_index": index, "field": field, "reason": reason})
    return accepted, rejected, errors
