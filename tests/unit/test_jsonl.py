"""Unit tests of JSONL datasets (taskbuilder.jsonl): one object per line, displayed values strings only,
then the CSV checks, with JSONL line numbers."""

from __future__ import annotations

import json
from pathlib import Path

from taskbuilder.jobspec import AnnotationJob
from taskbuilder.jsonl import column_values, validate_jsonl


def job(tmp_path: Path, data: str) -> AnnotationJob:
    (tmp_path / "data.jsonl").write_text(data)
    return AnnotationJob.from_dict({
        "dataset": {"name": "d", "csv": "data.jsonl", "id_column": "id"},
        "batch": {"name": "b", "task_details": {"task_name": "T"}, "instructions": [
            {"type": "multiple_choice", "description": "Q?", "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]}]},
        "study": {"name": "s", "reward": 100, "estimated_completion_time": 1},
    }, base_dir=tmp_path)


def lines(*records) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def test_a_clean_file_passes_with_its_keys_as_columns(tmp_path):
    spec = job(tmp_path, lines({"id": "1", "text": "fine", "META_gold": "a"}, {"id": 2, "text": "a \"quote\"\nline"}) + "\n")
    report = validate_jsonl(tmp_path / "data.jsonl", spec)
    assert report.ok, report.format_text()
    assert (report.rows, report.columns, report.dialect) == (2, ["id", "text", "META_gold"], "jsonl")
    assert column_values(tmp_path / "data.jsonl", "id") == ["1", "2"]


def test_a_number_in_a_displayed_field_is_refused_with_record_and_field(tmp_path):
    spec = job(tmp_path, lines({"id": "1", "text": "ok"}, {"id": "2", "text": 5}, {"id": "3", "text": True}))
    report = validate_jsonl(tmp_path / "data.jsonl", spec)
    assert not report.ok
    found = [(p.record, p.line, p.column) for p in report.errors if p.code == "value_type"]
    assert found == [(2, 2, "text"), (3, 3, "text")]


def test_bad_lines_and_csv_checks_name_the_jsonl_line(tmp_path):
    spec = job(tmp_path, '{"id": "1", "text": "a"}\n\n[1, 2]\n{"id": "1", "text": "b"}\nnot json\n')
    report = validate_jsonl(tmp_path / "data.jsonl", spec)
    codes = {(p.code, p.line) for p in report.errors}
    assert ("not_an_object", 3) in codes and ("not_json", 5) in codes
    duplicate = [p for p in report.errors if p.column == "id" and p.record == 2]
    assert duplicate and duplicate[0].line == 4  # the second "1" is on line 4 of the file


def test_an_empty_file_is_an_error(tmp_path):
    report = validate_jsonl(tmp_path / "data.jsonl", job(tmp_path, "\n"))
    assert not report.ok and report.errors[0].code == "empty_file"


def test_a_record_without_a_field_the_others_have_is_named(tmp_path):
    """A key missing from one record, or found in one record only (a typo), is a warning naming record and field."""
    spec = job(tmp_path, lines({"id": "1", "text": "a"}, {"id": "2"}, {"id": "3", "text": "c", "txet": "typo"}))
    report = validate_jsonl(tmp_path / "data.jsonl", spec)
    found = sorted((p.record, p.line, p.column) for p in report.warnings if p.code == "missing_field")
    assert found == [(1, 1, "txet"), (2, 2, "text")]  # record 2 lacks both: named by its first missing field
    assert report.ok


def test_more_type_errors_than_shown_are_counted_once(tmp_path):
    spec = job(tmp_path, lines(*({"id": str(i), "text": i} for i in range(30))))
    report = validate_jsonl(tmp_path / "data.jsonl", spec)
    typed = [p for p in report.errors if p.code == "value_type"]
    assert len(typed) == 21 and "10 more value(s) like this (30 in all" in typed[-1].message
