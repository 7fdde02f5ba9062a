"""A dataset file as read (`Table`): its header, cells and record structure, and what the reading found
(undecodable bytes, an open quote, NULs, C1 controls). Built by `taskbuilder.csvfile.load_table`; the
checks that turn it into problems live elsewhere and this module knows none of them.

Also the Arrow measurements both the table and the fast path use: UTF-8 byte lengths from the offsets, and a
memchr over a string array's values in one reused buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Initial size of the scratch buffer `copy_values` fills (it grows when a chunk's values do not fit).
SCRATCH_BYTES = 2 << 20


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
    - `read_path`: "fast" (pyarrow) or "slow" (numpy scan + pandas C parser), see `taskbuilder.csvfile`.
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
            self._lengths[position] = utf8_lengths(self.column(position))
        return self._lengths[position]

    def byte_length_bounds(self, position: int) -> tuple[int, int]:
        """(low, high): every data record's cell at `position` has between low and high UTF-8 bytes (the
        fast path's bounds also cover the header cell, so they may be looser than the data's)."""
        if position not in self._length_bounds:
            self._length_bounds[position] = utf8_length_bounds(self.column(position))
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
        scratch = bytearray(SCRATCH_BYTES)
        first = 0  # data row of the batch
        for batch in self._arrow.to_batches():
            end = first + batch.num_rows
            if end + 1 > self._plain_records:
                newline, scratch = chunks_hold(batch.columns, b"\n", scratch)
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


def utf8_lengths(column: pa.ChunkedArray) -> np.ndarray:
    """UTF-8 byte length of each string in `column` (int32/int64), from its offsets."""
    return pc.binary_length(column).to_numpy()


def utf8_length_bounds(column: pa.ChunkedArray) -> tuple[int, int]:
    """(shortest, longest) UTF-8 byte length in `column`, (0, 0) when it is empty: an Arrow aggregate, no
    numpy array (one would cost a page fault per 4 KiB in a fresh process)."""
    extremes = pc.min_max(pc.binary_length(column)).as_py()
    return (extremes["min"] or 0, extremes["max"] or 0)



def chunks_hold(chunks: list[pa.Array], needle: bytes, scratch: bytearray) -> tuple[bool, bytearray]:
    """Whether a value of one of `chunks` holds `needle` (one byte), and the scratch buffer (grown if needed)."""
    for chunk in chunks:
        size, scratch = copy_values(chunk, scratch)
        if scratch.find(needle, 0, size) >= 0:
            return True, scratch
    return False, scratch


def copy_values(chunk: pa.Array, scratch: bytearray) -> tuple[int, bytearray]:
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
