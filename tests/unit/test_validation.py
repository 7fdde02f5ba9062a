"""CSV validation: the corpus (tests/validation_corpus/cases.yaml), the UCI sentences, upload preparation."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from taskbuilder.csvfile import load_table
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.upload_preparation import UploadPreparationError, prepare_upload
from taskbuilder.validation import MAX_PROBLEMS_PER_CHECK, validate_csv

CORPUS = Path(__file__).resolve().parents[1] / "validation_corpus"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sentiment-labelled-sentences"
UCI_FILES = ["amazon_cells_labelled.txt", "yelp_labelled.txt", "imdb_labelled.txt"]
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(),
                                  reason=f"the UCI sentences are not at {SHARED_DATA} (../shared beside the repo)")


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _job(case: dict) -> AnnotationJob | None:
    if case["job"] is None:
        return None
    return AnnotationJob.from_dict(_merge(CASES["base_job"], case["job"]), source="cases.yaml")


def _expected(case: dict) -> list[tuple]:
    rows = []
    for code, records, lines, column in case["problems"]:
        if isinstance(records, list):
            assert len(records) == len(lines), f"bad case {case['file']}"
            rows += [(code, r, l, column) for r, l in zip(records, lines)]
        else:
            rows.append((code, records, lines, column))
    return sorted(rows, key=repr)


def _case_id(case: dict) -> str:
    return f"{case['file']}{'' if case['job'] is None else '+job'}"


def test_corpus_is_large_enough():
    assert len(CASES["cases"]) >= 40
    for case in CASES["cases"]:
        assert (CORPUS / case["file"]).is_file(), case["file"]


@pytest.mark.parametrize("case", CASES["cases"], ids=_case_id)
def test_corpus_case(case):
    path = CORPUS / case["file"]
    report = validate_csv(path, _job(case), delimiter_hint=case.get("delimiter_hint"))
    got = sorted(((p.code, p.record, p.line, p.column) for p in report.problems), key=repr)
    assert got == _expected(case), report.format_text()
    assert report.ok is case["ok"]
    if "rows" in case:
        assert report.rows == case["rows"]
    for key in ("dialect", "encoding", "columns", "meta_columns", "task_group_column"):
        if key in case:
            assert getattr(report, key) == case[key], key
    for record, column, text in case.get("cells", []):
        table = load_table(path, encoding=_job(case).dataset.encoding if case["job"] else None,
                           delimiter_hint=report.delimiter)
        assert table.cells.iloc[record - 1, table.header.index(column)] == text
    for problem in report.problems:  # every problem says what to do, and the text report names the place
        assert problem.hint and problem.message
        assert problem.severity in ("error", "warning")


@pytest.mark.parametrize("case", [c for c in CASES["cases"] if c["ok"]], ids=_case_id)
def test_prepare_upload_keeps_every_cell(case, tmp_path):
    """Each valid corpus file becomes a UTF-8 comma CSV (or stays as is) that reads back cell for cell."""
    path = CORPUS / case["file"]
    job = _job(case)
    report = validate_csv(path, job, delimiter_hint=case.get("delimiter_hint"))
    upload = prepare_upload(path, report, job, tmp_path)
    source = load_table(path, encoding=job.dataset.encoding if job else None, delimiter_hint=report.delimiter)
    raw = upload.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows[0] == source.header
    assert rows[1:] == source.cells.iloc[:, : len(source.header)].values.tolist()
    if report.dialect == "csv" and report.delimiter == "," and report.encoding == "utf-8":
        assert upload == path  # uploaded byte for byte
    else:
        assert upload.parent == tmp_path and upload.suffix == ".csv"


def test_prepare_upload_refuses_a_file_with_errors(tmp_path):
    path = CORPUS / "too_many_fields.csv"
    with pytest.raises(UploadPreparationError, match="too_many_fields.csv: the file has 1 error"):
        prepare_upload(path, validate_csv(path), None, tmp_path)


def test_prepare_upload_never_overwrites_the_source(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("text\tlabel\na\t1\n", encoding="utf-8")
    (tmp_path / "data.csv").write_text("keep me", encoding="utf-8")
    upload = prepare_upload(path, validate_csv(path), None, tmp_path / "out")
    assert (tmp_path / "data.csv").read_text() == "keep me"
    assert upload.read_text(encoding="utf-8") == "text,label\na,1\n"


def test_report_dict_and_text_name_file_place_and_fix():
    path = CORPUS / "many_problems.csv"
    job = _job({"job": {"dataset": {"id_column": "id", "max_cell_chars": 20}}})
    report = validate_csv(path, job)
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) >= {"ok", "rows", "columns", "problems"}
    assert data["ok"] is False and data["rows"] == 5 and data["columns"] == ["id", "text"]
    assert set(data["problems"][0]) == {"code", "severity", "record", "line", "column", "message", "hint"}
    text = report.format_text()
    assert f"{path}:3: record 2, column \"id\": error [id_duplicate]" in text
    assert f"{path}:7: record 5: error [ragged_row] too many fields: 3 instead of 2" in text
    assert text.count("    fix: ") == len(report.problems)


def test_undecodable_bytes_name_line_and_byte_offset():
    report = validate_csv(CORPUS / "cp1252.csv")
    first = report.problems[0]
    assert first.code == "undecodable_bytes" and first.line == 2
    assert "byte offset 13" in first.message and "e9" in first.message
    assert "'é'" in first.hint and "dataset.encoding" in first.hint


def test_wrong_delimiter_says_what_the_file_is():
    problem = validate_csv(CORPUS / "semicolon.csv").problems[0]
    assert "semicolon-separated" in problem.message
    assert "comma-separated" in problem.hint and "dataset.delimiter: ';'" in problem.hint


def test_many_records_are_summarised():
    report = validate_csv(CORPUS / "id_empty_many.csv", _job({"job": {"dataset": {"id_column": "id"}}}))
    assert len(report.problems) == MAX_PROBLEMS_PER_CHECK + 1
    assert "25 in all" in report.problems[-1].message


def test_missing_file_raises_naming_it(tmp_path):
    from taskbuilder.csv_table import CsvReadError
    with pytest.raises(CsvReadError, match="nope.csv"):
        validate_csv(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------- the UCI sentences


def _tsv_records(path: Path) -> list[list[str]]:
    """The file as TSV is defined: lines split at \\n only, each split at its last tab."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == ""
    return [line.rsplit("\t", 1) for line in lines[:-1]]


