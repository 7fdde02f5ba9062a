"""Rounds of one job (issue 19): their keys, which datapoints a follow-up round asks again, and the files of
a round's datapoints. No Prefect; the flows (``flows/job_round.py``, ``flows/rounds.py``) use it.

Confidence of a datapoint's label (the first choice instruction, single-select), by the median answers per
participant (:func:`confidence_rule`): from :data:`MIN_ANSWERS_PER_PARTICIPANT`, the full Dawid-Skene posterior
(``ds_confidence`` of :func:`taskbuilder.aggregate.aggregate`, our numpy EM checked against crowd-kit); from
:data:`MIN_ANSWERS_FOR_ONE_COIN`, the posterior of the one-coin Dawid-Skene model with a Beta prior
(:mod:`taskbuilder.one_coin`: one accuracy per participant, shrunk toward the pool's, fitted over every answer of
the job so far), since a confusion matrix from ~10 answers says little but one accuracy does; below that, the
majority share (``confidence``). A majority tie (or no label) is never confident, whatever the posterior says.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from taskbuilder.jsonl import is_jsonl
from taskbuilder.one_coin import one_coin_labels

MIN_ANSWERS_PER_PARTICIPANT = 20
"""Median answers per participant from which the full Dawid-Skene posterior is used."""
MIN_ANSWERS_FOR_ONE_COIN = 5
"""Median answers per participant from which the one-coin posterior is used (below: the majority share)."""
DAWID_SKENE, ONE_COIN, MAJORITY_SHARE = "dawid_skene", "one_coin", "majority_share"
PREVIOUS_STUDIES_BLOCKLIST = "previous_studies_blocklist"
"""The study filter that keeps the participants of the listed studies out (§12 of the current facts)."""


def round_key(job_key: str, number: int) -> str:
    """The key of round ``number`` of a job: the job key itself for round 1 (older records resume), else
    ``<job key>-round-<number>``."""
    return job_key if number == 1 else f"{job_key}-round-{number}"


def blocklist_filter(study_ids: Iterable[str]) -> dict:
    """The study filter ``{"filter_id": "previous_studies_blocklist", "selected_values": [...]}`` (§12)."""
    return {"filter_id": PREVIOUS_STUDIES_BLOCKLIST, "selected_values": list(dict.fromkeys(study_ids))}


def _median_answers(responses: pd.DataFrame, instruction: str) -> float:
    """Median answers per participant to ``instruction`` (its description, as in ``responses``); 0 for none."""
    answered = responses.loc[responses["instruction"] == instruction]
    return float(answered.groupby("participant_id").size().median()) if len(answered) else 0.0


def confidence_rule(responses: pd.DataFrame, instruction: str) -> str:
    """Which posterior judges ``instruction``'s labels: :data:`DAWID_SKENE`, :data:`ONE_COIN` or
    :data:`MAJORITY_SHARE`, by the median answers per participant (see the module's docstring)."""
    median = _median_answers(responses, instruction)
    return (DAWID_SKENE if median >= MIN_ANSWERS_PER_PARTICIPANT
            else ONE_COIN if median >= MIN_ANSWERS_FOR_ONE_COIN else MAJORITY_SHARE)


def label_confidence(labels: pd.DataFrame, instruction: str, dawid_skene: bool | str,
                     responses: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per datapoint of ``instruction``: ``datapoint_id``, ``answers`` (votes counted), ``confidence`` (0–1, 0 for
    a majority tie or no label) from ``labels`` (:func:`taskbuilder.aggregate.aggregate`'s table).

    ``dawid_skene``: a rule of :func:`confidence_rule` (True / False stand for :data:`DAWID_SKENE` /
    :data:`MAJORITY_SHARE`); :data:`ONE_COIN` needs ``responses`` (every answer of the job so far) and raises
    ``ValueError`` without them."""
    rule = dawid_skene if isinstance(dawid_skene, str) else DAWID_SKENE if dawid_skene else MAJORITY_SHARE
    rows = labels.loc[labels["instruction"] == instruction]
    answers = rows["votes"].map(lambda text: sum(json.loads(text or "{}").values()))
    tie = rows["tie"].astype(str).str.lower().isin(("true", "1"))
    if rule == ONE_COIN:
        if responses is None:
            raise ValueError("the one-coin confidence needs the responses (every answer of the job so far)")
        fitted = one_coin_labels(responses, rows, instruction)
        value = fitted["oc_confidence"].where(fitted["oc_label"] != "").set_axis(rows.index)
    elif rule == DAWID_SKENE:
        value = pd.to_numeric(rows["ds_confidence"], errors="coerce").where(rows["ds_label"].astype(str) != "")
    else:
        value = pd.to_numeric(rows["confidence"], errors="coerce").where(rows["label"].astype(str) != "")
    confidence = value.fillna(0.0).where(~tie, 0.0)
    return pd.DataFrame({"datapoint_id": rows["datapoint_id"].to_numpy(), "answers": answers.to_numpy(dtype=int),
                         "confidence": confidence.to_numpy(dtype=float)})


def below_target(confidence: pd.DataFrame, target: float, max_answers: int) -> tuple[list[str], list[str]]:
    """``(ask_again, stay_below)``: the datapoints below ``target`` that have fewer than ``max_answers``
    answers (a follow-up round asks them), and those below it that have ``max_answers`` already."""
    low = confidence["confidence"] < target
    again = confidence.loc[low & (confidence["answers"] < max_answers), "datapoint_id"].astype(str).tolist()
    stay = confidence.loc[low & (confidence["answers"] >= max_answers), "datapoint_id"].astype(str).tolist()
    return again, stay


def write_subset(upload_path: Path, id_column: str, ids: Iterable[str], destination: Path) -> int:
    """Write the records of ``upload_path`` (the job's upload file: UTF-8 CSV or JSONL) whose ``id_column`` is
    in ``ids`` to ``destination``, each record's bytes as they were (CSV: the header line and the records'
    own text; JSONL: the lines); return how many."""
    wanted = set(ids)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if is_jsonl(upload_path):
        kept = [line for line in upload_path.read_text(encoding="utf-8").splitlines(keepends=True)
                if line.strip() and str(json.loads(line).get(id_column)) in wanted]
        destination.write_text("".join(kept), encoding="utf-8")
        return len(kept)
    with open(upload_path, encoding="utf-8", newline="") as handle:
        records = _record_texts(handle)
        header_text = next(records)
        position = next(csv.reader([header_text.lstrip("\ufeff")])).index(id_column)
        kept = [text for text in records if (row := next(csv.reader([text]), [])) and row[position] in wanted]
    with open(destination, "w", encoding="utf-8", newline="") as out:
        out.write(header_text + "".join(kept))
    return len(kept)


def _record_texts(handle: Iterable[str]) -> Iterable[str]:
    """Each whole record's text, line ends included (a quoted cell may hold line breaks, so one record can be
    several lines: a record ends where its quotes are balanced)."""
    pending = ""
    for line in handle:
        pending += line
        if pending.count('"') % 2 == 0:
            yield pending
            pending = ""
    if pending:
        yield pending
