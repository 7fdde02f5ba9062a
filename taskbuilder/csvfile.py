"""Reading a dataset file exactly as written, and re-writing it as UTF-8 CSV for upload.

`load_table(path)` reads a CSV or TSV file as text (pandas, `dtype=str`, no NA conversion: cell text is
never altered) and keeps what the checks in `taskbuilder.validation` need: the header as written
(duplicates and blanks kept), the data cells by position, each record's field count and the physical
line where it starts, the encoding, and the byte spans that did not decode.

Dialects:
- CSV (RFC 4180): comma (or a `delimiter_hint` such as ";"), double-quote quoting, quoted fields may hold
  line breaks and doubled quotes, so a record can span several physical lines.
- TSV (IANA text/tab-separated-values): `.tsv` files, `.txt`/other files whose first line has a tab, or
  `delimiter_hint="\\t"`. No quoting at all; records end at `\\n` only (a `\\r` before it is part of the
  line end; U+0085 inside a cell is text, not a line break).

Encoding: UTF-8, with or without a byte-order mark (the BOM is not part of the text). Other encodings
only when named (the job spec's `dataset.encoding`); otherwise the undecodable bytes are listed.

Record structure is found with vectorised numpy passes over the bytes (delimiters and newlines outside
quotes, by quote parity); pandas' C parser reads the cells. Where the two disagree (non-RFC quoting such
as a stray `"` inside an unquoted field, or a record with too many fields), Python's `csv` module, whose
rules pandas' C parser follows, decides: it is slower and only runs on that error path.

`prepare_upload` returns the original file when it is already UTF-8 comma CSV without BOM (uploaded byte
for byte), else writes a UTF-8 CSV with pandas and proves the rewrite reads back cell for cell.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.errors import ParserError

if TYPE_CHECKING:
    from taskbuilder.job import AnnotationJob
    from taskbuilder.validation import ValidationReport

UTF8_BOM = b"\xef\xbb\xbf"
C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")  # U+0080..U+009F encoded as UTF-8
# The text-preserving read options: every cell is a string exactly as written, empty cells are "".
TEXT_READ_OPTIONS = dict(dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                         header=None, index_col=False, engine="c")


class CsvReadError(Exception):
    """The file cannot be read at all (missing, unreadable). Message names the file."""


@dataclass
class UndecodableSpan:
    """Bytes that are not valid in the file's encoding: `offset` into the file (0-based, BOM included)."""

    offset: int
    raw: bytes
    line: int


@dataclass
class Table:
    """A dataset file as read.

    - `header`: column names as written (record 0), duplicates and blanks kept;
    - `cells`: DataFrame of the data records (record 1.. → row 0..), columns are positions 0..width-1 where
      width ≥ len(header) (records with extra fields have them in the extra positions; short records are
      padded with "" and are listed by `field_counts`);
    - `field_counts[r]`, `start_lines[r]`, `blank[r]`: per record, header included (r = 0);
    - `dialect` "csv" | "tsv", `delimiter`, `encoding` (the codec used: "utf-8", "utf-8-sig" or the named one),
      `bom` (a UTF-8 BOM was stripped), `undecodable` (spans, first ones only), `undecodable_total`,
      `unclosed_quote_record` (record index where a quoted field never closes, or None),
      `header_line`: the file's first physical line, decoded (for delimiter sniffing),
      `has_c1_controls`: the text holds a character U+0080–U+009F (one fast pass over the bytes),
      `nul_count`, `first_nul_line`: NUL characters (a sign of UTF-16 or binary data) and where the first is.
    """

    path: Path
    header: list[str]
    cells: pd.DataFrame
    field_counts: np.ndarray
    start_lines: np.ndarray
    blank: np.ndarray
    dialect: str
    delimiter: str
    encoding: str
    bom: bool
    header_line: str
    undecodable: list[UndecodableSpan] = field(default_factory=list)
    undecodable_total: int = 0
    unclosed_quote_record: int | None = None
    has_c1_controls: bool = False
    nul_count: int = 0
    first_nul_line: int | None = None

    @property
    def rows(self) -> int:
        """Number of data records (header excluded)."""
        return len(self.cells)


