"""Turn a batch report (wide CSV) into a tidy "responses" table, one row per response.

Source: ``GET /api/v1/data-collection/batches/{id}/report/`` (API doc §5.1) in the layout fixed by the
team brief ("Report CSV"): one row per datapoint × instruction,
``DataPoint_ID,Task_Group_ID,Task_Type,Question,<original dataset columns>,Annotator1_ID,
Annotator1_Response,Annotator1_Timestamp,Annotator2_ID,...``. ``Question`` is the instruction's
``description``. Response cell encodings:

- ``free_text``: the text as typed;
- ``multiple_choice``: the selected option labels joined by ``|`` (in option order);
- ``multiple_choice_with_free_text``: JSON ``[{"label": <option label>, "explanation": <text>}]``;
- ``free_text_with_unit``: JSON ``{"value": <number as string>, "unit": <unit label>}``;
- ``file_upload``: JSON ``[{"file_name", "file_key", "file_size_mb", "content_type"}]``.

The caller downloads the report (presigned pointer or inline CSV) to a file and keeps that file byte for
byte; this module only reads it. Every cell is read as text (``dtype=str, keep_default_na=False``):
"NA", "001", "1.50" stay as typed.

Matching rows to instructions: by ``Question`` == ``description`` and ``Task_Type`` == ``type``. When two
instructions share both, the report gives no other clue, so the k-th such row of a datapoint (in report
order) is matched to the k-th such instruction (in instruction order).

Dataset columns are the header's columns between ``Question`` and the annotator block, the header's tail
of complete triples ``Annotator1_*`` … ``AnnotatorN_*`` in that order: a dataset column named like an
annotator column (``Annotator1_ID``) stays a dataset column. In the outputs, a dataset column named like
an output column (:data:`OUTPUT_COLUMNS`) gets ``_original`` appended, one way for every file
(:func:`output_column_names`).
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FIXED_COLUMNS = ["DataPoint_ID", "Task_Group_ID", "Task_Type", "Question"]
RESPONSE_COLUMNS = ["datapoint_id", "task_group_id", "instruction", "instruction_type",
                    "participant_id", "answer", "answered_at"]
LABEL_COLUMNS = ["datapoint_id", "instruction", "label", "tie", "confidence", "votes", "ds_label", "ds_confidence"]
OUTPUT_COLUMNS = tuple(dict.fromkeys([*RESPONSE_COLUMNS, *LABEL_COLUMNS]))
"""Column names the outputs put before the dataset columns (``responses.csv``, ``labels.csv``)."""
CHOICE_TYPES = ("multiple_choice", "multiple_choice_with_free_text")
_TRIPLE = ("ID", "Response", "Timestamp")


def output_column_names(dataset_columns: list[str]) -> dict[str, str]:
    """Dataset column name → its name in every output: unchanged, or, when it is one of
    :data:`OUTPUT_COLUMNS`, with ``_original`` appended (again, until the name is neither an output
    column nor another dataset column). ``participant_id`` → ``participant_id_original``."""
    taken = {*OUTPUT_COLUMNS, *dataset_columns}
    names = {}
    for column in dataset_columns:
        name = column
        if column in OUTPUT_COLUMNS:
            while name in taken:
                name += "_original"
            taken.add(name)
        names[column] = name
    return names


@dataclass(frozen=True)
class ParsedReport:
    """What :func:`read_report` found in a report.

    ``responses``: the tidy table (see :func:`parse_report`); ``datapoints``: one row per datapoint of
    the report, answered or not, in report order (``datapoint_id``, then the dataset columns under their
    output names); ``column_names``: dataset column name → output name (:func:`output_column_names`).
    """

    responses: pd.DataFrame
    datapoints: pd.DataFrame
    column_names: dict[str, str]

    @classmethod
    def from_responses(cls, responses: pd.DataFrame) -> "ParsedReport":
        """For a responses table built without its report: the datapoints are those with a response, and
        the dataset columns are named as in ``responses``."""
        columns = list(responses.columns[len(RESPONSE_COLUMNS):])
        datapoints = responses.drop_duplicates("datapoint_id")[["datapoint_id", *columns]].reset_index(drop=True)
        return cls(responses, datapoints, {c: c for c in columns})


class UnmappedAnswerWarning(UserWarning):
    """A response cell whose option label (or unit label) matches no option of its instruction; the raw
    text is kept as the answer."""


def split_joined(text: str, names: list[str]) -> list[int] | None:
    """Split ``text`` made of entries of ``names`` joined by ``|`` into the entries' positions.

    Entries may themselves contain ``|`` and may come in any order; the result is sorted (option order).
    ``""`` → ``[]``. Returns None when ``text`` is not such a join. Used for option labels (report cells)
    and option values (``answer``, gold cells).
    """
    def walk(pos: int, used: frozenset[int]) -> list[int] | None:
        for i, name in enumerate(names):
            if i in used or not name or not text.startswith(name, pos):
                continue
            end = pos + len(name)
            if end == len(text):
                return [i]
            if text[end] == "|":
                rest = walk(end + 1, used | {i})
                if rest is not None:
                    return [i, *rest]
        return None

    found = [] if text == "" else walk(0, frozenset())
    return None if found is None else sorted(found)


def _map_choice(cell: str, instruction: dict) -> str | None:
    options = instruction["options"]
    found = split_joined(cell, [o["label"] for o in options])
    return None if found is None else "|".join(options[i]["value"] for i in found)


def _map_choice_with_text(cell: str, instruction: dict) -> str | None:
    if cell == "":
        return ""
    by_label = {o["label"]: o["value"] for o in instruction["options"]}
    try:
        items = json.loads(cell)
        mapped = [{"value": by_label[item["label"]], "explanation": item["explanation"]} for item in items]
    except (ValueError, TypeError, KeyError):
        return None
    return json.dumps(mapped, ensure_ascii=False)


def _map_unit(cell: str, instruction: dict) -> str | None:
    if cell == "":
        return ""
    by_label = {u["label"]: u["value"] for u in instruction["unit_options"]}
    try:
        item = json.loads(cell, parse_float=str, parse_int=str)
        mapped = {"value": item["value"], "unit": by_label[item["unit"]]}
    except (ValueError, TypeError, KeyError):
        return None
    return json.dumps(mapped, ensure_ascii=False)


_MAPPERS = {
    "multiple_choice": _map_choice,
    "multiple_choice_with_free_text": _map_choice_with_text,
    "free_text_with_unit": _map_unit,
}


def _read_header(report_csv: Path) -> list[str]:
    with open(report_csv, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if header is None or header[:4] != FIXED_COLUMNS:
        raise ValueError(f"{report_csv}: line 1: the header must start with {','.join(FIXED_COLUMNS)}, "
                         f"found {','.join((header or [])[:4])!r}; is this a batch report CSV?")
    return header


def _annotator_triples(header: list[str], dataset_columns: list[str] | None) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Return (position of the first annotator column, [(k, id_pos, response_pos, timestamp_pos)]).

    The annotator block is the longest tail of the header made of complete triples ``Annotator1_ID,
    Annotator1_Response, Annotator1_Timestamp, …, AnnotatorN_…``; with ``dataset_columns`` (the uploaded
    CSV's header, when the report's header starts with them) it starts right after them, which also
    settles a dataset whose last columns are themselves such a triple.
    """
    tail = len(header) - 4
    counts = list(range(tail // 3, -1, -1))
    if dataset_columns is not None and header[4:4 + len(dataset_columns)] == list(dataset_columns) \
            and (tail - len(dataset_columns)) % 3 == 0:
        counts.insert(0, (tail - len(dataset_columns)) // 3)  # else the hint does not fit: go by the header
    for n in counts:
        first = len(header) - 3 * n
        if header[first:] == [f"Annotator{k}_{part}" for k in range(1, n + 1) for part in _TRIPLE]:
            return first, [(k, first + 3 * (k - 1), first + 3 * (k - 1) + 1, first + 3 * (k - 1) + 2)
                           for k in range(1, n + 1)]
    return len(header), []  # not reached: n = 0 always fits


def _instruction_of_rows(report_csv: Path, frame: pd.DataFrame, instructions: list[dict]) -> np.ndarray:
    """Index into ``instructions`` for every report row (columns 0..3 = the fixed columns)."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, ins in enumerate(instructions):
        by_key.setdefault((ins["description"], ins["type"]), []).append(i)
    keys = pd.MultiIndex.from_arrays([frame[3], frame[2]])
    occurrence = frame.groupby([0, 2, 3], sort=False).cumcount().to_numpy()
    result = np.empty(len(frame), dtype=np.int64)
    for key in keys.unique():
        rows = np.flatnonzero(keys == key)
        candidates = by_key.get(key)
        if candidates is None:
            known = "; ".join(f"{d!r} ({t})" for d, t in by_key)
            raise ValueError(f"{report_csv}: data row {rows[0] + 1}: Question {key[0]!r} with Task_Type "
                             f"{key[1]!r} matches no instruction (description, type); known: {known}. "
                             "Pass the instructions of this report's batch.")
        extra = rows[occurrence[rows] >= len(candidates)]
        if len(extra):
            raise ValueError(f"{report_csv}: data row {extra[0] + 1}: datapoint {frame.at[extra[0], 0]!r} has "
                             f"more rows for Question {key[0]!r} than there are instructions with that "
                             f"description and type ({len(candidates)})")
        result[rows] = np.asarray(candidates)[occurrence[rows]]
    return result


def _map_answers(report_csv: Path, long: pd.DataFrame, instructions: list[dict]) -> pd.Series:
    """Map raw response cells to option values per the instruction type (one mapper call per distinct
    cell); warn once per instruction about cells that match no option, keeping their raw text."""
    answer = long["raw"].copy()
    for i, instruction in enumerate(instructions):
        mapper = _MAPPERS.get(instruction["type"])
        mask = (long["instruction_index"] == i).to_numpy()
        if mapper is None or not mask.any():
            continue
        raw = long.loc[mask, "raw"]
        mapped = raw.map({cell: mapper(cell, instruction) for cell in raw.unique()})
        unmapped = mapped.isna()
        if unmapped.any():
            bad = long.loc[unmapped[unmapped].index]
            examples = "; ".join(f"data row {r + 1} {c}: {t!r}" for r, c, t in
                                 bad[["row", "column", "raw"]].head(3).itertuples(index=False))
            warnings.warn(UnmappedAnswerWarning(
                f"{report_csv}: {len(bad)} answer(s) to {instruction['description']!r} ({instruction['type']}) "
                f"match no option or unit label and are kept as raw text, e.g. {examples}"), stacklevel=3)
        answer.loc[mask] = mapped.where(~unmapped, raw)
    return answer


def parse_report(report_csv: Path, instructions: list[dict], dataset_columns: list[str] | None = None) -> pd.DataFrame:
    """Read a batch report CSV and return the tidy "responses" table (``read_report(...).responses``).

    Args:
        report_csv: the downloaded report (UTF-8 CSV, layout in the module docstring).
        instructions: the batch's instructions as API payload dicts (API doc §4: ``type``,
            ``description``, ``options`` [{label, value}], ``unit_options`` [{label, value}], ...), in order.
        dataset_columns: the uploaded CSV's column names, when known (tells the dataset columns from the
            annotator block even when the dataset's own columns look like annotator columns).

    Returns:
        One row per datapoint × instruction × participant (empty annotator triples skipped), in report
        order, columns ``datapoint_id, task_group_id, instruction`` (description), ``instruction_type,
        participant_id, answer, answered_at`` (the annotator timestamp text), then the original dataset
        columns, cells unchanged, named by :func:`output_column_names` (``answer`` → ``answer_original``). All
        cells are ``str``. ``answer``: option values for ``multiple_choice`` (several joined by ``|`` in
        option order; ``""`` = none selected); JSON ``[{"value", "explanation"}]`` for
        ``multiple_choice_with_free_text``; JSON ``{"value", "unit"}`` (unit value) for
        ``free_text_with_unit``; the cell as given for ``file_upload`` and ``free_text``.

    Raises:
        ValueError: the header is not a report header, an annotator triple has a response without a participant id, or a row matches no instruction
            (message names the file, data row and column).

    Warns:
        UnmappedAnswerWarning: a label matches no option (the raw text is kept as the answer).
    """
    return read_report(report_csv, instructions, dataset_columns).responses


def read_report(report_csv: Path, instructions: list[dict], dataset_columns: list[str] | None = None) -> ParsedReport:
    """Read a batch report CSV: the responses table of :func:`parse_report` (same arguments and errors),
    every datapoint of the report (answered or not) and the output names of the dataset columns."""
    report_csv = Path(report_csv)
    header = _read_header(report_csv)
    first_annotator, triples = _annotator_triples(header, dataset_columns)
    frame = pd.read_csv(report_csv, header=None, skiprows=1, names=list(range(len(header))), dtype=str,
                        keep_default_na=False, encoding="utf-8").fillna("")  # short rows: missing cells = ""
    instruction_index = _instruction_of_rows(report_csv, frame, instructions)

    parts = []
    for k, id_pos, response_pos, timestamp_pos in triples:
        part = pd.DataFrame({"row": np.arange(len(frame)), "participant_id": frame[id_pos],
                             "raw": frame[response_pos], "answered_at": frame[timestamp_pos],
                             "column": f"Annotator{k}_Response"})
        no_id = part["participant_id"] == ""
        orphan = no_id & ((part["raw"] != "") | (part["answered_at"] != ""))
        if orphan.any():
            row = int(part.loc[orphan, "row"].iloc[0])
            raise ValueError(f"{report_csv}: data row {row + 1}: Annotator{k}_Response/Timestamp is set but "
                             f"Annotator{k}_ID is empty; the report is damaged, download it again")
        parts.append(part[~no_id])
    columns = ["row", "participant_id", "raw", "answered_at", "column"]
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in columns}, dtype=str)
    long = long.sort_values("row", kind="stable", ignore_index=True)
    rows = long["row"].to_numpy(dtype=np.int64)
    long["instruction_index"] = instruction_index[rows]

    types = np.array([ins["type"] for ins in instructions], dtype=object)
    descriptions = np.array([ins["description"] for ins in instructions], dtype=object)
    responses = pd.DataFrame({
        "datapoint_id": frame[0].to_numpy()[rows],
        "task_group_id": frame[1].to_numpy()[rows],
        "instruction": descriptions[long["instruction_index"].to_numpy()],
        "instruction_type": types[long["instruction_index"].to_numpy()],
        "participant_id": long["participant_id"].to_numpy(),
        "answer": _map_answers(report_csv, long, instructions).to_numpy(),
        "answered_at": long["answered_at"].to_numpy(),
    }, dtype=str)

    names = output_column_names(header[4:first_annotator])
    positions = {names[header[pos]]: pos for pos in range(4, first_annotator)}
    originals = pd.DataFrame({name: frame[pos].to_numpy()[rows] for name, pos in positions.items()}, dtype=str)
    first_rows = frame.drop_duplicates(0).index.to_numpy()
    datapoints = pd.DataFrame({"datapoint_id": frame[0].to_numpy()[first_rows],
                               **{name: frame[pos].to_numpy()[first_rows] for name, pos in positions.items()}}, dtype=str)
    return ParsedReport(responses=pd.concat([responses, originals], axis=1), datapoints=datapoints, column_names=names)
