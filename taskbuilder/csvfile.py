"""Reading a dataset file exactly as written, and re-writing it as UTF-8 CSV for upload.

`load_table(path)` reads a CSV or TSV file as text (every cell a string exactly as written: no whitespace
stripping, no NA conversion, a `\\r\\n` inside a quoted cell stays) and keeps what the checks in
`taskbuilder.validation` need: the header as written (duplicates and blanks kept), the data cells by
position, each record's field count and the physical line where it starts, the encoding, and the byte
spans that did not decode.

Dialects:
- CSV (RFC 4180): comma (or a `delimiter_hint` such as ";"), double-quote quoting, quoted fields may hold
  line breaks and doubled quotes, so a record can span several physical lines.
- TSV (IANA text/tab-separated-values): `.tsv` files, `.txt`/other files whose first line has a tab, or
  `delimiter_hint="\\t"`. No quoting at all; records end at `\\n` only (a `\\r` before it is part of the
  line end; U+0085 inside a cell is text, not a line break).

Encoding: UTF-8, with or without a byte-order mark (the BOM is not part of the text). Other encodings
only when named (the job spec's `dataset.encoding`); otherwise the undecodable bytes are listed.

Two paths, one result (`tests/unit/test_csv_fast_path.py` holds them to the same tables and problems):
- Fast path (a UTF-8 file, the common case): `pyarrow.csv.read_csv` reads every record as Arrow strings
  (no nulls, UTF-8 checked, empty lines kept, blocks parsed on several threads). The file reaches pyarrow
  through a reader that looks at each block while it is in the CPU cache (memchr): NUL bytes, C1
  controls, and whether there is any `\\r` at all. The cells stay in Arrow memory (`Table.column`,
  byte lengths from the offsets); the pandas `Table.cells` and the physical `start_lines` are only built
  when asked for. A line number is record + 1 while no cell before that record holds a line break (found
  by scanning the cells only as far as needed), else a count of the `\\n` in the cells.
  It hands over to the slow path when pyarrow refuses the file (ragged records, bad UTF-8, an empty
  file or a single line without line end, a record longer than a block) or when the file holds anything
  whose report needs the byte-level detail: an all-empty record or blank line, a NUL, a `\\r` not
  followed by `\\n` (inside a CSV cell; anywhere in a TSV), or a last cell that may run to the end of
  the file inside an open quote (pyarrow accepts those silently).
- Slow path (any other file, or `load_table(..., fast=False)` / `FAST_PATH = False`): the whole file is
  read and decoded in memory; record structure is found with vectorised numpy passes over the bytes
  (delimiters and newlines outside quotes, by quote parity); pandas' C parser reads the cells. Where the
  two disagree (a record with too many fields, pandas dropping fields), and wherever the parity scan
  can misplace records even when the counts agree (a quote where RFC 4180 puts none, such as a stray `"`
  inside an unquoted field; a lone `\\r`), Python's `csv` module, whose rules pandas' C parser follows,
  decides: it is slower and only runs on those error paths.

`prepare_upload` returns the original file when it is already UTF-8 comma CSV without BOM (uploaded byte
for byte), else writes a UTF-8 CSV with pandas and proves the rewrite reads back cell for cell.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pandas.errors import ParserError, ParserWarning

if TYPE_CHECKING:
    from taskbuilder.spec import AnnotationJob
    from taskbuilder.validation import ValidationReport

UTF8_BOM = b"\xef\xbb\xbf"
C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")  # U+0080..U+009F encoded as UTF-8
# The text-preserving read options: every cell is a string exactly as written, empty cells are "".
TEXT_READ_OPTIONS = dict(dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                         header=None, index_col=False, engine="c")
# The fast path (pyarrow) is tried first for UTF-8 files; False: always the slow path (tests compare the two).
FAST_PATH = True
# pyarrow's read block: a record longer than this sends the file to the slow path (tests make it small).
ARROW_BLOCK_BYTES = 1 << 20


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
    - `cells` (property): DataFrame of the data records (record 1.. → row 0..), text cells, columns are
      positions 0..width-1 where width ≥ len(header) (records with extra fields have them in the extra
      positions; short records are padded with "" and are listed by `field_counts`). Built on first use
      when the file was read by the fast path;
    - `column(position)`: the same cells of one position as an Arrow string array (no nulls), what the checks
      use, with `byte_lengths(position)` / `byte_length_bounds(position)` (UTF-8 bytes per cell / their range);
    - `field_counts[r]`, `start_lines[r]` (property, built on first use), `blank[r]`: numpy arrays per
      record, header included (r = 0), read-only; `start_lines` are 1-based physical lines, and
      `line_of(r)` gives one of them without building the array when it can;
    - `dialect` "csv" | "tsv", `delimiter`, `encoding` (the codec used: "utf-8", "utf-8-sig" or the named one),
      `bom` (a UTF-8 BOM was stripped), `undecodable` (spans, first ones only), `undecodable_total`,
      `unclosed_quote_record` (record index where a quoted field never closes, or None),
      `header_line`: the file's first physical line, decoded (for delimiter sniffing),
      `has_c1_controls`: the text holds a character U+0080–U+009F,
      `nul_count`, `first_nul_line`: NUL characters (a sign of UTF-16 or binary data) and where the first is;
    - `read_path`: "fast" (pyarrow) or "slow" (numpy scan + pandas C parser), see the module docstring.
    """

    path: Path
    header: list[str]
    field_counts: np.ndarray
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
    read_path: str = "slow"
    # storage: the slow path fills _cells and _start_lines; the fast path fills _arrow (data records only)
    _cells: pd.DataFrame | None = field(default=None, repr=False)
    _start_lines: np.ndarray | None = field(default=None, repr=False)
    _arrow: pa.Table | None = field(default=None, repr=False)
    _columns: dict[int, pa.ChunkedArray] = field(default_factory=dict, repr=False)
    _lengths: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _length_bounds: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)
    # fast path: records 0.._plain_records-1 hold no line break in a cell; _plain_done: the scan is over
    _plain_records: int = field(default=0, repr=False)
    _plain_done: bool = field(default=False, repr=False)

    @property
    def rows(self) -> int:
        """Number of data records (header excluded)."""
        return self._arrow.num_rows if self._arrow is not None else len(self._cells)

    @property
    def width(self) -> int:
        """Number of cell positions (columns of `cells`)."""
        return self._arrow.num_columns if self._arrow is not None else self._cells.shape[1]

    @property
    def cells(self) -> pd.DataFrame:
        """The data records' text cells by position (see the class docstring)."""
        if self._cells is None:
            frame = self._arrow.to_pandas()
            frame.columns = list(range(self._arrow.num_columns))
            self._cells = frame
        return self._cells

    @property
    def start_lines(self) -> np.ndarray:
        """The 1-based physical line where each record starts (int64, header = index 0)."""
        if self._start_lines is None:
            self._start_lines = self._count_start_lines()
        return self._start_lines

    def column(self, position: int) -> pa.ChunkedArray:
        """The data records' cells at `position` (0-based, < `width`) as Arrow strings, one per record."""
        if self._arrow is not None:
            return self._arrow.column(position)
        if position not in self._columns:
            series = self._cells.iloc[:, position]
            self._columns[position] = pa.chunked_array([pa.array(series, type=pa.large_string())])
        return self._columns[position]

    def byte_lengths(self, position: int) -> np.ndarray:
        """UTF-8 byte length of each data record's cell at `position` (from the Arrow offsets, no pass over the
        text; a cell has at least as many bytes as characters, and no bytes only when it is empty)."""
        if position not in self._lengths:
            self._lengths[position] = _byte_lengths(self.column(position))
        return self._lengths[position]

    def byte_length_bounds(self, position: int) -> tuple[int, int]:
        """(low, high): every data record's cell at `position` has between low and high UTF-8 bytes (the
        fast path's bounds also cover the header cell, so they may be looser than the data's)."""
        if position not in self._length_bounds:
            self._length_bounds[position] = _length_bounds(self.column(position))
        return self._length_bounds[position]

    def line_of(self, record: int) -> int:
        """The 1-based physical line where `record` (0 = header) starts: `start_lines[record]`, without building
        that array when no cell before the record holds a line break (then it is record + 1)."""
        if self._start_lines is None and self._plain_prefix(record) >= record:
            return record + 1
        return int(self.start_lines[record])

    def _plain_prefix(self, records: int) -> int:
        """Fast path: how many leading records are known to hold no `\\n` in a cell, scanning the cells (a
        memchr per chunk) until at least `records` are known or one holds a line break."""
        if self._plain_done or self._plain_records >= records:
            return self._plain_records
        if self._plain_records == 0:
            if any("\n" in name for name in self.header):
                self._plain_done = True
                return 0
            self._plain_records = 1
        scratch = bytearray(2 * ARROW_BLOCK_BYTES)
        first = 0  # data row of the batch
        for batch in self._arrow.to_batches():
            end = first + batch.num_rows
            if end + 1 > self._plain_records:
                newline, scratch = _chunks_hold(batch.columns, b"\n", scratch)
                if newline:
                    self._plain_done = True
                    return self._plain_records
                self._plain_records = end + 1
                if self._plain_records >= records:
                    return self._plain_records
            first = end
        self._plain_done = True
        return self._plain_records

    def _count_start_lines(self) -> np.ndarray:
        """Fast path: every record ends with one line break (`\\n`, `\\r\\n` or, in a CSV, a lone `\\r`: the
        slow path's csv module counts each as a line; a lone `\\r` inside a cell goes to the slow path), so
        record r starts on line r + 1 plus the `\\n` inside the cells before it."""
        lines = np.arange(1, self.rows + 2, dtype=np.int64)
        if self._plain_prefix(self.rows + 1) >= self.rows + 1:
            return lines
        inside = np.zeros(self.rows + 1, dtype=np.int64)
        inside[0] = sum(name.count("\n") for name in self.header)
        for column in self._arrow.columns:
            inside[1:] += pc.count_substring(column, "\n").to_numpy()
        lines[1:] += np.cumsum(inside[:-1])
        return lines


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


