"""Cells that swallowed whole records: a quote opened and never closed where it was meant to be, so the reader
took the next line(s) into the cell until the next quote (the file still parses, one record short).

Used by the CSV checks (`taskbuilder.validation`): only cells holding a line break are looked at.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID_LIKE = re.compile(r"\S{1,40}")
LINE_BREAK = re.compile(r"\r\n|\r|\n")
SCAN_WINDOW_BYTES = 8 << 20
"""Bytes copied at a time to look for a line break with ``bytes.find`` (memchr): ~10x the speed of a regex search
over the same memoryview (B1), for 8 MiB of memory at most."""


def _reads_as_record(line: str, delimiter: str, least: int) -> bool:
    try:
        fields = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a quote the line does not close: not a record on its own
        return False
    return len(fields) >= least and ID_LIKE.fullmatch(fields[0]) is not None


def _may_hold_line_break(column: pa.ChunkedArray) -> bool:
    """False only when no cell's characters hold a ``\n`` byte: each chunk's character bytes (the span its
    offsets name) scanned in place, ~10x faster than matching every cell, and most files have no line break in
    any cell. A chunk of another layout than ``string``/``large_string`` counts as may."""
    for chunk in column.chunks:
        if chunk.type not in (pa.string(), pa.large_string()):
            return True
        _, offsets, data = chunk.buffers()
        if data is None or not len(chunk):
            continue
        bounds = np.frombuffer(offsets, dtype=np.int32 if chunk.type == pa.string() else np.int64)
        start, end = int(bounds[chunk.offset]), int(bounds[chunk.offset + len(chunk)])
        if _holds_newline(memoryview(data), start, end):
            return True
    return False


def _holds_newline(data: memoryview, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` holds a ``\n`` byte, looked for :data:`SCAN_WINDOW_BYTES` at a time."""
    for window in range(start, end, SCAN_WINDOW_BYTES):
        if bytes(data[window:min(window + SCAN_WINDOW_BYTES, end)]).find(b"\n") >= 0:
            return True
    return False


def cells_holding_records(column: pa.ChunkedArray, delimiter: str, width: int) -> tuple[np.ndarray, dict[int, int]]:
    """Rows (0-based) whose cell holds a line break followed by a line that reads as a record of the file
    (`delimiter`-separated, CSV quoting: at least `width` fields, or `width` - 1 in a table of 3 or more columns,
    as the line the quote closes in lends its last fields to the outer record; its first field id-like: no
    spaces, at most 40 characters), and per such row how many such lines its cell holds.

    A table of one column is never flagged (every line reads as one field)."""
    if width < 2:
        return np.zeros(0, dtype=np.int64), {}
    least = width - 1 if width >= 3 else width
    if not _may_hold_line_break(column):
        return np.zeros(0, dtype=np.int64), {}
    candidates = np.flatnonzero(pc.match_substring(column, "\n").to_numpy(zero_copy_only=False))
    found: dict[int, int] = {}
    for row in candidates.tolist():
        later_lines = LINE_BREAK.split(column[row].as_py())[1:]
        records = sum(1 for line in later_lines if _reads_as_record(line, delimiter, least))
        if records:
            found[row] = records
    return np.array(sorted(found), dtype=np.int64), found
