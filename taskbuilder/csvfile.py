"""Reading a dataset file exactly as written: the one entry point, `load_table`, and its choice of path.

`load_table(path)` reads a CSV or TSV file as text (every cell a string exactly as written: no whitespace
stripping, no NA conversion, a `\\r\\n` inside a quoted cell stays) into a `Table`
(`taskbuilder/csv_table.py`): the header as written (duplicates and blanks kept), the data cells by
position, each record's field count and the physical line where it starts, the encoding, and the byte
spans that did not decode. It knows no checks: it describes the file, the checks judge it.

Dialects:
- CSV (RFC 4180): comma (or a `delimiter_hint` such as ";"), double-quote quoting, quoted fields may hold
  line breaks and doubled quotes, so a record can span several physical lines.
- TSV (IANA text/tab-separated-values): `.tsv` files, `.txt`/other files whose first line has a tab, or
  `delimiter_hint="\\t"`. No quoting at all; records end at `\\n` only (a `\\r` before it is part of the
  line end; U+0085 inside a cell is text, not a line break).

Encoding: UTF-8, with or without a byte-order mark (the BOM is not part of the text). Other encodings
only when named (the job spec's `dataset.encoding`); otherwise the undecodable bytes are listed.

Two paths, one result (`tests/unit/test_csv_fast_path.py` holds them to the same tables and problems):
- Fast path (`taskbuilder/csv_fast_path.py`; a UTF-8 file, the common case): `pyarrow.csv.read_csv` reads every record as Arrow strings
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
- Slow path (`taskbuilder/csv_slow_path.py`; any other file, or `load_table(..., fast=False)` / `FAST_PATH = False`): the whole file is
  read and decoded in memory; record structure is found with vectorised numpy passes over the bytes
  (delimiters and newlines outside quotes, by quote parity); pandas' C parser reads the cells. Where the
  two disagree (a record with too many fields, pandas dropping fields), and wherever the parity scan
  can misplace records even when the counts agree (a quote where RFC 4180 puts none, such as a stray `"`
  inside an unquoted field; a lone `\\r`), Python's `csv` module, whose rules pandas' C parser follows,
  decides: it is slower and only runs on those error paths.

The file to upload is prepared in `taskbuilder/upload_preparation.py`.
"""

from __future__ import annotations

from pathlib import Path

from taskbuilder.csv_fast_path import read_fast
from taskbuilder.csv_slow_path import read_slow
from taskbuilder.csv_table import Table

# The fast path (pyarrow) is tried first for UTF-8 files; False: always the slow path (tests compare the two).
FAST_PATH = True


def load_table(path: str | Path, *, encoding: str | None = None, delimiter_hint: str | None = None,
               max_undecodable: int = 20, fast: bool | None = None) -> Table:
    """Read a CSV/TSV dataset file as text. `encoding`: a codec name when the file is not UTF-8.

    `fast`: try the pyarrow fast path first (see the module docstring); None follows the module switch
    `FAST_PATH`, False forces the slow path. Both give the same `Table` (contents; `read_path` says which ran).
    `delimiter_hint`: see `taskbuilder.csv_dialect.sniff_delimiter`. Raises `CsvReadError` when the file cannot be read, and
    `ValueError` for a `delimiter_hint` that is not one character. Never raises for bad content: that is
    described by the returned `Table`, for the checks to judge.
    """
    path = Path(path)
    if (FAST_PATH if fast is None else fast) and encoding in (None, "utf-8", "utf-8-sig"):
        table = read_fast(path, encoding, delimiter_hint)
        if table is not None:
            return table
    return read_slow(path, encoding, delimiter_hint, max_undecodable)
