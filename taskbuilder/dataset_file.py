"""The one entry to check a dataset file, whatever its format: JSONL (`taskbuilder.jsonl`) or CSV/TSV
(`taskbuilder.validation`). `taskbuilder validate`, `run`'s first answer and the flow's validation step all
call it, so the three check a file the same way."""

from __future__ import annotations

from pathlib import Path

from taskbuilder.jobspec import AnnotationJob
from taskbuilder.jsonl import is_jsonl, validate_jsonl
from taskbuilder.validation import ValidationReport, validate_csv


def validate_dataset_file(
    path: str | Path, job: AnnotationJob | None = None, *, delimiter_hint: str | None = None
) -> ValidationReport:
    """Every problem of the dataset file at `path` (with the job spec's checks when `job` is given).

    A `.jsonl` file is read as JSON lines (`delimiter_hint` does not apply), anything else as CSV/TSV.
    Raises `taskbuilder.csv_table.CsvReadError` when the file cannot be read at all."""
    if is_jsonl(path):
        return validate_jsonl(path, job)
    return validate_csv(path, job, delimiter_hint=delimiter_hint)