@needs_shared
@pytest.mark.parametrize("name", UCI_FILES)
def test_uci_file_validates_as_tsv(name):
    report = validate_csv(SHARED_DATA / name)
    assert report.ok, report.format_text()
    assert (report.dialect, report.rows, report.columns) == ("tsv", 1000, ["reviews", "sentiment"])
    codes = {p.code for p in report.problems}
    assert codes <= {"c1_control_chars"}
    if name != "imdb_labelled.txt":
        assert not report.problems


@needs_shared
def test_imdb_mis_encoded_records_are_warnings_naming_them():
    path = SHARED_DATA / "imdb_labelled.txt"
    records = _tsv_records(path)[1:]
    expected = [i + 1 for i, (text, _) in enumerate(records) if any(0x80 <= ord(ch) <= 0x9F for ch in text)]
    report = validate_csv(path)
    warnings = [p for p in report.problems if p.code == "c1_control_chars"]
    assert [p.record for p in warnings] == expected and len(expected) == 8
    assert all(p.severity == "warning" and p.column == "reviews" and p.line == p.record + 1 for p in warnings)
    assert any("U+0085" in p.message for p in warnings) and any("U+0096" in p.message for p in warnings)


@needs_shared
@pytest.mark.parametrize("name", UCI_FILES)
def test_uci_file_converts_to_csv_byte_for_byte(name, tmp_path):
    path = SHARED_DATA / name
    upload = prepare_upload(path, validate_csv(path), None, tmp_path)
    assert upload.suffix == ".csv"
    expected = _tsv_records(path)
    written = list(csv.reader(io.StringIO(upload.read_bytes().decode("utf-8"), newline="")))
    assert written == expected  # stray quotes, trailing spaces, U+0085/U+0096 all intact
    frame = pd.read_csv(upload, dtype=str, keep_default_na=False, na_filter=False)
    assert len(frame) == 1000 and frame.columns.tolist() == ["reviews", "sentiment"]
    assert set(frame["sentiment"]) == {"0", "1"}


# ------------------------------------------------------------------- the record scan agrees with csv rules


def _random_csv(rng, ragged: bool) -> tuple[bytes, list[list[str]]]:
    """A CSV written by Python's csv module from random cells (quotes, commas, line breaks, CRLF, spaces)."""
    pieces = ["a", "b c", ",", '"', "\n", "\r\n", " ", "é", "\u0085", "x\"y", ""]
    width = int(rng.integers(1, 5))
    rows = [[f"col{i}" for i in range(width)]]
    for _ in range(int(rng.integers(1, 8))):
        n = width + (int(rng.integers(-1, 2)) if ragged else 0)
        rows.append(["".join(rng.choice(pieces, int(rng.integers(1, 4)))) or "v" for _ in range(max(n, 1))])
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=str(rng.choice(["\n", "\r\n"]))).writerows(rows)
    return buffer.getvalue().encode("utf-8"), rows