def _parity_scan_may_err(data: bytes, delimiter: str) -> bool:
    """Whether `_scan` (quote parity) may misplace a record or field of this CSV, so that the csv module must
    decide: a lone `\\r` (the csv module ends a record there), a quote that opens a field anywhere but at
    its start, or one that closes a field and is followed by anything but a delimiter, a line end or a quote."""
    if data.count(b"\r") != data.count(b"\r\n"):
        return True
    if b'"' not in data:
        return False
    arr = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(arr == 34)
    opening, closing = quotes[0::2], quotes[1::2]
    before = arr[np.maximum(opening - 1, 0)]
    opens_field = (opening == 0) | (before == ord(delimiter)) | (before == 10) | (before == 34)
    after = arr[np.minimum(closing + 1, len(arr) - 1)]
    closes_field = (closing == len(arr) - 1) | (after == ord(delimiter)) | (after == 10) | (after == 13) | (after == 34)
    return not (opens_field.all() and closes_field.all())


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


def _try_read_cells(data: bytes, dialect: str, delimiter: str, width: int) -> tuple[pd.DataFrame | None, bool, bool]:
    """(cells, eof_in_quote, cut): pandas' reading, or None when it refuses the file (eof_in_quote True: a quote
    never closes); `cut` True when a record had more than `width` fields and pandas dropped the extra ones
    (it only warns: the parity scan under-counted, e.g. after a stray quote)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cells, eof_in_quote = _read_cells(data, dialect, delimiter, width), False
        except ParserError as error:
            cells, eof_in_quote = None, "EOF inside string" in str(error)
    cut = False
    for warning in caught:
        if issubclass(warning.category, ParserWarning):
            cut = True
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return cells, eof_in_quote, cut


def _read_cells(data: bytes, dialect: str, delimiter: str, width: int) -> pd.DataFrame:
    """pandas C parser over UTF-8 `data`, all records (header included) as text, positional columns."""
    options = dict(TEXT_READ_OPTIONS, sep=delimiter, names=list(range(width)))
    if dialect == "tsv":
        options.update(quoting=csv.QUOTE_NONE, lineterminator="\n")
    return pd.read_csv(io.BytesIO(data), **options)


def load_table(path: str | Path, *, encoding: str | None = None, delimiter_hint: str | None = None,
               max_undecodable: int = 20, fast: bool | None = None) -> Table:
    """Read a CSV/TSV dataset file as text. `encoding`: a codec name when the file is not UTF-8.

    `fast`: try the pyarrow fast path first (see the module docstring); None follows the module switch
    `FAST_PATH`, False forces the slow path. Both give the same `Table` (contents; `read_path` says which ran).
    `delimiter_hint`: see `sniff_delimiter`. Raises `CsvReadError` when the file cannot be read, and
    `ValueError` for a `delimiter_hint` that is not one character. Never raises for bad content: that is
    described by the returned `Table` (and turned into problems by `taskbuilder.validation.validate_csv`).
    """
    path = Path(path)
    if (FAST_PATH if fast is None else fast) and encoding in (None, "utf-8", "utf-8-sig"):
        table = _load_fast(path, encoding, delimiter_hint)
        if table is not None:
            return table
    return _load_slow(path, encoding, delimiter_hint, max_undecodable)


def _load_slow(path: Path, encoding: str | None, delimiter_hint: str | None, max_undecodable: int) -> Table:
    """The slow path: the whole file in memory, numpy record scan, pandas C parser, csv module on disagreement."""
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
    cells, eof_in_quote, cut = _try_read_cells(data, dialect, delimiter, width) if width else (None, False, False)
    ragged = bool(((counts != counts[0]) & ~blank).any()) if width else False
    if quoted and width and (cells is None or cut or len(cells) != len(counts) or ragged
                             or _parity_scan_may_err(data, delimiter)):
        # non-RFC quoting (a stray " inside an unquoted field) misleads the parity scan: ask the csv module
        counts, start_lines, blank = _python_records(data.decode("utf-8"), delimiter)
        if cells is None or cut or cells.shape[1] < counts.max() or len(cells) != len(counts):
            cells, eof_in_quote, _ = _try_read_cells(data, dialect, delimiter, int(counts.max()))
        elif cells.shape[1] > counts.max():  # the parity scan over-counted: drop its padding-only positions
            cells = cells.iloc[:, : int(counts.max())]
    if width and (cells is None or len(cells) != len(counts)):  # pandas cannot read it: build from the records
        rows = _python_rows(data.decode("utf-8"), delimiter, dialect)
        width = max(len(r) for r in rows)
        cells = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], columns=list(range(width)), dtype="str")
    if cells is None:  # empty file
        cells = pd.DataFrame(dtype="str")
    header = [str(v) for v in cells.iloc[0, : int(counts[0])]] if len(cells) else []
    spans_out = [UndecodableSpan(offset=s, raw=raw[s:e], line=raw.count(b"\n", 0, s) + 1) for s, e in spans]
    return Table(
        path=path, header=header, _cells=cells.iloc[1:].reset_index(drop=True), field_counts=counts,
        _start_lines=start_lines, blank=blank, dialect=dialect, delimiter=delimiter, encoding=codec, bom=bom,
        header_line=header_line, undecodable=spans_out, undecodable_total=total,
        unclosed_quote_record=len(counts) - 1 if eof_in_quote else None,
        has_c1_controls=C1_UTF8.search(data) is not None,
        nul_count=data.count(b"\x00"),
        first_nul_line=data.count(b"\n", 0, data.find(b"\x00")) + 1 if b"\x00" in data else None,
    )


# ----------------------------------------------------------------------------------------------------------
# the fast path (pyarrow)


def _load_fast(path: Path, encoding: str | None, delimiter_hint: str | None) -> Table | None:
    """The fast path for a UTF-8 file (`encoding` None, "utf-8" or "utf-8-sig"): the `Table` read by pyarrow,
    or None when the slow path must read it (see the module docstring for when)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = _first_line_bytes(handle)
    except OSError:
        return None  # the slow path raises CsvReadError with the reason
    bom = head.startswith(UTF8_BOM)
    body = head[len(UTF8_BOM):] if bom else head
    end_of_line = body.find(b"\n")
    try:
        header_line = (body if end_of_line < 0 else body[:end_of_line]).decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None
    dialect, delimiter = sniff_delimiter(path, header_line, delimiter_hint)
    if delimiter in ('"', "\n", "\r"):
        return None
    read = _arrow_read(path, dialect, delimiter, header_line.count(delimiter) + 1)
    if read is None:
        return None
    arrow, seen = read
    if arrow.num_rows == 0 or not all(pa.types.is_string(t) for t in arrow.schema.types) or seen.nul:
        return None  # empty, a column pyarrow would not read as UTF-8 text, or NUL characters
    if seen.cr and (_has_lone_cr(path) if dialect == "tsv" else _cells_hold_lone_cr(arrow)):
        return None  # TSV ends records at \n only, pyarrow at a lone \r too; the slow path counts those lines
    bounds = [_length_bounds(column) for column in arrow.columns]
    if not any(low > 0 for low, _ in bounds):  # some record may be all empty: look closer
        if not np.logical_or.reduce([_byte_lengths(column) != 0 for column in arrow.columns]).all():
            return None  # an all-empty record or a blank line: the slow path tells them apart
    if dialect == "csv" and _may_end_in_open_quote(path, size, arrow):
        return None
    width = arrow.num_columns
    return Table(  # every record has `width` fields and none is blank: constant read-only views, no memory
        path=path, header=[arrow.column(i)[0].as_py() for i in range(width)],
        field_counts=np.broadcast_to(np.int64(width), (arrow.num_rows,)),
        blank=np.broadcast_to(np.False_, (arrow.num_rows,)),
        dialect=dialect, delimiter=delimiter, encoding="utf-8-sig" if bom else (encoding or "utf-8"), bom=bom,
        header_line=header_line, has_c1_controls=seen.c1, read_path="fast",
        _arrow=arrow.slice(1), _length_bounds=dict(enumerate(bounds)),
    )