# ----------------------------------------------------------------------------------------------------------
# dialect and decoding


def sniff_delimiter(path: Path, header_line: str, delimiter_hint: str | None) -> tuple[str, str]:
    """(dialect, delimiter) for reading: the hint if given; TSV for `.tsv`, or for non-`.csv` files whose first
    line has a tab; else CSV with a comma. (A `.csv` that is really ;- or tab-separated is read as a comma CSV
    here; `validation` reports it using `actual_delimiter`.)"""
    if delimiter_hint is not None:
        hint = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(delimiter_hint, delimiter_hint)
        if len(hint) != 1:
            raise ValueError(f"delimiter_hint must be one character (',', ';' or a tab), got {delimiter_hint!r}")
        return ("tsv" if hint == "\t" else "csv"), hint
    suffix = path.suffix.lower()
    if suffix == ".tsv" or (suffix != ".csv" and "\t" in header_line):
        return "tsv", "\t"
    return "csv", ","


def actual_delimiter(header_line: str) -> str | None:
    """';' or tab when the header line has more of it than commas (a '.csv' that is not comma-separated), else None."""
    commas = header_line.count(",")
    for candidate in (";", "\t"):
        if header_line.count(candidate) > commas:
            return candidate
    return None


def _decode(data: bytes, encoding: str | None, max_spans: int) -> tuple[bytes, str, bool, list[tuple[int, int]], int]:
    """(the text as UTF-8 bytes, codec, bom, first bad byte spans [(start, end)] into `data`, total bad spans).
    Undecodable bytes become U+FFFD in the text; the text itself is `utf8.decode("utf-8")`.

    A valid UTF-8 file is checked in chunks and returned as it is: its text is never held as one `str`
    (for a 140 MB file with one emoji that `str` alone is 560 MB, `benchmarks/bench_validate.py`)."""
    bom = data.startswith(UTF8_BOM) and encoding in (None, "utf-8", "utf-8-sig")
    body = data[len(UTF8_BOM):] if bom else data
    codec = encoding or "utf-8"
    try:
        if codec in ("utf-8", "utf-8-sig"):
            _check_utf8(body)
            utf8 = body
        else:
            utf8 = body.decode(codec).encode("utf-8")
        return utf8, ("utf-8-sig" if bom else codec), bom, [], 0
    except UnicodeDecodeError:
        pass
    spans: list[tuple[int, int]] = []
    position = 0
    while len(spans) < max_spans:
        try:
            body[position:].decode(codec)
            break
        except UnicodeDecodeError as error:
            spans.append((position + error.start, position + error.end))
            position += error.end
    text = body.decode(codec, errors="replace")
    total = text.count("\ufffd") - (body.count("\ufffd".encode(codec)) if codec.startswith("utf") else 0)
    offset = len(UTF8_BOM) if bom else 0
    return (text.encode("utf-8"), ("utf-8-sig" if bom else codec), bom,
            [(s + offset, e + offset) for s, e in spans], max(total, len(spans)))