@pytest.mark.parametrize("ragged", [False, True])
def test_record_scan_matches_the_csv_module(tmp_path, ragged):
    import numpy as np
    rng = np.random.default_rng(20261129)
    for i in range(80):
        data, rows = _random_csv(rng, ragged)
        path = tmp_path / f"{i}.csv"
        path.write_bytes(data)
        table = load_table(path)
        assert table.header == rows[0], data
        assert table.field_counts.tolist() == [len(r) for r in rows], data
        cells = table.cells.values.tolist()
        assert [c[: len(r)] for c, r in zip(cells, rows[1:])] == rows[1:], data
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        starts, end = [], 0
        for _ in reader:
            starts.append(end + 1)
            end = reader.line_num
        assert table.start_lines.tolist() == starts, data
        report = validate_csv(path)
        assert ("ragged_row" in {p.code for p in report.problems}) == any(len(r) != len(rows[0]) for r in rows[1:])


def test_problem_code_table_lists_every_code_the_checks_emit():
    import re

    from taskbuilder import validation

    source = Path(validation.__file__).read_text(encoding="utf-8")
    emitted = set(re.findall(r'(?:add|per_record)\(\s*"([a-z0-9_]+)"', source))
    table = set(re.findall(r"^\| ([a-z0-9_]+) +\| (?:error|warning) ", validation.__doc__, flags=re.M))
    assert emitted == table
    corpus_codes = {problem[0] for case in CASES["cases"] for problem in case["problems"]}
    assert corpus_codes == table  # the corpus exercises every code


@pytest.mark.parametrize("data", [b"id\ttext\n1\ta\rb\n2\tc\n", b"id\ttext\n1\ta\r\n2\tc\r", b"id\ttext\r\n1\ta\r\r\n"])
def test_a_lone_cr_in_a_tsv_cell_survives_the_rewrite_for_upload(tmp_path, data):
    """TSV ends records at \\n only, so a lone \\r is cell text; the CSV rewrite must quote it (Python's csv
    writer quotes \\n but not \\r), or the upload would split the record. Found by a breaker pass."""
    path = tmp_path / "cr.tsv"
    path.write_bytes(data)
    report = validate_csv(path)
    assert report.ok, report.format_text()
    upload = prepare_upload(path, report, None, tmp_path / "out")
    assert load_table(upload).cells.values.tolist() == load_table(path).cells.values.tolist()
    assert any("\r" in cell for row in load_table(upload).cells.values.tolist() for cell in row)


def test_the_line_break_scan_reads_only_the_cells_bytes():
    import pyarrow as pa

    from taskbuilder.stray_quotes import _may_hold_line_break

    whole = pa.array(["a\nb", "plain", "more"])
    assert _may_hold_line_break(pa.chunked_array([whole]))
    assert not _may_hold_line_break(pa.chunked_array([whole.slice(1)]))  # the break is in the buffer, not in these cells
    assert _may_hold_line_break(pa.chunked_array([pa.array(["x", "y\n"], type=pa.large_string())]))
    assert not _may_hold_line_break(pa.chunked_array([pa.array(["x", None, ""])]))
    assert _may_hold_line_break(pa.chunked_array([pa.array(["x"], type=pa.string_view())]))  # another layout: may


def test_line_break_scan_finds_a_break_on_every_side_of_a_window_edge(monkeypatch):
    """The scan copies a few bytes at a time (here 4): a ``\\n`` first, last, on an edge or past the span's end."""
    import taskbuilder.stray_quotes as stray_quotes

    monkeypatch.setattr(stray_quotes, "SCAN_WINDOW_BYTES", 4)
    data = memoryview(b"abcdefghijklmnop")
    for at in range(16):
        text = bytearray(data)
        text[at] = 10
        assert stray_quotes._holds_newline(memoryview(bytes(text)), 0, 16), at
        assert stray_quotes._holds_newline(memoryview(bytes(text)), at, at + 1), at
        assert not stray_quotes._holds_newline(memoryview(bytes(text)), at + 1, 16), at
        assert not stray_quotes._holds_newline(memoryview(bytes(text)), 0, at), at
    assert not stray_quotes._holds_newline(data, 0, 16)
    assert not stray_quotes._holds_newline(memoryview(b"abcd\nfgh"), 5, 8)  # the break lies before the span
