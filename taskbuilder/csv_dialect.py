"""A dataset file's dialect (CSV or TSV), its delimiter, and the byte marks both read paths look for.

CSV (RFC 4180): comma (or a `delimiter_hint` such as ";"), double-quote quoting. TSV (IANA
text/tab-separated-values): `.tsv` files, `.txt`/other files whose first line has a tab, or
`delimiter_hint="\\t"`; no quoting at all.
"""

from __future__ import annotations

import re
from pathlib import Path

UTF8_BOM = b"\xef\xbb\xbf"
C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")  # U+0080..U+009F encoded as UTF-8


def sniff_delimiter(path: Path, header_line: str, delimiter_hint: str | None) -> tuple[str, str]:
    """(dialect, delimiter) for reading: the hint if given; TSV for `.tsv`, or for non-`.csv` files whose first
    line has a tab; else CSV with a comma. (A `.csv` that is really ;- or tab-separated is read as a comma CSV
    here; the checks report it using `actual_delimiter`.)"""
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


_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx or OpenDocument .ods workbook is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls workbook (OLE2)"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed"),
)


def binary_kind(path: str | Path) -> str | None:
    """What binary format the file starts like (by its first bytes), or None for anything else."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    return next((kind for signature, kind in _BINARY_SIGNATURES if head.startswith(signature)), None)


def starts_utf16(path: str | Path) -> bool:
    """Whether the file starts with a UTF-16 byte-order mark."""
    with open(path, "rb") as file:
        return file.read(2) in (b"\xff\xfe", b"\xfe\xff")
