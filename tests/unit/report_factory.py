"""Synthetic batch reports in the team's wide layout (brief: "Report CSV"), written with the csv module.

``write_report`` writes rows exactly as given; ``simulate_labelling`` writes the report of a single-select
labelling job whose participants have known behaviour, and returns the true label per datapoint.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

FIXED = ["DataPoint_ID", "Task_Group_ID", "Task_Type", "Question"]

SENTIMENT = {"type": "multiple_choice", "description": "Overall sentiment?", "answer_limit": 1,
             "options": [{"label": "Positive", "value": "pos"}, {"label": "Negative", "value": "neg"},
                         {"label": "Neutral", "value": "neu"}]}


def write_report(path: Path, dataset_columns: list[str], rows: list[dict], *, newline: str = "\n") -> Path:
    """Write a report. Each row: ``datapoint_id``, ``task_group_id``, ``instruction`` (payload dict),
    ``cells`` (dataset cells, in ``dataset_columns`` order), ``annotations`` [(participant, response, timestamp)].
    Triples are padded with empty cells up to the widest row."""
    width = max((len(r["annotations"]) for r in rows), default=0)
    header = FIXED + dataset_columns + [f"Annotator{k}_{part}" for k in range(1, width + 1)
                                        for part in ("ID", "Response", "Timestamp")]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(header)
        for r in rows:
            triples = [cell for a in r["annotations"] for cell in a] + ["", "", ""] * (width - len(r["annotations"]))
            writer.writerow([r["datapoint_id"], r["task_group_id"], r["instruction"]["type"],
                             r["instruction"]["description"], *r["cells"], *triples])
    return path


def timestamp(i: int) -> str:
    """ISO-8601 UTC with milliseconds and Z, distinct per i."""
    return f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"


def simulate_labelling(path: Path, *, n_datapoints: int, accuracies: dict[str, float | str], per_datapoint: int,
                       seed: int, instruction: dict = SENTIMENT, gold_every: int = 0,
                       attention_every: int = 0) -> dict[str, str]:
    """Write the report of a single-select job and return {datapoint_id: true option value}.

    ``accuracies``: participant id → probability of giving the true value (else a uniformly chosen wrong
    value), or ``"random"`` (uniform over all options) or ``"constant"`` (always the first option).
    Each datapoint gets ``per_datapoint`` distinct participants chosen at random. Dataset columns:
    ``text``, ``META_gold`` (the truth on every ``gold_every``-th datapoint), ``META_attention``
    ("1" on every ``attention_every``-th datapoint).
    """
    rng = np.random.default_rng(seed)
    values = [o["value"] for o in instruction["options"]]
    labels = [o["label"] for o in instruction["options"]]
    participants = list(accuracies)
    truth, rows = {}, []
    for d in range(n_datapoints):
        datapoint_id = f"dp-{d:05d}"
        true = int(rng.integers(len(values)))
        truth[datapoint_id] = values[true]
        annotations = []
        for p in rng.choice(len(participants), size=per_datapoint, replace=False):
            behaviour = accuracies[participants[p]]
            if behaviour == "random":
                given = int(rng.integers(len(values)))
            elif behaviour == "constant":
                given = 0
            elif rng.random() < behaviour:
                given = true
            else:
                given = int(rng.choice([k for k in range(len(values)) if k != true]))
            annotations.append((participants[p], labels[given], timestamp(len(rows) * per_datapoint + p)))
        gold = values[true] if gold_every and d % gold_every == 0 else ""
        attention = "1" if attention_every and d % attention_every == 0 else ""
        rows.append({"datapoint_id": datapoint_id, "task_group_id": f"tg-{d:05d}", "instruction": instruction,
                     "cells": [f"sentence {d}", gold, attention], "annotations": annotations})
    write_report(path, ["text", "META_gold", "META_attention"], rows)
    return truth