def _check_utf8(body: bytes, chunk_bytes: int = 8 * 2**20) -> None:
    """Raise `UnicodeDecodeError` unless `body` is valid UTF-8, decoding it 8 MiB at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(body)
    for start in range(0, len(body), chunk_bytes):
        decoder.decode(view[start:start + chunk_bytes])
    decoder.decode(b"", final=True)


# ----------------------------------------------------------------------------------------------------------
# record structure


def _scan(data: bytes, delimiter: str, quoted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised record scan of UTF-8 `data`: (field_counts, start_lines, blank) per record.

    A delimiter or `\\n` counts only outside quotes (even number of `"` before it; doubled quotes keep the
    parity). The final `\\n` of the file ends the last record rather than starting an empty one.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    seps = np.flatnonzero(arr == ord(delimiter))
    ends = newlines
    if quoted and b'"' in data:
        quotes = np.flatnonzero(arr == 34)
        ends = newlines[(np.searchsorted(quotes, newlines) & 1) == 0]
        seps = seps[(np.searchsorted(quotes, seps) & 1) == 0]
    record_breaks = len(ends)
    if len(data) and (len(ends) == 0 or ends[-1] != len(data) - 1):
        ends = np.append(ends, len(data))  # last record without a final newline
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.zeros(0, dtype=np.int64)
    counts = np.bincount(np.searchsorted(ends, seps), minlength=len(ends))[: len(ends)] + 1
    lengths = ends - starts
    blank = lengths == 0
    one_byte = lengths == 1
    if one_byte.any():
        blank[one_byte] = arr[starts[one_byte]] == 13  # a line holding only the \r of a CRLF
    if record_breaks == len(newlines):
        start_lines = np.arange(1, len(starts) + 1)  # no line break inside a record
    else:
        start_lines = np.searchsorted(newlines, starts) + 1
    return counts, start_lines, blank


def _python_records(text: str, delimiter: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The authoritative record structure (Python's csv module, whose rules pandas' C parser follows):
    (field_counts, start_lines, blank) per record. Only used when the fast scan and pandas disagree."""
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    structure = [(len(row), reader.line_num) for row in reader]
    counts = np.array([n for n, _ in structure], dtype=np.int64)
    ends = np.array([line for _, line in structure], dtype=np.int64)
    start_lines = np.concatenate(([1], ends[:-1] + 1)) if len(ends) else ends
    return np.maximum(counts, 1), start_lines, counts == 0


def _python_rows(text: str, delimiter: str, dialect: str) -> list[list[str]]:
    """Every record as a list of cells, by Python's csv module (CSV) or by splitting lines at tabs (TSV)."""
    if dialect == "tsv":
        return [line.split("\t") for line in text.removesuffix("\n").split("\n")]
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _try_read_cells(data: bytes, dialect: str, delimiter: str, width: int) -> tuple[pd.DataFrame | None, bool]:
    """(cells, eof_in_quote): pandas' reading, or None when it refuses the file (True: a quote never closes)."""
    try:
        return _read_cells(data, dialect, delimiter, width), False
    except ParserError as error:
        return None, "EOF inside string" in str(error)


def _read_cells(data: bytes, dialect: str, delimiter: str, width: int) -> pd.DataFrame:
    """pandas C parser over UTF-8 `data`, all records (header included) as text, positional columns."""
    options = dict(TEXT_READ_OPTIONS, sep=delimiter, names=list(range(width)))
    if dialect == "tsv":
        options.update(quoting=csv.QUOTE_NONE, lineterminator="\n")
    return pd.read_csv(io.BytesIO(data), **options)


