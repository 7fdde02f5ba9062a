"""The pyarrow fast path of `load_table` gives what the slow path gives: the same table and the same problems.

Every corpus file, a set of tricky generated files (each asserting which path reads it, so the comparison is
never slow against slow), and random files built from the characters that matter (quotes, delimiters, CR,
LF, NUL, C1 controls) are read both ways (`load_table(..., fast=False)` / `csvfile.FAST_PATH = False`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from taskbuilder import csv_fast_path, csvfile
from taskbuilder.csvfile import load_table
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.validation import validate_csv

CORPUS = Path(__file__).resolve().parents[1] / "validation_corpus"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
TABLE_FIELDS = ("header", "dialect", "delimiter", "encoding", "bom", "header_line", "undecodable",
                "undecodable_total", "unclosed_quote_record", "has_c1_controls", "nul_count", "first_nul_line")


def _job(case: dict) -> AnnotationJob | None:
    from tests.unit.test_validation import _job as job_of_case
    return job_of_case(case)


def assert_same_table(path: Path, **options) -> str:
    """Read `path` both ways, assert every part of the two tables is equal, return the path the fast read took."""
    fast = load_table(path, **options)
    slow = load_table(path, fast=False, **options)
    assert slow.read_path == "slow"
    for name in TABLE_FIELDS:
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.rows == slow.rows
    assert fast.field_counts.tolist() == slow.field_counts.tolist()
    assert fast.start_lines.tolist() == slow.start_lines.tolist()
    assert fast.blank.tolist() == slow.blank.tolist()
    assert fast.cells.shape == slow.cells.shape
    assert fast.cells.columns.tolist() == slow.cells.columns.tolist()
    assert list(fast.cells.dtypes) == list(slow.cells.dtypes)
    assert fast.cells.values.tolist() == slow.cells.values.tolist()
    for position in range(fast.width):
        assert fast.column(position).to_pylist() == slow.column(position).to_pylist()
    return fast.read_path


def assert_same_report(path: Path, monkeypatch, job=None, **options) -> None:
    fast = validate_csv(path, job, **options).to_dict()
    with monkeypatch.context() as patch:
        patch.setattr(csvfile, "FAST_PATH", False)
        slow = validate_csv(path, job, **options).to_dict()
    assert fast == slow


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: f"{c['file']}{'' if c['job'] is None else '+job'}")
def test_corpus_file_reads_the_same_both_ways(case, monkeypatch):
    path = CORPUS / case["file"]
    job = _job(case)
    encoding = job.dataset.encoding if job is not None else None
    hint = case.get("delimiter_hint") or (job.dataset.delimiter if job is not None else None)
    assert_same_table(path, encoding=encoding, delimiter_hint=hint)
    assert_same_report(path, monkeypatch, job, delimiter_hint=case.get("delimiter_hint"))


def test_most_corpus_files_take_the_fast_path():
    """The fast path is the common case: the well-formed corpus files (all but the ones with errors it hands
    over, and the one-line header-only file pyarrow refuses) are read by it."""
    paths = sorted({CORPUS / case["file"] for case in CASES["cases"]})
    fast = [p.name for p in paths if load_table(p).read_path == "fast"]
    assert len(fast) >= 35
    assert {"ok_multiline_quoted.csv", "ok_crlf.csv", "bom.csv", "ok_quotes.tsv", "tsv_crlf.tsv", "uci_like.txt",
            "stray_quote_midfield.csv", "c1_controls.csv", "multiline_then_empty_id.csv"} <= set(fast)
    slow = {p.name for p in paths} - set(fast)
    assert {"unclosed_quote.csv", "nul_in_cell.csv", "cp1252.csv", "blank_line_middle.csv",
            "too_few_fields.csv"} <= slow


@pytest.mark.parametrize("name", ["amazon_cells_labelled.txt", "yelp_labelled.txt", "imdb_labelled.txt"])
def test_uci_file_reads_the_same_both_ways(name, monkeypatch):
    """The UCI sentences (TSV with stray quotes, trailing spaces, U+0085/U+0096) take the fast path, unchanged."""
    from tests.unit.test_validation import SHARED_DATA
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"the UCI sentences are not at {SHARED_DATA} (../shared beside the repo)")
    assert assert_same_table(path) == "fast"
    assert_same_report(path, monkeypatch)


# ------------------------------------------------------------------------------------------ tricky files

JOB = AnnotationJob.from_dict({
    "dataset": {"name": "t", "csv": "unused.csv", "id_column": "id", "attention_check_column": "META_attention",
                "max_cell_chars": 12},
    "batch": {"name": "t", "instructions": [{"type": "multiple_choice", "description": "Sentiment?", "options": [
        {"label": "Positive", "value": "positive"}, {"label": "Negative", "value": "negative"}]}]},
    "study": {"name": "t", "reward": 200, "estimated_completion_time": 10},
}, source="test")

# name -> (bytes, the path the fast read must take)
TRICKY = {
    "quoted_newlines.csv": (b'id,text\n1,"first\nsecond"\n2,"a\n\nb\n"\n3,plain\n', "fast"),
    "crlf_everywhere.csv": (b'id,text\r\n1,"two\r\nlines"\r\n2,x\r\n', "fast"),
    "doubled_quotes.csv": (b'id,text\n1,"she said ""hi"", then left"\n2,""""\n3,"a,""b"""\n', "fast"),
    "empty_cells.csv": (b'id,text,label\n1,,x\n2,"",\n,y,\n', "fast"),
    "no_final_newline.csv": (b'id,text\n1,a\n2,"b\nc"', "fast"),
    "unicode.csv": ("id,text\n1,café naïve\n2,日本語 😀\n3,\"Zürich, CH\"\n4,line\u2028sep\n5,nel\u0085x\n"
                    .encode("utf-8"), "fast"),
    "single_column.csv": (b'text\nhello\n"with, comma"\n"with\nnewline"\n', "fast"),
    "bom.csv": (b'\xef\xbb\xbfid,text\n1,a\n2,b\n', "fast"),
    "tabs.tsv": (b'id\ttext\r\n1\t"quoted at start\r\n2\tends with quote"\r\n3\ta "b" c  \n', "fast"),
    "quote_then_text.csv": (b'id,text\n1,"abc"def\n2,"x" y\n', "fast"),
    "stray_quotes.csv": (b'id,text\n1,5" screen\n2,a 6" and 7" model\n', "fast"),
    "quoted_header.csv": (b'"id","text, long","multi\nline"\n1,a,b\n2,c,d\n', "fast"),
    "spaces.csv": (b'id,text\n1,  padded  \n2, \n', "fast"),
    "c1_and_lengths.csv": ("id,text,META_attention,META_gold\n1,ok,1,\n2,too long for the limit,0,positive\n"
                           "3,dash\u0096here, TRUE ,negative\n1,dup,false,Positive\n".encode("utf-8"), "fast"),
    "cr_only.csv": (b'id,text\r1,a\r2,b\r', "fast"),
    "lone_cr_mid.csv": (b'id,text\n1,a\r2,b\n3,c\n', "fast"),
    # handed to the slow path
    "empty_quoted_at_eof.csv": (b'id,text\n1,""', "slow"),
    "unclosed_last.csv": (b'id,text\n1,a\n2,"never closed\n3,x\n', "slow"),
    "unclosed_no_newline.csv": (b'id,text\n1,"open', "slow"),
    "unclosed_single_column.csv": (b'text\na\n"open\nb\n', "slow"),
    "blank_line.csv": (b'id,text\n1,a\n\n2,b\n', "slow"),
    "blank_line_single_column.csv": (b'text\na\n\nb\n', "slow"),
    "all_empty_record.csv": (b'id,text\n1,a\n,\n', "slow"),
    "ragged.csv": (b'id,text\n1,a,extra\n2\n', "slow"),
    "lone_cr_in_quotes.csv": (b'id,text\n1,"a\rb"\n', "slow"),
    "lone_cr.tsv": (b'id\ttext\n1\ta\rb\n', "slow"),
    "nul.csv": (b'id,text\n1,a\x00b\n', "slow"),
    "bad_utf8.csv": (b'id,text\n1,caf\xe9\n', "slow"),
    "surrogate_utf8.csv": (b'id,text\n1,\xed\xa0\x80\n', "slow"),
    "numbers_only.csv": (b'1,2\n3,4\n', "fast"),
    "header_only.csv": (b'id,text\n', "fast"),
    "empty.csv": (b'', "slow"),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_file_reads_the_same_both_ways(name, tmp_path, monkeypatch):
    data, expected_path = TRICKY[name]
    path = tmp_path / name
    path.write_bytes(data)
    assert assert_same_table(path) == expected_path
    assert_same_report(path, monkeypatch)
    assert_same_report(path, monkeypatch, JOB)


def test_fast_path_cells_are_exactly_as_written(tmp_path):
    path = tmp_path / "cells.csv"
    path.write_bytes(TRICKY["crlf_everywhere.csv"][0])
    table = load_table(path)
    assert table.read_path == "fast"
    assert table.cells.values.tolist() == [["1", "two\r\nlines"], ["2", "x"]]
    assert table.start_lines.tolist() == [1, 2, 4]


def test_open_quote_is_reported_with_its_line(tmp_path):
    path = tmp_path / "open.csv"
    path.write_bytes(TRICKY["unclosed_last.csv"][0])
    report = validate_csv(path)
    assert [(p.code, p.record, p.line) for p in report.problems] == [("unclosed_quote", 2, 3)]


# ------------------------------------------------------------------------------- multi-block and random files


def test_quoted_newlines_across_pyarrow_blocks(tmp_path, monkeypatch):
    """Small blocks: quoted line breaks fall on block edges (pyarrow reads with newlines_in_values, so it
    follows the quotes to cut blocks), and the line numbers count the breaks inside cells."""
    monkeypatch.setattr(csv_fast_path, "ARROW_BLOCK_BYTES", 256)
    rng = np.random.default_rng(7)
    rows = [["id", "text", "label"]] + [[f"r{i}", "\n".join(["word"] * int(rng.integers(1, 4))) + ", end",
                                         str(rng.choice(["positive", "negative", ""]))] for i in range(400)]
    rows[300][0] = "r5"  # a duplicate id, late in the file
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path = tmp_path / "blocks.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    assert assert_same_table(path) == "fast"
    assert_same_report(path, monkeypatch, JOB)
    report = validate_csv(path, JOB)
    duplicate = [p for p in report.problems if p.code == "id_duplicate"]
    assert [p.record for p in duplicate] == [300]
    assert duplicate[0].line == int(load_table(path, fast=False).start_lines[300])



@pytest.mark.parametrize("data,records,unclosed", [
    # found by a breaker pass: read without newlines_in_values, pyarrow cut these at the block edge and
    # read the text after the quoted line break as a record of its own, without any error
    (b'id,text\n1,aaaaaaaaaaaa\n2,"a\nb,cccccccccccccccc"\n3,z\n', [["1", "aaaaaaaaaaaa"], ["2", "a\nb,cccccccccccccccc"], ["3", "z"]], None),
    (b'text\naaaaaaaaaaaaaaaaaaaa\n"line one\nline two"\nz\n', [["aaaaaaaaaaaaaaaaaaaa"], ["line one\nline two"], ["z"]], None),
    # an open quote before a block edge must be reported, not dropped
    (b'id,text\n1,aaaaaaaaaaaa\n2,"open\n3,cccccccccccccccccccc\n4,d\n5,e\n', None, 2),
])
def test_a_quoted_line_break_on_a_block_edge_is_read_as_written(tmp_path, monkeypatch, data, records, unclosed):
    monkeypatch.setattr(csv_fast_path, "ARROW_BLOCK_BYTES", 32)
    path = tmp_path / "edge.csv"
    path.write_bytes(data)
    table = load_table(path)
    if records is not None:
        assert table.cells.values.tolist() == records
    assert table.unclosed_quote_record == unclosed
    assert_same_table(path)
    assert_same_report(path, monkeypatch, None)
    if unclosed is not None:
        report = validate_csv(path)
        assert [(p.code, p.record, p.line) for p in report.errors] == [("unclosed_quote", 2, 3)]


def test_line_numbers_before_and_after_a_late_multiline_cell(tmp_path, monkeypatch):
    """Lines are counted lazily: a problem before the first cell with a line break needs no count (record + 1),
    one after it counts the breaks; both agree with the slow path, across several pyarrow blocks."""
    monkeypatch.setattr(csv_fast_path, "ARROW_BLOCK_BYTES", 256)
    rows = ["id,text"] + [f"r{i},plain text number {i}" for i in range(1, 61)]
    rows[10] = "r3,repeats record 3"
    rows[30] = 'r30,"two\nlines, quoted"'
    rows[45] = "r3,repeats again"
    path = tmp_path / "late.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    table = load_table(path)
    assert table.read_path == "fast" and len(table._arrow.to_batches()) > 3
    assert table.line_of(10) == 11 and table._start_lines is None  # no count needed yet
    report = validate_csv(path, JOB)
    duplicates = [(p.record, p.line) for p in report.problems if p.code == "id_duplicate"]
    assert duplicates == [(10, 11), (45, 47)]
    assert_same_report(path, monkeypatch, JOB)
    assert assert_same_table(path) == "fast"


def _junk_bytes(rng, pieces: list[str]) -> bytes:
    """Lines of random fields joined by commas: often not RFC 4180 at all (stray quotes, lone CR, NUL)."""
    width = int(rng.integers(1, 4))
    lines = []
    for _ in range(int(rng.integers(1, 7))):
        fields = ["".join(rng.choice(pieces, int(rng.integers(0, 4)))) for _ in range(width)]
        lines.append(",".join(fields))
    return (str(rng.choice(["\n", "\r\n"])).join(lines) + str(rng.choice(["", "\n", "\r\n"]))).encode("utf-8")


def _written_bytes(rng, pieces: list[str]) -> bytes:
    """A CSV written by Python's csv module from random cells (RFC 4180), without or with a final line end."""
    width = int(rng.integers(1, 5))
    rows = [[f"col{i}" for i in range(width)]]
    for _ in range(int(rng.integers(1, 8))):
        rows.append(["".join(rng.choice(pieces, int(rng.integers(1, 4)))) or "v" for _ in range(width)])
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=str(rng.choice(["\n", "\r\n"]))).writerows(rows)
    text = buffer.getvalue()
    return (text if rng.random() < 0.7 else text.rstrip("\r\n")).encode("utf-8")


