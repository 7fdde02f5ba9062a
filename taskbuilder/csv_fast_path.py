"""The fast path of reading a dataset file: a UTF-8 file read by `pyarrow.csv.read_csv`.

Every record is read as Arrow strings (no nulls, UTF-8 checked, empty lines kept, blocks parsed on several
threads). The file reaches pyarrow through a reader that looks at each block while it is in the CPU cache
(memchr): NUL bytes, C1 controls, and whether there is any `\\r` at all. The cells stay in Arrow memory.

`read_fast` returns None, so that the slow path (`taskbuilder.csv_slow_path`) reads the file, when pyarrow
refuses it (ragged records, bad UTF-8, an empty file or a single line without line end, a record longer
than a block) or when the file holds anything whose report needs the byte-level detail: an all-empty
record or blank line, a NUL, a `\\r` not followed by `\\n` (inside a CSV cell; anywhere in a TSV), or a
last cell that may run to the end of the file inside an open quote (pyarrow accepts those silently).
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from taskbuilder.csv_dialect import C1_UTF8, UTF8_BOM, sniff_delimiter
from taskbuilder.csv_table import SCRATCH_BYTES, Table, copy_values, utf8_length_bounds, utf8_lengths

# pyarrow's read block: a record longer than this sends the file to the slow path (tests make it small).
ARROW_BLOCK_BYTES = 1 << 20


def read_fast(path: Path, encoding: str | None, delimiter_hint: str | None) -> Table | None:
    """The fast path for a UTF-8 file (`encoding` None, "utf-8" or "utf-8-sig"): the `Table` read by pyarrow,
    or None when the slow path must read it (see the module docstring for when). Never raises for the
    file: an unreadable one is left to the slow path, which names the reason."""
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
    bounds = [utf8_length_bounds(column) for column in arrow.columns]
    if not any(low > 0 for low, _ in bounds):  # some record may be all empty: look closer
        if not np.logical_or.reduce([utf8_lengths(column) != 0 for column in arrow.columns]).all():
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
                held = sys.getrefcount(source)
                try:
                    table = pacsv.read_csv(source, read_options=read_options, parse_options=parse_options,
                                           convert_options=convert_options)
                finally:
                    _wait_until_arrow_lets_go(source, held)
                if source.complete or source.read(1) == b"":
                    return table, source
        except (pa.ArrowException, OSError):
            continue
    return None


def _cells_hold_lone_cr(arrow: pa.Table) -> bool:
    """Whether a cell holds a `\\r` not followed by `\\n` (only asked when the file holds a `\\r`)."""
    scratch = bytearray(SCRATCH_BYTES)
    for column in arrow.columns:
        for chunk in column.chunks:
            size, scratch = copy_values(chunk, scratch)
            if scratch.find(b"\r", 0, size) >= 0 and (pc.sum(pc.count_substring(chunk, "\r"))
                                                      != pc.sum(pc.count_substring(chunk, "\r\n"))):
                return True
    return False


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


ARROW_RELEASE_WAIT_SECONDS = 10.0


def _wait_until_arrow_lets_go(source: "_ScanningReader", held: int) -> None:
    """Wait until pyarrow has dropped its reference to `source` (its reference count is back to `held`).

    pyarrow's CSV reader holds the Python stream it reads, and the last of its references may be dropped by
    one of pyarrow's own threads after `read_csv` has returned. Dropping it takes the GIL; when that happens
    while the interpreter is shutting down, the thread is ended inside C++ code and the process aborts
    (`terminate called without an active exception`, exit 134, after the work was done: seen at random
    under load, a core dump showed the reader's destructor on a pyarrow thread). Sleeping releases the GIL
    so that thread can finish now."""
    deadline = time.monotonic() + ARROW_RELEASE_WAIT_SECONDS
    while sys.getrefcount(source) - 1 > held and time.monotonic() < deadline:  # - 1: this call's own reference
        time.sleep(0.0005)
