"""Aggregate the tidy responses (from :func:`taskbuilder.report.parse_report`) into labels and quality figures.

Per choice instruction (``multiple_choice``, ``multiple_choice_with_free_text``):

- single-select (``answer_limit == 1``; absent counts as 1): majority vote with ties reported (``label``
  empty and ``tie`` True, never broken silently), ``confidence`` = top votes / votes, ``votes`` = JSON
  value → count in option order; and Dawid-Skene (``ds_label``, ``ds_confidence`` = posterior of that label;
  ``ds_label`` empty when the two best posteriors are equal).
- multi-select: per-option votes only (``votes`` = value → number of participants who selected it); no
  label, no Dawid-Skene, since neither model applies to sets of options.

Dawid-Skene route: a small numpy EM implementation (:func:`dawid_skene`), not crowd-kit. crowd-kit 1.4.2
pulls transformers, nltk, scikit-learn, scipy and pyarrow (measured: +550 MB in the venv), too heavy for
the core for ~60 lines of maths. The implementation follows crowd-kit's ``DawidSkene`` step for step
(majority-vote initialisation, class priors, per-participant confusion matrices clipped at 1e-10,
stopping when the evidence lower bound per response improves by less than ``tol``), and
``tests/unit/test_aggregate.py`` checks labels and posteriors against crowd-kit on the same data
(crowd-kit is in the ``dev`` extra; the test skips when it is absent).

Agreement (per choice instruction, on every response, attention checks included): Krippendorff's α
(nominal, ``krippendorff`` package, from per-datapoint value counts; ``None`` when fewer than two distinct
answers exist, where α is undefined) and percent agreement = mean over datapoints with ≥ 2 annotators of
the share of annotator pairs that gave the same answer. For multi-select instructions the compared answer
is the whole set of selected options.

Quality per participant: ``answers`` (responses to any instruction); ``agreement`` = share of their
single-select votes equal to the majority label, over datapoints with ≥ 2 votes and no tie (their own
vote included in the majority); ``gold_accuracy`` = share of their answers to the FIRST choice instruction
equal to the gold value, on datapoints whose gold cell is non-empty (gold holds option values, several
joined by ``|`` for a multi-select instruction; an unanswered or unreadable answer counts as wrong).
``flagged`` = agreement < ``min_agreement`` or gold_accuracy < ``min_gold_accuracy`` (a missing figure
flags nothing). Gold datapoints stay in the labels; attention-check datapoints are scored the same way
and left out of ``labels`` and of the label figures of the summary.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import krippendorff
import numpy as np
import pandas as pd

from taskbuilder.report import CHOICE_TYPES, RESPONSE_COLUMNS, split_joined

LABEL_COLUMNS = ["datapoint_id", "instruction", "label", "tie", "confidence", "votes", "ds_label", "ds_confidence"]
PARTICIPANT_COLUMNS = ["participant_id", "answers", "agreement", "gold_accuracy", "flagged", "submission_status"]
_EPS = 1e-10


@dataclass(frozen=True)
class AggregateResult:
    """Output of :func:`aggregate`: ``labels`` and ``participants`` DataFrames and a JSON-ready ``summary``."""

    labels: pd.DataFrame
    participants: pd.DataFrame
    summary: dict


def dawid_skene(tasks: np.ndarray, workers: np.ndarray, labels: np.ndarray, *, n_iter: int = 100,
                tol: float = 1e-5) -> np.ndarray:
    """Dawid & Skene (1979) EM estimate of each task's true-label posterior.

    Args:
        tasks, workers, labels: equal-length integer arrays, one entry per response; codes 0..n-1
            (every task code below ``tasks.max()`` must occur; labels are codes of observed labels).
        n_iter: maximum number of EM iterations; tol: stop when the evidence lower bound per response
            improves by less than this (crowd-kit's defaults and rule).

    Returns:
        Array (n_tasks × n_labels) of posteriors, rows summing to 1.
    """
    n_tasks, n_workers, n_labels = tasks.max() + 1, workers.max() + 1, labels.max() + 1
    pair = workers * n_labels + labels

    def m_step(probas: np.ndarray) -> np.ndarray:
        errors = np.stack([np.bincount(pair, weights=probas[tasks, c], minlength=n_workers * n_labels)
                           for c in range(n_labels)], axis=1).reshape(n_workers, n_labels, n_labels)
        errors = np.clip(errors, _EPS, None)
        return errors / errors.sum(axis=1, keepdims=True)

    def e_step(priors: np.ndarray, log_errors: np.ndarray) -> np.ndarray:
        log_likelihood = np.log(np.clip(priors, _EPS, None)) + np.stack(
            [np.bincount(tasks, weights=log_errors[workers, labels, c], minlength=n_tasks)
             for c in range(n_labels)], axis=1)
        scaled = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
        return scaled / scaled.sum(axis=1, keepdims=True)

    counts = np.zeros((n_tasks, n_labels))
    np.add.at(counts, (tasks, labels), 1.0)
    probas = counts / counts.sum(axis=1, keepdims=True)
    priors = probas.mean(axis=0)
    errors = m_step(probas)
    loss = -np.inf
    for _ in range(n_iter):
        probas = e_step(priors, np.log(errors))
        priors = probas.mean(axis=0)
        errors = m_step(probas)
        joint = (probas[tasks] * (np.log(errors[workers, labels]) + np.log(np.clip(priors, _EPS, None)))).sum()
        clipped = np.clip(probas, _EPS, None)
        new_loss = (joint - (clipped * np.log(clipped)).sum()) / len(tasks)
        if new_loss - loss < tol:
            break
        loss = new_loss
    return probas


def percent_agreement(value_counts: np.ndarray) -> float | None:
    """Mean over units with ≥ 2 answers of the share of answer pairs that agree.

    ``value_counts``: units × categories counts. None when no unit has two answers.
    """
    n = value_counts.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        return None
    agreeing = (value_counts[keep] * (value_counts[keep] - 1)).sum(axis=1)
    return float(np.mean(agreeing / (n[keep] * (n[keep] - 1))))


def nominal_alpha(value_counts: np.ndarray) -> float | None:
    """Krippendorff's α (nominal) from units × categories counts (``krippendorff.alpha``); None when
    undefined (fewer than two categories used, or no unit with two answers)."""
    used = value_counts[:, value_counts.sum(axis=0) > 0]
    if used.shape[1] < 2 or not (used.sum(axis=1) >= 2).any():
        return None
    return float(krippendorff.alpha(value_counts=used, level_of_measurement="nominal"))


def _instruction_index(responses: pd.DataFrame, instructions: list[dict]) -> np.ndarray:
    """Index into ``instructions`` per response row: by (description, type); instructions sharing both
    are told apart by order within a datapoint and participant, as in ``parse_report``."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, ins in enumerate(instructions):
        by_key.setdefault((ins["description"], ins["type"]), []).append(i)
    keys = pd.MultiIndex.from_arrays([responses["instruction"], responses["instruction_type"]])
    occurrence = responses.groupby(["datapoint_id", "participant_id", "instruction", "instruction_type"],
                                   sort=False).cumcount().to_numpy()
    result = np.full(len(responses), -1, dtype=np.int64)
    for key in keys.unique():
        candidates = by_key.get(key)
        if candidates is None:
            raise ValueError(f"responses: instruction {key[0]!r} ({key[1]}) is not among the instructions given")
        rows = np.flatnonzero(keys == key)
        result[rows] = np.asarray(candidates)[np.minimum(occurrence[rows], len(candidates) - 1)]
    return result


def _selected_options(answers: pd.Series, instruction: dict) -> pd.Series:
    """Per response: tuple of selected option positions, or None when the answer is not readable."""
    values = [o["value"] for o in instruction["options"]]

    def parse(answer: str) -> tuple[int, ...] | None:
        if instruction["type"] == "multiple_choice":
            found = split_joined(answer, values)
            return None if found is None else tuple(found)
        if answer == "":
            return ()
        try:
            found = sorted({values.index(item["value"]) for item in json.loads(answer)})
        except (ValueError, TypeError, KeyError):
            return None
        return tuple(found)

    return answers.map({a: parse(a) for a in answers.unique()}, na_action="ignore").astype(object)


def _is_marked(cells: pd.Series) -> pd.Series:
    return (cells != "") & ~cells.str.strip().str.lower().isin(["0", "false", "no"])


def aggregate(responses: pd.DataFrame, instructions: list[dict], *, id_column: str | None = None,
              gold_column: str | None = None, attention_check_column: str | None = None,
              min_agreement: float = 0.0, min_gold_accuracy: float = 0.0) -> AggregateResult:
    """Labels, agreement and participant quality from the responses table (method in the module docstring).

    Args:
        responses: output of :func:`taskbuilder.report.parse_report` (its seven fixed columns, then the
            original dataset columns).
        instructions: the batch's instructions as API payload dicts (API doc §4), in order.
        id_column: dataset column with the row id; ``labels`` rows are ordered by it (numerically when
            every id is an integer).
        gold_column: dataset column with gold option values of the first choice instruction ("" = none).
        attention_check_column: dataset column marking attention-check rows (marked = non-empty and not
            "0"/"false"/"no", case-insensitive).
        min_agreement, min_gold_accuracy: thresholds (0..1) below which a participant is ``flagged``.

    Returns:
        AggregateResult with ``labels`` (one row per datapoint × choice instruction, attention checks left
        out: ``datapoint_id, instruction, label, tie, confidence, votes, ds_label, ds_confidence``, then the
        original columns), ``participants`` (``participant_id, answers, agreement, gold_accuracy,
        flagged, submission_status`` — the last empty, for the caller to fill from the API) and
        ``summary`` (plain JSON types; NaN → None).

    Raises:
        ValueError: a named column is not a dataset column, or a response names an unknown instruction.

    Warns:
        UserWarning: a gold cell is not an option value of the first choice instruction (that cell is ignored).
    """
    original_columns = list(responses.columns[len(RESPONSE_COLUMNS):])
    for option, column in (("id_column", id_column), ("gold_column", gold_column),
                           ("attention_check_column", attention_check_column)):
        if column is not None and column not in original_columns:
            raise ValueError(f"{option} {column!r} is not a dataset column of the report; "
                             f"dataset columns: {original_columns}")
    datapoints = responses.drop_duplicates("datapoint_id")[["datapoint_id", *original_columns]].reset_index(drop=True)
    attention = (set(datapoints.loc[_is_marked(datapoints[attention_check_column]), "datapoint_id"])
                 if attention_check_column else set())
    which = _instruction_index(responses, instructions)
    choice = [i for i, ins in enumerate(instructions) if ins["type"] in CHOICE_TYPES]

    gold: dict[str, tuple[int, ...]] = {}
    if gold_column and choice:
        first = instructions[choice[0]]
        values = [o["value"] for o in first["options"]]
        cells = datapoints.loc[datapoints[gold_column] != "", ["datapoint_id", gold_column]]
        for datapoint_id, cell in cells.itertuples(index=False):
            found = split_joined(cell, values)
            if found is None or not found:
                warnings.warn(f"{gold_column} of datapoint {datapoint_id!r} is {cell!r}, not an option value of "
                              f"{first['description']!r} ({values}); that gold cell is ignored", stacklevel=2)
            else:
                gold[datapoint_id] = tuple(found)

    label_parts, stats, agreement_parts, gold_parts = [], [], [], []
    for i in choice:
        instruction = instructions[i]
        values = [o["value"] for o in instruction["options"]]
        single = instruction.get("answer_limit", 1) == 1
        rows = responses.loc[which == i, ["datapoint_id", "participant_id", "answer"]].reset_index(drop=True)
        selected = _selected_options(rows["answer"], instruction)
        valid = selected.notna() & (selected.map(len, na_action="ignore") == 1 if single else selected.notna())
        votes = rows.loc[valid, ["datapoint_id", "participant_id"]].assign(option=selected[valid]).explode("option")
        votes = votes.dropna(subset=["option"]).astype({"option": np.int64})
        dp_ids = rows["datapoint_id"].unique()
        counts = (votes.groupby(["datapoint_id", "option"]).size().unstack(fill_value=0)
                  .reindex(index=dp_ids, columns=range(len(values)), fill_value=0).to_numpy())
        total, top = counts.sum(axis=1), counts.max(axis=1)
        labels = pd.DataFrame({"datapoint_id": dp_ids, "instruction": instruction["description"],
                               "label": "", "tie": False, "confidence": np.nan,
                               "votes": [json.dumps({values[k]: int(c) for k, c in enumerate(row) if c},
                                                    ensure_ascii=False) for row in counts],
                               "ds_label": "", "ds_confidence": np.nan, "_order": i})
        if single:
            tie = (counts == top[:, None]).sum(axis=1) > 1
            has = total > 0
            labels["tie"] = tie & has
            labels["label"] = np.where(has & ~tie, np.asarray(values, dtype=object)[counts.argmax(axis=1)], "")
            labels["confidence"] = np.where(has, top / np.maximum(total, 1), np.nan)
            if len(votes):
                _add_dawid_skene(labels, votes, values)
            mv = pd.DataFrame({"datapoint_id": dp_ids, "mv": counts.argmax(axis=1), "eligible": has & ~tie & (total >= 2)})
            scored = votes.merge(mv, on="datapoint_id")
            scored = scored[scored["eligible"]]
            agreement_parts.append(scored.assign(agree=scored["option"] == scored["mv"])[["participant_id", "agree"]])
        categories = (rows.loc[selected.notna(), "datapoint_id"].to_frame()
                      .assign(category=selected[selected.notna()].map(lambda s: "|".join(map(str, s)))))
        if single:
            categories = categories[valid[selected.notna()].to_numpy()]
        value_counts = categories.groupby(["datapoint_id", "category"]).size().unstack(fill_value=0).to_numpy()
        kept = labels[~labels["datapoint_id"].isin(attention)]
        stats.append({
            "instruction": instruction["description"], "type": instruction["type"],
            "answer_limit": instruction.get("answer_limit", 1), "responses": len(rows),
            "unreadable_answers": int(selected.isna().sum()),
            "krippendorff_alpha": nominal_alpha(value_counts), "percent_agreement": percent_agreement(value_counts),
            **({"label_distribution": {v: int((kept["label"] == v).sum()) for v in values},
                "ties": int(kept["tie"].sum()),
                "ds_label_distribution": {v: int((kept["ds_label"] == v).sum()) for v in values}} if single else
               {"selection_distribution": {v: int(counts[~np.isin(dp_ids, list(attention)), k].sum())
                                           for k, v in enumerate(values)}}),
        })
        if gold and i == choice[0]:
            on_gold = rows["datapoint_id"].isin(gold.keys())
            expected = rows.loc[on_gold, "datapoint_id"].map(gold)
            gold_parts.append(pd.DataFrame({"participant_id": rows.loc[on_gold, "participant_id"],
                                            "correct": selected[on_gold] == expected}))
            stats[-1]["gold"] = _gold_summary(kept, gold, values, single)
        label_parts.append(labels)

    labels = _labels_table(label_parts, datapoints, attention, id_column)
    participants = _participants_table(responses, agreement_parts, gold_parts, min_agreement, min_gold_accuracy)
    summary = {
        "datapoints": int(len(datapoints)), "responses": int(len(responses)),
        "participants": int(len(participants)), "flagged_participants": int(participants["flagged"].sum()),
        "attention_check_datapoints": len(attention) if attention_check_column else None,
        "gold_datapoints": len(gold) if gold_column else None,
        "instructions": stats,
    }
    return AggregateResult(labels=labels, participants=participants, summary=summary)


def _add_dawid_skene(labels: pd.DataFrame, votes: pd.DataFrame, values: list[str]) -> None:
    """Fill ``ds_label``/``ds_confidence`` of ``labels`` from single-select ``votes`` (datapoint_id,
    participant_id, option) with :func:`dawid_skene`; labels never chosen get posterior 0."""
    task_codes, task_ids = pd.factorize(votes["datapoint_id"])
    worker_codes, _ = pd.factorize(votes["participant_id"])
    label_codes, observed = pd.factorize(votes["option"], sort=True)
    posterior = dawid_skene(task_codes, worker_codes, label_codes)
    ordered = np.sort(posterior, axis=1)
    tied = ordered[:, -1] - (ordered[:, -2] if posterior.shape[1] > 1 else 0.0) < 1e-12
    best = np.asarray(values, dtype=object)[np.asarray(observed)[posterior.argmax(axis=1)]]
    ds = pd.DataFrame({"ds_label": np.where(tied, "", best), "ds_confidence": ordered[:, -1]}, index=task_ids)
    position = labels["datapoint_id"].map(pd.Series(range(len(ds)), index=ds.index))
    found = position.notna().to_numpy()
    labels.loc[found, "ds_label"] = ds["ds_label"].to_numpy()[position[found].astype(int)]
    labels.loc[found, "ds_confidence"] = ds["ds_confidence"].to_numpy()[position[found].astype(int)]


def _gold_summary(kept: pd.DataFrame, gold: dict[str, tuple[int, ...]], values: list[str], single: bool) -> dict:
    """Accuracy of the majority-vote and Dawid-Skene labels on gold datapoints (a tie counts as wrong)."""
    on_gold = kept[kept["datapoint_id"].isin(gold.keys())]
    result = {"datapoints": int(len(on_gold)), "majority_vote_accuracy": None, "dawid_skene_accuracy": None}
    if single and len(on_gold):
        expected = on_gold["datapoint_id"].map(lambda d: values[gold[d][0]] if len(gold[d]) == 1 else None)
        result["majority_vote_accuracy"] = float((on_gold["label"] == expected).mean())
        result["dawid_skene_accuracy"] = float((on_gold["ds_label"] == expected).mean())
    return result


def _labels_table(parts: list[pd.DataFrame], datapoints: pd.DataFrame, attention: set[str],
                  id_column: str | None) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=[*LABEL_COLUMNS, *datapoints.columns[1:]])
    labels = pd.concat(parts, ignore_index=True)
    labels = labels[~labels["datapoint_id"].isin(attention)]
    position = pd.Series(range(len(datapoints)), index=datapoints["datapoint_id"])
    labels = (labels.assign(_dp=labels["datapoint_id"].map(position))
              .sort_values(["_dp", "_order"], kind="stable").drop(columns=["_dp", "_order"]))
    labels = labels.merge(datapoints, on="datapoint_id", how="left")
    if id_column:
        ids = labels[id_column]
        numeric = ids.str.fullmatch(r"-?\d+").all()
        labels = labels.sort_values(id_column, kind="stable", key=(lambda s: s.astype(int)) if numeric else None)
    return labels.reset_index(drop=True)


