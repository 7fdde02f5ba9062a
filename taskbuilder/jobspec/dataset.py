"""The dataset part of the job spec (`DatasetSpec`): the CSV/TSV file, its id, gold and attention-check
columns, encoding, delimiter and size limits (API doc §2, §2.6: META_ columns stay hidden from participants,
META_TASK_GROUP_ID sets the task groups).
"""

from __future__ import annotations

import codecs

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from taskbuilder.jobspec.base import NonBlank, SpecModel, fail, resolve_path
from taskbuilder.jobspec.form_schema import column_types_form_schema, column_types_from_rows

META_PREFIX = "META_"
TASK_GROUP_COLUMN = "META_TASK_GROUP_ID"
DEFAULT_GOLD_COLUMN = "META_gold"


class DatasetSpec(SpecModel):
    """The CSV to upload as the dataset (API doc §2, §2.6)."""

    name: NonBlank = Field(description="Dataset name on Prolific.")
    csv: NonBlank = Field(description="CSV, .tsv or .jsonl (one JSON object per line; V4 only) file: a path relative "
                                      "to the spec file, or s3://bucket/key.")
    id_column: str | None = Field(default=None, description="Column with a unique id per row (checked: present, non-empty, unique).")
    gold_column: str | None = Field(
        default=None,
        description="META_ column with the gold answer per row: an option value of the first choice instruction "
                    "(empty cell = no gold). Empty = META_gold when the CSV has that column.")
    attention_check_column: str | None = Field(
        default=None, description="META_ column marking attention-check rows (non-empty and not '0'/'false').")
    encoding: str | None = Field(
        default=None, description="Text encoding of the file when not UTF-8, e.g. cp1252: transcoded to UTF-8 for upload.")
    delimiter: str | None = Field(
        default=None, description="Field separator when detection is not wanted: ',' or ';' (CSV quoting) or 'tab' "
                                  "(TSV, no quoting). Empty = .tsv files and tab-separated .txt are TSV, others CSV.")
    version: Literal[3, 4] | None = Field(
        default=None,
        description="Dataset path: 4 (empty = 4: a dataset with a schema, import jobs, batch_items) or 3 (the seed's "
                    "path: no schema, the legacy instructions endpoint; only for workspaces without V4 datasets).")
    column_types: dict[str, Literal["text", "image_url", "audio_url", "video_url"]] | None = Field(
        default=None,
        json_schema_extra=column_types_form_schema,
        description="Schema type of displayed columns that are not text, e.g. `{photo: image_url}` (V4 only); the "
                    "form takes one row per column.")
    max_rows: int = Field(default=100_000, ge=1, description="Largest number of data rows accepted.")
    max_cell_chars: int = Field(default=10_000, ge=1, description="Longest cell accepted, in characters.")

    def gold_column_in(self, columns: list[str]) -> str | None:
        """The gold column for a CSV with `columns`: `gold_column` if set, else META_gold if present, else None."""
        if self.gold_column is not None:
            return self.gold_column
        return DEFAULT_GOLD_COLUMN if DEFAULT_GOLD_COLUMN in columns else None

    @property
    def csv_is_s3(self) -> bool:
        """True when `csv` is an `s3://bucket/key` URL."""
        return self.csv.startswith("s3://")

    @field_validator("csv", mode="after")
    @classmethod
    def _resolve_csv(cls, value: str, info: ValidationInfo) -> str:
        return resolve_path(value, info)

    @field_validator("column_types", mode="before")
    @classmethod
    def _column_type_rows(cls, value: object) -> object:
        return column_types_from_rows(value)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise fail([("", f"unknown encoding {value!r}", "use a Python codec name such as cp1252, latin-1 or utf-16")]) from None

    @field_validator("delimiter")
    @classmethod
    def _known_delimiter(cls, value: str | None) -> str | None:
        names = {",": ",", "comma": ",", ";": ";", "semicolon": ";", "\t": "\t", "tab": "\t", "\\t": "\t"}
        if value is None or value in names:
            return None if value is None else names[value]
        raise fail([("", f"unknown delimiter {value!r}", "use ',', ';' or 'tab'")])

    @field_validator("gold_column", "attention_check_column")
    @classmethod
    def _hidden(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.startswith(META_PREFIX):
            raise fail([("", f"{info.field_name} {value!r} would be shown to participants",
                          f"rename the column to start with {META_PREFIX} (e.g. {META_PREFIX}{value}) so it stays hidden")])
        return value