def _byte_lengths(column: pa.ChunkedArray) -> np.ndarray:
    """UTF-8 byte length of each string in `column` (int32/int64), from its offsets."""
    return pc.binary_length(column).to_numpy()


def _length_bounds(column: pa.ChunkedArray) -> tuple[int, int]:
    """(shortest, longest) UTF-8 byte length in `column`, (0, 0) when it is empty: an Arrow aggregate, no
    numpy array (one would cost a page fault per 4 KiB in a fresh process)."""
    extremes = pc.min_max(pc.binary_length(column)).as_py()
    return (extremes["min"] or 0, extremes["max"] or 0)


def _first_line_bytes(handle, chunk_bytes: int = 1 << 16) -> bytes:
    """The file's bytes up to and including its first `\\n` (all of it when there is none)."""
    head = b""
    while b"\n" not in head:
        chunk = handle.read(chunk_bytes)
        if not chunk:
            break
        head += chunk
    return head


def _has_lone_cr(path: Path, chunk_bytes: int = 8 << 20) -> bool:
    """Whether the file holds a `\\r` that is not followed by `\\n` (read 8 MiB at a time)."""
    carry = False  # the previous chunk ended with \r
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            if carry and not chunk.startswith(b"\n"):
                return True
            carry = chunk.endswith(b"\r")
            if b"\r" in chunk and chunk.count(b"\r") - chunk.count(b"\r\n") - carry > 0:
                return True
    return carry