def _participants_table(responses: pd.DataFrame, agreement_parts: list[pd.DataFrame],
                        gold_parts: list[pd.DataFrame], min_agreement: float,
                        min_gold_accuracy: float) -> pd.DataFrame:
    participants = responses.groupby("participant_id", sort=False).size().rename("answers").to_frame()
    for name, parts, column in (("agreement", agreement_parts, "agree"), ("gold_accuracy", gold_parts, "correct")):
        scored = pd.concat(parts) if parts else pd.DataFrame({"participant_id": [], column: []})
        participants[name] = scored.groupby("participant_id")[column].mean().astype(float)
    participants["flagged"] = ((participants["agreement"] < min_agreement)
                               | (participants["gold_accuracy"] < min_gold_accuracy))
    participants["submission_status"] = ""
    return participants.reset_index()[PARTICIPANT_COLUMNS]


def select_submissions_to_approve(submissions: list[dict], participants: pd.DataFrame) -> list[str]:
    """Ids of the submissions to approve in bulk (``POST /api/v1/submissions/bulk-approve/``, API doc §6.4).

    Args:
        submissions: items of ``GET /api/v1/studies/{id}/submissions/`` (``id``, ``participant_id``,
            ``status``).
        participants: the ``participants`` table of :func:`aggregate`.

    Returns:
        Ids of submissions with status ``AWAITING REVIEW`` whose participant is in ``participants`` and
        not flagged, in the order given. Any other status (``RETURNED``, ``TIMED-OUT``, ``APPROVED`` …) is
        never selected; a participant without responses in the report is left for manual review.
    """
    good = set(participants.loc[~participants["flagged"].astype(bool), "participant_id"])
    return [s["id"] for s in submissions if s.get("status") == "AWAITING REVIEW" and s.get("participant_id") in good]
