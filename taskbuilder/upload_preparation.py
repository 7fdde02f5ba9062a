"""The file to upload for a validated dataset file: the original when it is already UTF-8 comma CSV without a
BOM (uploaded byte for byte), else a UTF-8 CSV rewrite with pandas that is proved to read back cell for cell.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from taskbuilder.csv_table import Table
from taskbuilder.csvfile import load_table
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.validation import ValidationReport


class UploadPreparationError(Exception):
    """The file cannot be prepared for upload (it has errors, or a rewrite did not read back identically)."""



def prepare_upload(path: str | Path, report: ValidationReport, job: AnnotationJob | None, out_dir: str | Path) -> Path:
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
