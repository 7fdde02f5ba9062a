"""CSV checks before upload: every problem of a dataset file in one pass, each with its place and a fix.

`validate_csv(path, job=None, *, delimiter_hint=None) -> ValidationReport`. The file is read as text by
`taskbuilder.csvfile.load_table` (cell text never altered): a UTF-8 file by its pyarrow fast path, which keeps
the cells as Arrow strings, anything else (or a file whose problems need byte-level detail: ragged or empty
records, bad bytes, an open quote, NULs) by its slow path (numpy record scan + pandas C parser). The checks
are the same for both: vectorised passes over each column's Arrow strings (`Table.column`; pyarrow.compute
and numpy on byte lengths, hashes and value sets), never Python loops over rows or per-cell Python strings;
a value-dependent rule (attention marks) runs once per distinct value. Physical line numbers are only
computed when a problem names a record. With a job spec, its dataset limits, encoding, id/gold/attention
columns and the columns its batch_items reference are checked too.

Places: `record` is the 1-based data record (the header is record 0 and is not counted), `line` the 1-based
physical line where that record starts. They differ when a quoted field holds line breaks. `column` is the
column name (or `#<n>`, 1-based, for a field beyond the header).

Problem codes (stable strings; severity error blocks the upload, warning does not):

| code                         | severity | meaning                                                                     |
|------------------------------|----------|-----------------------------------------------------------------------------|
| empty_file                   | error    | the file has no bytes (or only blank lines / a BOM)                         |
| header_only                  | error    | a header but no data records                                                |
| duplicate_column             | error    | two columns share a name                                                    |
| blank_column_name            | error    | a column has an empty name                                                  |
| column_name_whitespace       | warning  | a column name starts or ends with spaces                                    |
| column_names_differ_in_case  | warning  | two column names differ only in upper/lower case (e.g. `Text` and `text`)   |
| column_names_look_alike      | warning  | two column names look the same but are different characters (NFC/NFD: é written as e + U+0301) |
| wrong_delimiter              | error    | a `.csv` file that is semicolon- or tab-separated                           |
| undecodable_bytes            | error    | bytes that are not UTF-8 (or not in the spec's `dataset.encoding`)          |
| not_text                     | error    | the file is a spreadsheet, archive or other binary format, not text: export it as CSV |
| nul_bytes                    | error    | NUL characters: the file is UTF-16 (without BOM) or binary                  |
| encoding_mismatch            | error    | `dataset.encoding` is set but the file is UTF-8 with non-ASCII text         |
| unclosed_quote               | error    | a quoted field is never closed: the rest of the file would be one cell      |
| ragged_row                   | error    | a record with more or fewer fields than the header                          |
| empty_row                    | error    | a record whose cells are all empty (including a blank line)                 |
| missing_column               | error    | a column the job needs (id, gold, attention check, dataset_field) is absent |
| id_empty                     | error    | an empty cell in the id column                                              |
| id_duplicate                 | error    | an id used by more than one record                                          |
| id_look_alike                | warning  | two ids look the same but are different characters (NFC/NFD)                |
| gold_value_unknown           | error    | a gold cell that is not an option value of the first choice instruction     |
| task_group_empty             | error    | an empty META_TASK_GROUP_ID cell                                            |
| no_visible_columns           | error    | every column is a META_ column: participants would see no data              |
| cell_too_long                | error    | a cell longer than `max_cell_chars` characters                              |
| too_many_rows                | error    | more data records than `max_rows`                                           |
| c1_control_chars             | warning  | U+0080–U+009F in a cell: the text looks mis-encoded                         |
| tasks_per_group_ignored      | warning  | META_TASK_GROUP_ID present and tasks_per_group > 1: the column decides      |
| attention_check_without_gold | warning  | a record marked as attention check (not empty/"0"/"false") has no gold      |

Not problems, reported as information: `meta_columns` (hidden from participants, API doc §2.6),
`task_group_column` (`META_TASK_GROUP_ID`, custom task grouping), `encoding`, `dialect`, `bom`.
A check that finds many records reports the first `MAX_PROBLEMS_PER_CHECK` of them one by one and then one
summary problem (record None) with the total.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from taskbuilder.csv_dialect import actual_delimiter, binary_kind, starts_utf16
from taskbuilder.csv_table import Table
from taskbuilder.csvfile import load_table
from taskbuilder.lookalikes import fold_name, forms_in_words, look_alike_ids, missing_column_hint, nfc
from taskbuilder.jobspec import META_PREFIX, TASK_GROUP_COLUMN, AnnotationJob

MAX_PROBLEMS_PER_CHECK = 20
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_CELL_CHARS = 10_000
C1_PATTERN = "[\u0080-\u009f]"


@dataclass
class Problem:
    """One finding: `code` (see the table above), `severity` "error" | "warning", where (`record`, `line`,
    `column`; None when not about one), `message` (what is wrong) and `hint` (what to do)."""

    code: str
    severity: str
    message: str
    hint: str
    record: int | None = None
    line: int | None = None
    column: str | None = None


@dataclass
class ValidationReport:
    """The result of `validate_csv`: `ok` (no errors), `rows` (data records), `columns` (header as written),
    `problems`, `dialect` "csv" | "tsv", `delimiter`, `encoding`, `bom`, `meta_columns`, `task_group_column`."""

    path: str
    ok: bool
    rows: int
    columns: list[str]
    problems: list[Problem]
    dialect: str
    delimiter: str
    encoding: str
    bom: bool = False
    meta_columns: list[str] = field(default_factory=list)
    task_group_column: str | None = None

    @property
    def errors(self) -> list[Problem]:
        """The problems of severity error."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems of severity warning."""
        return [p for p in self.problems if p.severity == "warning"]

    def to_dict(self) -> dict:
        """JSON-ready: {"ok","rows","columns","problems":[{code,severity,record,line,column,message,hint}], and the
        information fields path, dialect, delimiter, encoding, bom, meta_columns, task_group_column}."""
        return {
            "ok": self.ok, "rows": self.rows, "columns": list(self.columns),
            "problems": [{k: asdict(p)[k] for k in ("code", "severity", "record", "line", "column", "message", "hint")}
                         for p in self.problems],
            "path": self.path, "dialect": self.dialect, "delimiter": self.delimiter, "encoding": self.encoding,
            "bom": self.bom, "meta_columns": list(self.meta_columns), "task_group_column": self.task_group_column,
        }

    def format_text(self) -> str:
        """For people: a summary line, then one line per problem `file:line: record R, column "C": severity
        [code] message` and an indented `fix:` line."""
        delimiter = "tab" if self.delimiter == "\t" else repr(self.delimiter)
        verdict = "OK" if self.ok else "NOT OK"
        lines = [f"{self.path}: {verdict}: {self.rows:,} record(s), {len(self.columns)} column(s) "
                 f"({self.dialect}, delimiter {delimiter}, {self.encoding}{', BOM stripped' if self.bom else ''}); "
                 f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        if self.meta_columns:
            lines.append(f"  hidden from participants (META_): {', '.join(self.meta_columns)}")
        if self.task_group_column:
            lines.append(f"  task groups come from column {self.task_group_column}")
        for p in self.problems:
            where = [f"record {p.record}"] if p.record is not None else []
            if p.column is not None:
                where.append(f'column "{p.column}"')
            location = f"{self.path}:{p.line}" if p.line is not None else self.path
            lines.append(f"{location}: {', '.join(where) + ': ' if where else ''}{p.severity} [{p.code}] {p.message}")
            lines.append(f"    fix: {p.hint}")
        return "\n".join(lines)


class _Checks:
    """Collects problems for one table; record numbers and lines come from the table's record scan."""

    def __init__(self, table: Table):
        self.table = table
        self.problems: list[Problem] = []

    def add(self, code: str, severity: str, message: str, hint: str, *, record: int | None = None,
            column: str | None = None, line: int | None = None) -> None:
        if line is None and record is not None:
            line = self.table.line_of(record)
        self.problems.append(Problem(code, severity, message, hint, record, line, column))

    def per_record(self, code: str, severity: str, rows: np.ndarray, column: str | None, message, hint: str) -> None:
        """One problem per record in `rows` (0-based data row positions), the first MAX_PROBLEMS_PER_CHECK, then
        a summary. `message(row)` gives the text for one record."""
        for row in rows[:MAX_PROBLEMS_PER_CHECK]:
            self.add(code, severity, message(int(row)), hint, record=int(row) + 1, column=column)
        if len(rows) > MAX_PROBLEMS_PER_CHECK:
            more = len(rows) - MAX_PROBLEMS_PER_CHECK
            self.add(code, severity, f"{more:,} more record(s) like this ({len(rows):,} in all; first shown above)",
                     hint, column=column)


def _column_label(header: list[str], position: int) -> str:
    """The column's name, or `#<n>` (1-based) when it has none."""
    name = header[position] if position < len(header) else ""
    return name if name.strip() else f"#{position + 1}"


def validate_csv(path: str | Path, job: AnnotationJob | None = None, *, delimiter_hint: str | None = None) -> ValidationReport:
    """Check a dataset file (CSV or TSV; see `taskbuilder.csvfile`) and report every problem in one pass.

    `job`: the spec whose dataset settings apply (limits, encoding, delimiter, id/gold/attention columns,
    referenced columns); without it, the defaults (max_rows 100,000, max_cell_chars 10,000, UTF-8, detected
    delimiter). `delimiter_hint`: ',', ';' or '\\t' (or 'tab') to override detection and the job's
    `dataset.delimiter`. Raises `taskbuilder.csvfile.CsvReadError` only when the file cannot be read; bad
    content is reported, never raised. API doc §2.6 (META_ columns, task grouping).
    """
    dataset = job.dataset if job is not None else None
    encoding = dataset.encoding if dataset is not None else None
    if delimiter_hint is None and dataset is not None:
        delimiter_hint = dataset.delimiter
    table = load_table(path, encoding=encoding, delimiter_hint=delimiter_hint)
    kind = binary_kind(path)
    if kind is not None:
        checks = _Checks(table)
        checks.add("not_text", "error", f"the file is {kind}, not a text CSV", "open it in its program and export or "
                   "save it as CSV UTF-8 (comma-separated), then use that file", line=1)
        return _report(table, checks, [])
    if encoding is None and table.undecodable and table.undecodable[0].offset == 0 and starts_utf16(path):
        checks = _Checks(table)
        checks.add("undecodable_bytes", "error", "the file is UTF-16 (it starts with a UTF-16 byte-order mark), "
                   "not UTF-8", "save it as UTF-8 (CSV UTF-8 in Excel), or set dataset.encoding: utf-16 in the job "
                   "spec to transcode it for upload", line=1)
        return _report(table, checks, [])
    wrong_delimiter = None
    if delimiter_hint is None and table.dialect == "csv" and table.delimiter == ",":
        wrong_delimiter = actual_delimiter(table.header_line)
        if wrong_delimiter is not None:  # report it, and check the rest as the file really is
            table = None  # not held twice
            table = load_table(path, encoding=encoding, delimiter_hint=wrong_delimiter)
    checks = _Checks(table)
    header = table.header

    if bool(table.blank.all()):  # no records, or blank lines only
        checks.add("empty_file", "error", "the file is empty", "export the data again: the file needs a header "
                   "line with column names, then one line per datapoint", line=1)
        return _report(table, checks, header)

    _check_encoding(checks, path, encoding)
    if table.nul_count:
        line = table.first_nul_line
        record = int(np.searchsorted(table.start_lines, line, side="right")) - 1
        checks.add("nul_bytes", "error", f"the file holds {table.nul_count:,} NUL character(s), the first on line "
                   f"{line}: it is probably UTF-16 or binary, not UTF-8 text", "save the file as UTF-8 text (CSV UTF-8), "
                   "or set dataset.encoding (e.g. utf-16) in the job spec", record=record if record > 0 else None,
                   line=line)
    if wrong_delimiter is not None:
        name = "semicolon" if wrong_delimiter == ";" else "tab"
        checks.add("wrong_delimiter", "error", f"this .csv file is {name}-separated, not comma-separated (the header "
                   f"line has {table.header_line.count(wrong_delimiter)} {name}(s) and {table.header_line.count(',')} "
                   "comma(s)); the other checks read it as " + ("TSV" if name == "tab" else f"{name}-separated CSV"),
                   "save it as comma-separated CSV" + (" or rename it to .tsv" if name == "tab" else "") +
                   f", or set dataset.delimiter: {'tab' if name == 'tab' else repr(wrong_delimiter)} in the job spec "
                   "to have it converted to CSV for upload", line=1)
    _check_header(checks)
    if table.unclosed_quote_record is not None:
        record = table.unclosed_quote_record
        checks.add("unclosed_quote", "error", "a quoted field starts here and is never closed, so the rest of the "
                   "file reads as one cell", 'close the quote with a second " (write "" for a quote inside a quoted '
                   "field)", record=record if record > 0 else None, line=table.line_of(record))
    _check_records(checks)
    if table.rows == 0:
        checks.add("header_only", "error", "the file has a header but no data records",
                   "add one line per datapoint below the header", line=1)
        return _report(table, checks, header)

    _check_columns(checks, job)
    _check_cells(checks, job)
    max_rows = dataset.max_rows if dataset is not None else DEFAULT_MAX_ROWS
    if table.rows > max_rows:
        checks.add("too_many_rows", "error", f"{table.rows:,} data records, more than max_rows {max_rows:,}",
                   "split the file into several jobs, or raise dataset.max_rows in the job spec", record=max_rows + 1)
    return _report(table, checks, header)


def _report(table: Table, checks: _Checks, header: list[str]) -> ValidationReport:
    problems = sorted(checks.problems, key=lambda p: (p.line is None, p.line or 0))
    meta = [c for c in header if c.startswith(META_PREFIX)]
    return ValidationReport(
        path=str(table.path), ok=not any(p.severity == "error" for p in problems), rows=table.rows,
        columns=list(header), problems=problems, dialect=table.dialect, delimiter=table.delimiter,
        encoding=table.encoding, bom=table.bom, meta_columns=meta,
        task_group_column=TASK_GROUP_COLUMN if TASK_GROUP_COLUMN in header else None,
    )


def _check_encoding(checks: _Checks, path: str | Path, encoding: str | None) -> None:
    table = checks.table
    for span in table.undecodable:
        record = int(np.searchsorted(table.start_lines, span.line, side="right")) - 1
        column = None
        if record > 0:
            row = table.cells.iloc[record - 1, : len(table.header)]
            bad = [table.header[i] for i, v in enumerate(row) if "\ufffd" in v]
            column = bad[0] if bad else None
        in_cp1252 = span.raw.decode("cp1252", errors="replace")
        if encoding:
            hint = f"the file does not match dataset.encoding {encoding}: fix the setting or the file"
        else:
            hint = (f"save the file as UTF-8 (in Windows-1252 this byte would be {in_cp1252!r}), or set "
                    "dataset.encoding (e.g. cp1252) in the job spec to transcode it for upload")
        checks.add("undecodable_bytes", "error", f"byte(s) {span.raw.hex(' ')} at byte offset {span.offset} are not "
                   f"valid {encoding or 'UTF-8'}", hint, record=record if record > 0 else None, column=column,
                   line=span.line)
    if table.undecodable_total > len(table.undecodable):
        checks.add("undecodable_bytes", "error", f"{table.undecodable_total:,} undecodable byte sequence(s) in all; "
                   "the first are listed", "re-save the file as UTF-8")
    if encoding and encoding not in ("utf-8", "utf-8-sig"):
        raw = Path(path).read_bytes()
        if not raw.isascii():
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return
            checks.add("encoding_mismatch", "error", f"dataset.encoding is {encoding}, but the file is valid UTF-8 "
                       "with non-ASCII text: transcoding it would garble that text", "remove dataset.encoding from "
                       "the job spec (UTF-8 is the default)", line=1)


def _check_header(checks: _Checks) -> None:
    header = checks.table.header
    seen: dict[str, int] = {}
    folded: dict[str, tuple[int, str]] = {}  # casefolded name -> (first position, name as written)
    for position, name in enumerate(header):
        label = _column_label(header, position)
        if not name.strip():
            checks.add("blank_column_name", "error", f"column {position + 1} has no name",
                       "give every column a name in the header line", column=label, line=1)
        elif name != name.strip():
            checks.add("column_name_whitespace", "warning", f"column name {name!r} starts or ends with spaces",
                       "remove the spaces (the job spec and the report use the exact name)", column=name, line=1)
        if name in seen and name.strip():
            checks.add("duplicate_column", "error", f"column name {name!r} is used by columns {seen[name] + 1} and "
                       f"{position + 1}", "rename one of them: column names must be unique", column=name, line=1)
        elif name.strip() and fold_name(name) in folded and folded[fold_name(name)][1] != name:
            first, other = folded[fold_name(name)]
            if name.casefold() == other.casefold() or nfc(name) != nfc(other):
                checks.add("column_names_differ_in_case", "warning", f"columns {first + 1} ({other!r}) and {position + 1} "
                           f"({name!r}) differ only in upper/lower case; participants see both",
                           "if they are the same data exported twice, delete one; else give them clearer names "
                           "(names are exact: the job spec must match the case)", column=name, line=1)
            else:
                checks.add("column_names_look_alike", "warning", f"columns {first + 1} ({ascii(other)}) and {position + 1} "
                           f"({ascii(name)}) look the same but are written with different Unicode characters "
                           f"({forms_in_words(other, name)})", "rename one of them; save the file with composed characters "
                           "(NFC), as most editors do", column=name, line=1)
        seen.setdefault(name, position)
        folded.setdefault(fold_name(name), (position, name))


def _check_records(checks: _Checks) -> None:
    table = checks.table
    width = len(table.header)
    counts = table.field_counts[1:]
    blank = table.blank[1:]
    if table.unclosed_quote_record is not None:
        counts = counts[: max(table.unclosed_quote_record - 1, 0)]
    separator = "tab" if table.delimiter == "\t" else f"'{table.delimiter}'"
    if table.dialect == "tsv":
        many_hint = "TSV has no quoting: remove the tab from the text, or save the file as CSV with quoted fields"
    else:
        many_hint = (f'a field holds an unquoted {separator}: put the field in double quotes ("..."), '
                     f"or remove the extra {separator}")
    few_hint = (f"add the missing fields (an empty field still needs its {separator})" +
                ("" if table.dialect == "tsv" else ", or quote a field that holds a line break"))
    other = np.flatnonzero(counts != width)  # usually none: one pass, then only those records
    other = other[~blank[other]]
    too_many = other[counts[other] > width]
    too_few = other[counts[other] < width]
    checks.per_record("ragged_row", "error", too_many, None,
                      lambda r: f"too many fields: {counts[r]} instead of {width} (the header's)", many_hint)
    checks.per_record("ragged_row", "error", too_few, None,
                      lambda r: f"too few fields: {counts[r]} instead of {width} (the header's)", few_hint)


def _check_columns(checks: _Checks, job: AnnotationJob | None) -> None:
    table = checks.table
    header = table.header
    if header and all(name.startswith(META_PREFIX) for name in header):
        checks.add("no_visible_columns", "error", "every column is a META_ column, hidden from participants",
                   "add at least one column without the META_ prefix for participants to annotate", line=1)
    if job is None:
        return
    for name in sorted(job.required_columns() - set(header)):
        role = {job.dataset.id_column: "id_column", job.dataset.gold_column: "gold_column",
                job.dataset.attention_check_column: "attention_check_column"}.get(name, "a batch_items dataset_field")
        hint = missing_column_hint(name, header, role)
        checks.add("missing_column", "error", f"the job needs column {name!r} ({role}) but the file has no such "
                   "column", hint, column=name, line=1)


def _first(header: list[str], name: str | None) -> int | None:
    return header.index(name) if name is not None and name in header else None


def _as_bool(mask: pa.ChunkedArray) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _check_cells(checks: _Checks, job: AnnotationJob | None) -> None:
    table = checks.table
    header = table.header
    width = len(header)
    rows = table.rows
    dataset = job.dataset if job is not None else None
    columns = [table.column(position) for position in range(width)]
    bounds = [table.byte_length_bounds(position) for position in range(width)]

    if width and not any(low > 0 for low, _ in bounds):
        empty = np.logical_and.reduce([table.byte_lengths(position) == 0 for position in range(width)])
    else:  # a column without empty cells: no record is empty
        empty = np.zeros(rows, dtype=bool)
    checks.per_record("empty_row", "error", np.flatnonzero(empty), None,
                      lambda r: "the record is empty" + (" (a blank line)" if table.blank[r + 1] else ""),
                      "delete the empty line: every record becomes a datapoint")

    max_chars = dataset.max_cell_chars if dataset is not None else DEFAULT_MAX_CELL_CHARS
    for position in range(width):
        column = columns[position]
        # a cell has at least as many bytes as characters: count characters only where the bytes exceed the limit
        too_many_bytes = bounds[position][1] > max_chars
        candidates = np.flatnonzero(table.byte_lengths(position) > max_chars) if too_many_bytes else np.zeros(0, int)
        chars = pc.utf8_length(column.take(candidates)).to_numpy() if len(candidates) else np.zeros(0, dtype=np.int64)
        too_long = chars > max_chars
        char_counts = dict(zip(candidates[too_long].tolist(), chars[too_long].tolist()))
        checks.per_record("cell_too_long", "error", candidates[too_long], _column_label(header, position),
                          lambda r, char_counts=char_counts: f"cell has {char_counts[r]:,} characters, more than "
                                                             f"max_cell_chars {max_chars:,}",
                          "shorten the text, or raise dataset.max_cell_chars in the job spec")
        if table.has_c1_controls:
            c1_rows = np.flatnonzero(_as_bool(pc.match_substring_regex(column, C1_PATTERN)))
            checks.per_record("c1_control_chars", "warning", c1_rows, _column_label(header, position),
                              lambda r, column=column: "cell contains " + ", ".join(sorted(
                                  {f"U+{ord(ch):04X}" for ch in column[r].as_py() if 0x80 <= ord(ch) <= 0x9F})) +
                              " (C1 control characters): the text looks mis-encoded",
                              "participants see it as is: U+0080–U+009F are usually Windows-1252 punctuation "
                              "(U+0096 '–', U+0097 '—', U+0085 '…') decoded as Latin-1; fix the source text if "
                              "that is not intended")

    id_position = _first(header, dataset.id_column if dataset is not None else None)
    if id_position is not None:
        ids = columns[id_position]
        name = header[id_position]
        present = table.byte_lengths(id_position) != 0
        checks.per_record("id_empty", "error", np.flatnonzero(~present & ~empty), name,
                          lambda r: "the id cell is empty", "give every record a unique id")
        encoded = pc.dictionary_encode(ids.combine_chunks())
        repeated = np.zeros(rows, dtype=bool)
        if len(encoded.dictionary) < rows:  # some id is used twice
            codes = encoded.indices.to_numpy()
            _, first_use = np.unique(codes, return_index=True)  # the record where each distinct id is first used
            repeated[:] = True
            repeated[first_use] = False
        checks.per_record("id_duplicate", "error", np.flatnonzero(repeated & present), name,
                          lambda r: f"id {ids[r].as_py()!r} is also used by record {int(first_use[codes[r]]) + 1}",
                          "give every record a unique id")
        alike, first_of = look_alike_ids(ids, repeated | ~present)
        checks.per_record("id_look_alike", "warning", alike, name,
                          lambda r: f"id {ascii(ids[r].as_py())} looks the same as id {ascii(ids[int(first_of[r])].as_py())} of "
                                    f"record {int(first_of[r]) + 1}: they differ only in how accents are written (NFC/NFD)",
                          "write both the same way (composed, NFC) if they are one id; else make them look different")

    group_position = _first(header, TASK_GROUP_COLUMN)
    if group_position is not None:
        no_group = (table.byte_lengths(group_position) == 0) & ~empty
        checks.per_record("task_group_empty", "error", np.flatnonzero(no_group), TASK_GROUP_COLUMN,
                          lambda r: "the task group cell is empty",
                          "give every record a task group id (records with the same id form one task group)")

    if job is None:
        return
    if group_position is not None and job.batch.tasks_per_group > 1:
        checks.add("tasks_per_group_ignored", "warning", f"the file has {TASK_GROUP_COLUMN}, so task groups follow "
                   f"that column and batch.tasks_per_group {job.batch.tasks_per_group} is not used",
                   f"remove {TASK_GROUP_COLUMN} to group records randomly, or remove tasks_per_group",
                   column=TASK_GROUP_COLUMN, line=1)
    gold_name = job.dataset.gold_column_in(header)
    gold_position = _first(header, gold_name)
    attention_position = _first(header, job.dataset.attention_check_column)
    if attention_position is not None:
        marks = columns[attention_position]
        # the rule is Python's (str.strip, str.lower), applied once per distinct mark
        marking = [value for value in pc.unique(marks).to_pylist()
                   if value.strip().lower() not in ("", "0", "false")]
        marked = _as_bool(pc.is_in(marks, value_set=pa.array(marking, type=marks.type)))
        no_gold = marked & ((table.byte_lengths(gold_position) == 0) if gold_position is not None else True)
        checks.per_record("attention_check_without_gold", "warning", np.flatnonzero(no_gold & ~empty),
                          header[attention_position], lambda r: "an attention-check record has no gold answer, so "
                          "it cannot be scored", f"write the correct option value in {gold_name or 'the gold column'} "
                          "(dataset.gold_column), or unmark the record")
    choices = job.choice_instructions()
    if gold_position is not None and choices:
        values = [option.value for option in choices[0].options]
        labels = {option.label: option.value for option in choices[0].options}
        gold = columns[gold_position]
        known = _as_bool(pc.is_in(gold, value_set=pa.array(values, type=gold.type)))
        unknown = np.flatnonzero((table.byte_lengths(gold_position) != 0) & ~known & ~empty)
        checks.per_record("gold_value_unknown", "error", unknown, gold_name,
                          lambda r: f"gold value {gold[r].as_py()!r} is not an option value of the first choice "
                                    f"instruction ({', '.join(map(repr, values))})" +
                                    (f"; it is the label of {labels[gold[r].as_py()]!r}"
                                     if gold[r].as_py() in labels else ""),
                          "write the option value (not the label) of the correct answer, or leave the cell empty")
