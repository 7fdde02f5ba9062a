"""The slow path of reading a dataset file: any file the fast path hands over (`taskbuilder.csv_fast_path`).

The whole file is read and decoded in memory; record structure is found with vectorised numpy passes over
the bytes (delimiters and newlines outside quotes, by quote parity); pandas' C parser reads the cells.
Where the two disagree (a record with too many fields, pandas dropping fields), and wherever the parity
scan can misplace records even when the counts agree (a quote where RFC 4180 puts none, such as a stray
`"` inside an unquoted field; a lone `\\r`), Python's `csv` module, whose rules pandas' C parser follows,
decides: it is slower and only runs on those error paths.
"""

from __future__ import annotations

import codecs
import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.errors import ParserError, ParserWarning

from taskbuilder.csv_dialect import C1_UTF8, UTF8_BOM, sniff_delimiter
from taskbuilder.csv_table import CsvReadError, Table, UndecodableSpan

# The text-preserving read options: every cell is a string exactly as written, empty cells are "".
TEXT_READ_OPTIONS = dict(dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                         header=None, index_col=False, engine="c")


def read_slow(path: Path, encoding: str | None, delimiter_hint: str | None, max_undecodable: int) -> Table:
    """The slow path: the whole file in memory, numpy record scan, pandas C parser, csv module on disagreement.

    `encoding`: a codec name, None = UTF-8 (BOM allowed); at most `max_undecodable` undecodable spans are listed.
    Raises `CsvReadError` when the file cannot be read; bad content is described by the returned `Table`.
    """
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