class _ScanningReader(io.RawIOBase):
    """The file as a stream for pyarrow that notes, in each block as pyarrow reads it (so while it is in the
    CPU cache, with memchr), what the fast path must know of the bytes: `nul` (a NUL byte), `cr` (a `\\r`)
    and `c1` (U+0080–U+009F encoded as UTF-8, also across two blocks). `complete` tells that pyarrow read
    it to the end."""

    def __init__(self, path: Path):
        super().__init__()
        self._handle = open(path, "rb", buffering=0)
        self.nul = self.cr = self.c1 = False
        self._c1_lead = False  # the previous block ended with \xc2
        self.complete = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        if not data:
            self.complete = True
            return data
        self.nul = self.nul or b"\x00" in data
        self.cr = self.cr or b"\r" in data
        self.c1 = self.c1 or (self._c1_lead and 0x80 <= data[0] <= 0x9F) or (
            b"\xc2" in data and C1_UTF8.search(data) is not None)
        self._c1_lead = data.endswith(b"\xc2")
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def _arrow_read(path: Path, dialect: str, delimiter: str, width_guess: int) -> tuple[pa.Table, _ScanningReader] | None:
    """(every record, header included, read by pyarrow: columns f0, f1, ... as strings; what the reader saw
    of the bytes), or None when pyarrow refuses the file.

    CSV is always read with `newlines_in_values` (pyarrow then finds block edges by following the quotes).
    Without it, about 20% faster, pyarrow cuts blocks at any newline: a quoted line break on a block edge
    was silently misread whenever the text after it parsed into the header's number of fields (a breaker
    pass found records replaced and an open quote reported OK; `tests/unit/test_csv_fast_path.py`)."""
    read_options = pacsv.ReadOptions(autogenerate_column_names=True, block_size=ARROW_BLOCK_BYTES)
    convert_options = pacsv.ConvertOptions(
        check_utf8=True, column_types={f"f{i}": pa.string() for i in range(width_guess)},
        strings_can_be_null=False, quoted_strings_can_be_null=False)
    for newlines_in_values in ((True,) if dialect == "csv" else (False,)):
        parse_options = pacsv.ParseOptions(
            delimiter=delimiter, quote_char='"' if dialect == "csv" else False, double_quote=True,
            escape_char=False, newlines_in_values=newlines_in_values, ignore_empty_lines=False)
        try:
            with _ScanningReader(path) as source:
                table = pacsv.read_csv(source, read_options=read_options, parse_options=parse_options,
                                       convert_options=convert_options)
                if source.complete or source.read(1) == b"":
                    return table, source
        except (pa.ArrowException, OSError):
            continue
    return None


