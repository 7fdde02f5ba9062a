"""JSONL datasets (a V4 dataset takes ``.jsonl`` uploads, ``../shared/docs/prolific-api-current.md`` §1.4):
one JSON object per line, checked like a CSV before anything is created.

Reading: every non-blank line must be one JSON object (else an error naming the line); the columns are the
keys in the order they first appear. Values of the displayed fields (every key but the id column, ``META_``
keys and the task-group key, as the schema types them: :mod:`taskbuilder.dataset_schema`) must be strings: a
number, boolean, null, list or object there is refused with its record and field, since nothing is retyped.
Hidden fields may hold strings, numbers, booleans or null.

Then the checks of a CSV (:func:`taskbuilder.validation.validate_csv`: ids, gold values, limits, columns,
cells…) run on a CSV rendering of the records, one data row per record in order, a hidden non-string value as
its JSON text; their line numbers are mapped back to the JSONL lines. The file uploaded is the JSONL as given.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any

from taskbuilder.csv_table import CsvReadError
from taskbuilder.dataset_schema import displayed_columns, field_types
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.validation import MAX_PROBLEMS_PER_CHECK, Problem, ValidationReport, validate_csv

SCALARS = (str, int, float, bool, type(None))


def is_jsonl(path: str | Path) -> bool:
    """True for a ``.jsonl`` file name."""
    return str(path).lower().endswith(".jsonl")


def read_records(path: str | Path) -> tuple[list[dict[str, Any]], list[int], list[Problem]]:
    """The file's objects, the line number of each (from 1), and the problems of lines that are not one JSON
    object. Raises :class:`CsvReadError` when the file cannot be read."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise CsvReadError(f"{path}: cannot read the file ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        return [], [], [Problem("undecodable_bytes", "error", f"the file is not UTF-8 (byte {error.start})",
                                "save it as UTF-8: JSONL is always UTF-8", line=None)]
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            problems.append(Problem("not_json", "error", f"this line is not JSON ({error.msg} at character "
                                    f"{error.colno})", "write one JSON object per line", record=len(records) + 1,
                                    line=number))
            continue
        if not isinstance(value, dict):
            problems.append(Problem("not_an_object", "error", f"this line is a JSON {type(value).__name__}, not an "
                                    "object", 'write one object per line: {"field": "value", ...}',
                                    record=len(records) + 1, line=number))
            continue
        records.append(value)
        lines.append(number)
    return records, lines, problems


def _value_problems(records: list[dict[str, Any]], lines: list[int], displayed: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for index, record in enumerate(records):
        for key, value in record.items():
            shown = key in displayed
            if (shown and isinstance(value, str)) or (not shown and isinstance(value, SCALARS)):
                continue
            kind = "null" if value is None else type(value).__name__
            what = "a displayed field must hold a string" if shown else "a hidden field holds text, a number or a boolean"
            problems.append(Problem("value_type", "error", f"the value is a JSON {kind}: {what}",
                                    f'write it as a JSON string ("{value}")' if shown else "write it as a string",
                                    record=index + 1, line=lines[index], column=key))
    if len(problems) > MAX_PROBLEMS_PER_CHECK:
        total = len(problems)
        problems = problems[:MAX_PROBLEMS_PER_CHECK] + [Problem(
            "value_type", "error", f"{total - MAX_PROBLEMS_PER_CHECK:,} more value(s) like this ({total:,} in all; "
            "first shown above)", "fix every one")]
    return problems


def _key_problems(records: list[dict[str, Any]], lines: list[int], columns: list[str]) -> list[Problem]:
    """A record without a field the others have (the JSONL form of a ragged CSV row): one warning per record (the
    field is empty there; a key in one record only, often a typo, shows as missing from all the others)."""
    problems: list[Problem] = []
    ragged = [(index, [c for c in columns if c not in record]) for index, record in enumerate(records)]
    ragged = [(index, missing) for index, missing in ragged if missing]
    for index, missing in ragged[:MAX_PROBLEMS_PER_CHECK]:
        having = sum(1 for record in records if missing[0] in record)
        problems.append(Problem(
            "missing_field", "warning", f"this record has no {', '.join(map(repr, missing))} "
            f"({having:,} other record(s) have {missing[0]!r}); it is empty here",
            'give every record the same fields (write "" for an empty value), or fix the key\'s spelling',
            record=index + 1, line=lines[index], column=missing[0]))
    if len(ragged) > MAX_PROBLEMS_PER_CHECK:
        problems.append(Problem("missing_field", "warning", f"{len(ragged) - MAX_PROBLEMS_PER_CHECK:,} more record(s) "
                                f"like this ({len(ragged):,} in all; first shown above)", "give every record the same fields"))
    return problems


def validate_jsonl(path: str | Path, job: AnnotationJob | None = None) -> ValidationReport:
    """Check a JSONL dataset (see the module docstring); return the report (``dialect`` ``"jsonl"``,
    ``path`` the JSONL file, problems with record numbers in file order and JSONL line numbers). Raises
    :class:`CsvReadError` only when the file cannot be read."""
    records, lines, problems = read_records(path)
    columns: list[str] = list(dict.fromkeys(key for record in records for key in record))
    dataset = job.dataset if job is not None else None
    try:
        types = field_types(columns, id_column=dataset.id_column if dataset else None,
                            column_types=dataset.column_types if dataset else None)
    except ValueError:
        types = field_types(columns, id_column=dataset.id_column if dataset else None)
    problems += _key_problems(records, lines, columns)
    problems += _value_problems(records, lines, set(displayed_columns(types)))
    with tempfile.TemporaryDirectory(prefix="taskbuilder-jsonl-") as folder:
        rendering = Path(folder) / "records.csv"
        with rendering.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(columns)
            for record in records:
                writer.writerow([_text(record.get(column)) for column in columns])
        report = validate_csv(rendering, job, delimiter_hint=",") if columns else None
    if report is None:
        problems.append(Problem("empty_file", "error", "the file holds no JSON objects",
                                "write one JSON object per line, one line per datapoint", line=1))
        return ValidationReport(path=str(path), ok=False, rows=0, columns=[], problems=problems, dialect="jsonl",
                                delimiter="\n", encoding="utf-8")
    for problem in report.problems:
        record = problem.record
        problem.line = lines[record - 1] if record is not None and 0 < record <= len(lines) else None
    report.problems = problems + report.problems
    report.path, report.dialect, report.delimiter = str(path), "jsonl", "\n"
    report.ok = not any(p.severity == "error" for p in report.problems)
    return report


def _text(value: Any) -> str:
    """A record's value as the CSV rendering's cell: a string as it is, another value as its JSON text, a missing
    key as an empty cell."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def column_values(path: str | Path, column: str) -> list[str]:
    """The values of one key over the records, as text (a missing key: empty)."""
    records, _, _ = read_records(path)
    return [_text(record.get(column)) for record in records]
