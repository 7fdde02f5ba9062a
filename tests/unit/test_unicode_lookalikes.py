"""Names and ids that look the same but are different Unicode characters (NFC vs NFD, C14's kind) get a
message that says so, with the code points visible."""

from __future__ import annotations

import unicodedata

import pytest

from taskbuilder.jobspec import AnnotationJob
from taskbuilder.validation import validate_csv

NFC, NFD = "caf\u00e9", "cafe\u0301"


def _job(tmp_path, id_column: str) -> AnnotationJob:
    return AnnotationJob.from_dict({
        "dataset": {"name": "d", "csv": str(tmp_path / "data.csv"), "id_column": id_column},
        "batch": {"name": "b", "instructions": [{"type": "free_text", "description": "Why?"}]},
        "study": {"name": "s", "reward": 100, "estimated_completion_time": 1},
    })


@pytest.mark.parametrize("in_spec, in_file", [(NFC, NFD), (NFD, NFC), ("Ångström", unicodedata.normalize("NFD", "ÅNGSTRÖM"))])
def test_a_missing_column_that_looks_alike_names_the_normalisation(tmp_path, in_spec, in_file):
    (tmp_path / "data.csv").write_text(f"{in_file}_id,text\n1,a\n", encoding="utf-8")
    report = validate_csv(tmp_path / "data.csv", _job(tmp_path, f"{in_spec}_id"))
    [problem] = [p for p in report.problems if p.code == "missing_column"]
    assert "NFD" in problem.hint and "\\u03" in problem.hint  # the form named, the combining mark visible
    if unicodedata.normalize("NFC", in_file) == in_spec or unicodedata.normalize("NFC", in_spec) == in_file:
        assert "different Unicode characters" in problem.hint


def test_two_column_names_that_look_alike_are_a_warning(tmp_path):
    (tmp_path / "data.csv").write_text(f"{NFC},{NFD},id\na,b,1\n", encoding="utf-8")
    report = validate_csv(tmp_path / "data.csv", None)
    [problem] = [p for p in report.problems if p.code == "column_names_look_alike"]
    assert problem.severity == "warning" and "NFD" in problem.message


def test_ids_equal_once_composed_are_a_warning_naming_both_records(tmp_path):
    (tmp_path / "data.csv").write_text(f"id,text\n{NFC},a\nplain,b\n{NFD},c\n", encoding="utf-8")
    report = validate_csv(tmp_path / "data.csv", _job(tmp_path, "id"))
    [problem] = [p for p in report.problems if p.code == "id_look_alike"]
    assert problem.severity == "warning" and problem.record == 3 and "record 1" in problem.message
    assert report.ok


def test_ascii_ids_skip_the_look_alike_check(tmp_path):
    (tmp_path / "data.csv").write_text("id,text\na,1\nb,2\n", encoding="utf-8")
    assert not [p for p in validate_csv(tmp_path / "data.csv", _job(tmp_path, "id")).problems if p.code == "id_look_alike"]