def load_table(path: str | Path, *, encoding: str | None = None, delimiter_hint: str | None = None,
               max_undecodable: int = 20) -> Table:
    """Read a CSV/TSV dataset file as text. `encoding`: a codec name when the file is not UTF-8.

    Raises `CsvReadError` when the file cannot be read. Never raises for bad content: that is described by
    the returned `Table` (and turned into problems by `taskbuilder.validation.validate_csv`).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CsvReadError(f"{path}: cannot read the file: {error.strerror or error}") from None
    data, codec, bom, spans, total = _decode(raw, encoding, max_undecodable)
    end_of_line = data.find(b"\n")
    header_line = (data if end_of_line < 0 else data[:end_of_line]).decode("utf-8").rstrip("\r")
    dialect, delimiter = sniff_delimiter(path, header_line, delimiter_hint)
    if dialect == "tsv" and b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")  # CRLF ends a TSV line; a lone \r is text
    quoted = dialect == "csv"

    counts, start_lines, blank = _scan(data, delimiter, quoted)
    width = int(counts.max()) if len(counts) else 0
    cells, eof_in_quote = _try_read_cells(data, dialect, delimiter, width) if width else (None, False)
    ragged = bool(((counts != counts[0]) & ~blank).any()) if width else False
    if quoted and width and (cells is None or len(cells) != len(counts) or ragged):
        # non-RFC quoting (a stray " inside an unquoted field) misleads the parity scan: ask the csv module
        counts, start_lines, blank = _python_records(data.decode("utf-8"), delimiter)
        if cells is None or cells.shape[1] < counts.max() or len(cells) != len(counts):
            cells, eof_in_quote = _try_read_cells(data, dialect, delimiter, int(counts.max()))
    if width and (cells is None or len(cells) != len(counts)):  # pandas cannot read it: build from the records
        rows = _python_rows(data.decode("utf-8"), delimiter, dialect)
        width = max(len(r) for r in rows)
        cells = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], columns=list(range(width)), dtype="str")
    if cells is None:  # empty file
        cells = pd.DataFrame(dtype="str")
    header = [str(v) for v in cells.iloc[0, : int(counts[0])]] if len(cells) else []
    spans_out = [UndecodableSpan(offset=s, raw=raw[s:e], line=raw.count(b"\n", 0, s) + 1) for s, e in spans]
    return Table(
        path=path, header=header, cells=cells.iloc[1:].reset_index(drop=True), field_counts=counts,
        start_lines=start_lines, blank=blank, dialect=dialect, delimiter=delimiter, encoding=codec, bom=bom,
        header_line=header_line, undecodable=spans_out, undecodable_total=total,
        unclosed_quote_record=len(counts) - 1 if eof_in_quote else None,
        has_c1_controls=C1_UTF8.search(data) is not None,
        nul_count=data.count(b"\x00"),
        first_nul_line=data.count(b"\n", 0, data.find(b"\x00")) + 1 if b"\x00" in data else None,
    )


# ----------------------------------------------------------------------------------------------------------
# upload preparation


class UploadPreparationError(Exception):
    """The file cannot be prepared for upload (it has errors, or a rewrite did not read back identically)."""


def prepare_upload(path: str | Path, report: "ValidationReport", job: "AnnotationJob | None", out_dir: str | Path) -> Path:
    """The file to upload for a validated dataset file (the presigned PUT of API doc §2.5 sends its bytes).

    Returns `path` itself when it is already UTF-8 comma-separated CSV without BOM: it is uploaded byte for
    byte. Otherwise (BOM, TSV, another delimiter, another encoding) writes `<out_dir>/<stem>.csv` as UTF-8 CSV
    with pandas (minimal quoting, `\\n` line ends), reads it back and compares header and every cell with the
    source; only then is the file put in place. `out_dir` is a local folder (created if needed).

    Raises `UploadPreparationError` when `report` has errors, when the output would overwrite `path`, or when
    the rewrite differs from the source (naming the first record and column that differ).
    """
    path = Path(path)
    if not report.ok:
        raise UploadPreparationError(f"{path}: the file has {len(report.errors)} error(s); fix them before upload "
                                     "(see `taskbuilder validate`)")
    if report.dialect == "csv" and report.delimiter == "," and report.encoding == "utf-8":
        return path
    encoding = job.dataset.encoding if job is not None else None
    source = load_table(path, encoding=encoding, delimiter_hint=report.delimiter)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.csv"
    if target.resolve() == path.resolve():
        raise UploadPreparationError(f"{path}: the UTF-8 rewrite would overwrite the source; choose another out_dir")
    partial = target.with_name(target.name + ".partial")
    cells = source.cells.iloc[:, : len(source.header)]
    cells.to_csv(partial, index=False, header=source.header, encoding="utf-8", lineterminator="\n",
                 quoting=csv.QUOTE_MINIMAL)
    written = load_table(partial)
    _same_cells(source, written, path, partial)
    partial.replace(target)
    return target


def _same_cells(source: Table, written: Table, path: Path, partial: Path) -> None:
    """Raise `UploadPreparationError` (and delete `partial`) unless `written` holds exactly `source`'s header
    and cells."""
    width = len(source.header)
    problem = None
    if written.header != source.header:
        problem = f"the header reads back as {written.header}, not {source.header}"
    elif written.cells.shape != (source.rows, width):
        problem = f"{written.rows} records x {written.cells.shape[1]} fields read back, not {source.rows} x {width}"
    else:
        differ = (written.cells.to_numpy() != source.cells.iloc[:, :width].to_numpy())
        if differ.any():
            row, column = (int(i) for i in np.argwhere(differ)[0])
            problem = f"record {row + 1}, column {source.header[column]!r} reads back differently"
    if problem is not None:
        partial.unlink(missing_ok=True)
        raise UploadPreparationError(f"{path}: the UTF-8 rewrite does not match the source: {problem}")