def _cells_hold_lone_cr(arrow: pa.Table) -> bool:
    """Whether a cell holds a `\\r` not followed by `\\n` (only asked when the file holds a `\\r`)."""
    scratch = bytearray(2 * ARROW_BLOCK_BYTES)
    for column in arrow.columns:
        for chunk in column.chunks:
            size, scratch = _copy_values(chunk, scratch)
            if scratch.find(b"\r", 0, size) >= 0 and (pc.sum(pc.count_substring(chunk, "\r"))
                                                      != pc.sum(pc.count_substring(chunk, "\r\n"))):
                return True
    return False


def _chunks_hold(chunks: list[pa.Array], needle: bytes, scratch: bytearray) -> tuple[bool, bytearray]:
    """Whether a value of one of `chunks` holds `needle` (one byte), and the scratch buffer (grown if needed)."""
    for chunk in chunks:
        size, scratch = _copy_values(chunk, scratch)
        if scratch.find(needle, 0, size) >= 0:
            return True, scratch
    return False, scratch


def _copy_values(chunk: pa.Array, scratch: bytearray) -> tuple[int, bytearray]:
    """Copy the UTF-8 bytes of all values of a string array, one after the other, to the start of `scratch`
    (a new, larger one when they do not fit); return their size and the buffer holding them. One reused
    buffer: `bytearray.find` is a memchr over bytes in cache, a fresh copy per chunk would fault per 4 KiB."""
    if len(chunk) == 0:
        return 0, scratch
    _, offsets, data = chunk.buffers()
    if data is None:
        return 0, scratch
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=offset_type)[chunk.offset: chunk.offset + len(chunk) + 1]
    first, size = int(bounds[0]), int(bounds[-1] - bounds[0])
    if size > len(scratch):
        scratch = bytearray(size)
    np.frombuffer(scratch, dtype=np.uint8, count=size)[:] = np.frombuffer(data, dtype=np.uint8, count=size,
                                                                           offset=first)
    return size, scratch


def _may_end_in_open_quote(path: Path, size: int, arrow: pa.Table) -> bool:
    """Whether the last cell may be a quoted field that never closes (pyarrow then keeps the rest of the file
    as that cell; the slow path reports it). True when the file ends with `"` and that cell with its
    quotes doubled, which every open quote at the end of the file does."""
    last = arrow.column(arrow.num_columns - 1)[-1].as_py().encode("utf-8")
    tail = b'"' + last.replace(b'"', b'""')
    if len(tail) > size:
        return False
    with open(path, "rb") as handle:
        handle.seek(size - len(tail))
        return handle.read() == tail


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
    # Python's csv writer quotes a field with \n but not one with a lone \r (text in a TSV cell): quote
    # every field then, or the \r would end a record when the rewrite is read
    lone_cr = any(cells[column].str.contains("\r", regex=False).any() for column in cells.columns) or any(
        "\r" in name for name in source.header)
    cells.to_csv(partial, index=False, header=source.header, encoding="utf-8", lineterminator="\n",
                 quoting=csv.QUOTE_ALL if lone_cr else csv.QUOTE_MINIMAL)
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