@pytest.mark.parametrize("seed", range(4))
def test_random_files_read_the_same_both_ways(tmp_path, monkeypatch, seed):
    """Random files, written by the csv module or junk made of quotes, delimiters, CR, LF, spaces, NUL and C1
    controls: whatever the fast path accepts, it reads as the slow path does (and it accepts a good share)."""
    rng = np.random.default_rng(1000 + seed)
    junk = ["a", "b c", ",", '"', '""', "\n", "\r\n", "\r", " ", "é", "\u0085", "\x00", "", "x\"y", '"q"']
    cells = ["a", "b c", ",", '"', "\n", "\r\n", " ", "é", "\u0085", "\u0096", "x\"y", "日本", ""]
    taken = {"fast": 0, "slow": 0}
    for i in range(160):
        data = _junk_bytes(rng, junk) if i % 2 else _written_bytes(rng, cells)
        path = tmp_path / f"{seed}-{i}.{'tsv' if i % 8 == 1 else 'csv'}"
        path.write_bytes(data.replace(b",", b"\t") if i % 8 == 1 else data)
        try:
            taken[assert_same_table(path)] += 1
            assert_same_report(path, monkeypatch)
        except AssertionError as error:
            raise AssertionError(f"{path.name}: {data!r}") from error
    assert taken["fast"] >= 50, taken
