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
(crowd-kit is in the ``dev`` extra; the test skips when it is absent). Dawid-Skene is fitted on every
readable single-select vote of the instruction, attention checks and gold datapoints included (more
answers per participant sharpen their confusion matrices); gold is not fed to the model.

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

from taskbuilder.report import CHOICE_TYPES, LABEL_COLUMNS, ParsedReport, split_joined

PARTICIPANT_COLUMNS = ["participant_id", "answers", "agreement", "gold_accuracy", "flagged", "submission_status"]
_EPS = 1e-10


@dataclass(frozen=True)
class AggregateResult:
    """Output of :func:`aggregate`: ``labels`` and ``participants`` DataFrames and a JSON-ready ``summary``."""

    labels: pd.DataFrame
    participants: pd.DataFrame
    summary: dict


def is_in(column: pd.Series, candidates: object) -> np.ndarray:
    """``column.isin(candidates)`` as a boolean array (one per row), by a hash look-up of the candidates'
    distinct values. pandas 3's Arrow-backed strings check ``isin`` by making a pyarrow scalar of every
    candidate in Python: 3.8 s for 333,334 datapoint ids against 1,000,000 answers' ids (B5), 0.08 s this way.
    ``candidates``: a Series, an array, a list, a set or dict keys."""
    values = candidates if isinstance(candidates, (pd.Series, pd.Index, np.ndarray, list)) else list(candidates)
    return pd.Index(values).unique().get_indexer(column) >= 0


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
    if all(len(candidates) == 1 for candidates in by_key.values()):
        occurrence = np.zeros(len(responses), dtype=np.int64)  # nothing to tell apart
    else:
        occurrence = responses.groupby(["datapoint_id", "participant_id", "instruction", "instruction_type"],
                                       sort=False).cumcount().to_numpy()
    result = np.full(len(responses), -1, dtype=np.int64)
    description_codes, descriptions = pd.factorize(responses["instruction"])
    type_codes, types = pd.factorize(responses["instruction_type"])
    key_codes, unique_pairs = pd.factorize(description_codes * len(types) + type_codes)
    for code, pair in enumerate(unique_pairs):
        key = (descriptions[pair // len(types)], types[pair % len(types)])
        candidates = by_key.get(key)
        if candidates is None:
            raise ValueError(f"responses: instruction {key[0]!r} ({key[1]}) is not among the instructions given")
        rows = np.flatnonzero(key_codes == code)
        result[rows] = np.asarray(candidates)[np.minimum(occurrence[rows], len(candidates) - 1)]
    return result


def _selected_options(answers: pd.Series, instruction: dict) -> dict[str, tuple[int, ...] | None]:
    """Distinct answer → tuple of selected option positions (option order), or None when unreadable."""
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

    return {answer: parse(answer) for answer in answers.unique()}


def _is_marked(cells: pd.Series) -> pd.Series:
    return (cells != "") & ~cells.str.strip().str.lower().isin(["0", "false", "no"])


def aggregate(report: ParsedReport | pd.DataFrame, instructions: list[dict], *, id_column: str | None = None,
              gold_column: str | None = None, attention_check_column: str | None = None,
              min_agreement: float = 0.0, min_gold_accuracy: float = 0.0) -> AggregateResult:
    """Labels, agreement and participant quality from the responses table (method in the module docstring).

    Args:
        report: output of :func:`taskbuilder.report.read_report` (every datapoint of the report, answered
            or not), or a responses table as :func:`taskbuilder.report.parse_report` returns (its seven
            fixed columns, then the dataset columns; then only datapoints with a response are known).
        instructions: the batch's instructions as API payload dicts (API doc §4), in order.
        id_column: dataset column with the row id; ``labels`` rows are ordered by it (numerically when
            every id is an integer).
        gold_column: dataset column with gold option values of the first choice instruction ("" = none).
        attention_check_column: dataset column marking attention-check rows (marked = non-empty and not
            "0"/"false"/"no", case-insensitive).
        The three column arguments are the dataset's own names; a name the outputs rename
        (``participant_id`` → ``participant_id_original``) is found under its output name.
        min_agreement, min_gold_accuracy: thresholds (0..1) below which a participant is ``flagged``.

    Returns:
        AggregateResult with ``labels`` (one row per datapoint × choice instruction, attention checks left
        out, datapoints nobody answered included with an empty ``label`` and ``votes`` ``{}``:
        ``datapoint_id, instruction, label, tie, confidence, votes, ds_label, ds_confidence``, then the
        dataset columns), ``participants`` (``participant_id, answers, agreement, gold_accuracy,
        flagged, submission_status`` — the last empty, for the caller to fill from the API) and
        ``summary`` (plain JSON types; NaN → None; ``datapoints`` counts every datapoint,
        ``datapoints_without_answers`` those with no response at all).

    Raises:
        ValueError: a named column is not a dataset column, or a response names an unknown instruction.

    Warns:
        UserWarning: a gold cell is not an option value of the first choice instruction (that cell is
        ignored); datapoints got no answer (they are kept, unlabelled).
    """
    parsed = report if isinstance(report, ParsedReport) else ParsedReport.from_responses(report)
    responses, datapoints = parsed.responses, parsed.datapoints
    original_columns = list(datapoints.columns[1:])
    id_column, gold_column, attention_check_column = (
        parsed.column_names.get(column, column) if column is not None else None
        for column in (id_column, gold_column, attention_check_column))
    for option, column in (("id_column", id_column), ("gold_column", gold_column),
                           ("attention_check_column", attention_check_column)):
        if column is not None and column not in original_columns:
            raise ValueError(f"{option} {column!r} is not a dataset column of the report; "
                             f"dataset columns: {original_columns}")
    attention = (set(datapoints.loc[_is_marked(datapoints[attention_check_column]), "datapoint_id"])
                 if attention_check_column else set())
    which = _instruction_index(responses, instructions)
    choice = [i for i, ins in enumerate(instructions) if ins["type"] in CHOICE_TYPES]

    gold = _read_gold(datapoints, gold_column, instructions[choice[0]]) if gold_column and choice else {}

    label_parts, stats, agreement_parts, gold_parts = [], [], [], []
    for i in choice:
        rows = responses.loc[which == i, ["datapoint_id", "participant_id", "answer"]].reset_index(drop=True)
        labels, instruction_stats, agreement = _aggregate_instruction(instructions[i], rows, attention)
        labels = _with_unanswered(labels, datapoints["datapoint_id"], instructions[i]["description"])
        instruction_stats["datapoints_without_votes"] = int(
            (~is_in(labels["datapoint_id"], attention) & (labels["votes"] == "{}").to_numpy()).sum())
        labels["_order"] = i
        label_parts.append(labels)
        if agreement is not None:
            agreement_parts.append(agreement)
        if gold and i == choice[0]:
            gold_parts.append(_gold_answers(rows, instructions[i], gold))
            instruction_stats["gold"] = _gold_summary(labels[~is_in(labels["datapoint_id"], attention)], gold,
                                                      instructions[i])
        stats.append(instruction_stats)

    labels = _labels_table(label_parts, datapoints, attention, id_column)
    participants = _participants_table(responses, agreement_parts, gold_parts, min_agreement, min_gold_accuracy)
    unanswered = int((~is_in(datapoints["datapoint_id"], responses["datapoint_id"])).sum())
    if unanswered:
        warnings.warn(f"{unanswered} of {len(datapoints)} datapoints got no answer (returned or timed-out "
                      "submissions, a stopped study, too few places): they are in labels with an empty label "
                      "and no votes", stacklevel=2)
    summary = {
        "datapoints": int(len(datapoints)), "datapoints_without_answers": unanswered, "responses": int(len(responses)),
        "participants": int(len(participants)), "flagged_participants": int(participants["flagged"].sum()),
        "attention_check_datapoints": len(attention) if attention_check_column else None,
        "gold_datapoints": len(gold) if gold_column else None,
        "instructions": stats,
    }
    return AggregateResult(labels=labels, participants=participants, summary=summary)


def _read_gold(datapoints: pd.DataFrame, gold_column: str, instruction: dict) -> dict[str, tuple[int, ...]]:
    """Datapoint id → gold option positions of ``instruction``, for non-empty gold cells; warn once about
    cells that are not option values (they are ignored)."""
    values = [o["value"] for o in instruction["options"]]
    cells = datapoints.loc[datapoints[gold_column] != "", ["datapoint_id", gold_column]]
    gold, bad = {}, []
    for datapoint_id, cell in cells.itertuples(index=False):
        found = split_joined(cell, values)
        if found:
            gold[datapoint_id] = tuple(found)
        else:
            bad.append(f"datapoint {datapoint_id!r} has {cell!r}")
    if bad:
        warnings.warn(f"{gold_column}: {len(bad)} cell(s) are not option values of {instruction['description']!r} "
                      f"({values}) and are ignored, e.g. {'; '.join(bad[:3])}", stacklevel=3)
    return gold


def _aggregate_instruction(instruction: dict, rows: pd.DataFrame,
                           attention: set[str]) -> tuple[pd.DataFrame, dict, pd.DataFrame | None]:
    """Labels (without original columns), summary figures and, for single-select, each vote's
    agreement with the majority (``participant_id``, ``agree``) for one choice instruction's ``rows``
    (``datapoint_id, participant_id, answer``)."""
    values = [o["value"] for o in instruction["options"]]
    single = instruction.get("answer_limit", 1) == 1
    parsed = _selected_options(rows["answer"], instruction)
    answer_codes, answers = pd.factorize(rows["answer"])  # per-row work is done once per distinct answer
    chosen = [parsed[answer] for answer in answers]
    sizes = np.array([-1 if c is None else len(c) for c in chosen], dtype=np.int64)[answer_codes]
    readable = sizes >= 0
    valid = (sizes == 1) if single else readable
    dp_codes = pd.factorize(rows["datapoint_id"])[0]
    dp_ids = rows["datapoint_id"].unique()  # same order as dp_codes (first appearance)
    if single:
        first = np.array([c[0] if c is not None and len(c) == 1 else -1 for c in chosen], dtype=np.int64)[answer_codes]
        votes = rows.loc[valid, ["datapoint_id", "participant_id"]].assign(option=first[valid])
        vote_dp = dp_codes[valid]
    else:
        selected = rows["answer"].map(parsed).astype(object)
        votes = rows.loc[valid, ["datapoint_id", "participant_id"]].assign(option=selected[valid]).explode("option")
        votes = votes.dropna(subset=["option"]).astype({"option": np.int64})
        vote_dp = dp_codes[votes.index.to_numpy()]
    n_values = len(values)
    counts = np.bincount(vote_dp * n_values + votes["option"].to_numpy(),
                         minlength=len(dp_ids) * n_values).reshape(len(dp_ids), n_values)
    total, top = counts.sum(axis=1), counts.max(axis=1, initial=0)
    labels = pd.DataFrame({"datapoint_id": dp_ids, "instruction": instruction["description"],
                           "label": "", "tie": False, "confidence": np.nan,
                           "votes": _votes_json(counts, values),
                           "ds_label": "", "ds_confidence": np.nan})
    kept = ~pd.Index(dp_ids).isin(list(attention))
    value_counts = _value_counts(chosen, answer_codes, dp_codes, dp_ids, valid)
    stats = {"instruction": instruction["description"], "type": instruction["type"],
             "answer_limit": instruction.get("answer_limit", 1), "responses": len(rows),
             "unreadable_answers": int((~readable).sum()),
             "krippendorff_alpha": nominal_alpha(value_counts), "percent_agreement": percent_agreement(value_counts)}
    if not single:
        stats["selection_distribution"] = {v: int(counts[kept, k].sum()) for k, v in enumerate(values)}
        return labels, stats, None

    tie = (total > 0) & ((counts == top[:, None]).sum(axis=1) > 1)
    labels["tie"] = tie
    labels["label"] = np.where((total > 0) & ~tie, np.asarray(values, dtype=object)[counts.argmax(axis=1)], "")
    labels["confidence"] = np.where(total > 0, top / np.maximum(total, 1), np.nan)
    if len(votes):
        _add_dawid_skene(labels, votes, values)
    stats["label_distribution"] = {v: int((labels.loc[kept, "label"] == v).sum()) for v in values}
    stats["ties"] = int(labels.loc[kept, "tie"].sum())
    stats["ds_label_distribution"] = {v: int((labels.loc[kept, "ds_label"] == v).sum()) for v in values}
    scored = ((total >= 2) & ~tie)[vote_dp]
    majority = counts.argmax(axis=1)[vote_dp[scored]]
    agreement = pd.DataFrame({"participant_id": votes.loc[scored, "participant_id"],
                              "agree": votes["option"].to_numpy()[scored] == majority})
    return labels, stats, agreement


def _with_unanswered(labels: pd.DataFrame, datapoint_ids: pd.Series, description: str) -> pd.DataFrame:
    """``labels`` of one instruction plus a row for every datapoint it lacks (no label, no votes)."""
    missing = datapoint_ids[~is_in(datapoint_ids, labels["datapoint_id"])]
    if not len(missing):
        return labels
    empty = pd.DataFrame({"datapoint_id": missing.to_numpy(), "instruction": description, "label": "", "tie": False,
                          "confidence": np.nan, "votes": "{}", "ds_label": "", "ds_confidence": np.nan})
    return pd.concat([labels, empty], ignore_index=True) if len(labels) else empty


def _votes_json(counts: np.ndarray, values: list[str]) -> list[str]:
    """Per row of ``counts`` (datapoints × options): JSON ``{value: count}`` of the options with votes, in
    option order; one ``json.dumps`` per distinct row."""
    if not len(counts):
        return []
    base = int(counts.max()) + 1
    if base ** counts.shape[1] < 2**62:  # each row as one integer: a 1-d unique is much faster
        keys = counts @ (base ** np.arange(counts.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        distinct = counts[first]
    else:
        distinct, inverse = np.unique(counts, axis=0, return_inverse=True)
    texts = [json.dumps({values[k]: int(c) for k, c in enumerate(row) if c}, ensure_ascii=False) for row in distinct]
    return [texts[i] for i in inverse.ravel()]


def _value_counts(chosen: list, answer_codes: np.ndarray, dp_codes: np.ndarray, dp_ids, valid: np.ndarray) -> np.ndarray:
    """Datapoints × answer categories (a category = the set of selected options) counts of the ``valid`` rows,
    for α and percent agreement: one row per datapoint with a valid answer, one column per category used, both
    in sorted order (as a pandas groupby/unstack would give)."""
    rows = np.flatnonzero(valid)
    if not len(rows):
        return np.zeros((0, 0), dtype=np.int64)
    category_codes, categories = pd.factorize(pd.Series(["|".join(map(str, c)) if c is not None else None for c in chosen],
                                                        dtype=object))
    n_categories = len(categories)
    matrix = np.bincount(dp_codes[rows] * n_categories + category_codes[answer_codes[rows]],
                         minlength=len(dp_ids) * n_categories).reshape(len(dp_ids), n_categories)
    used_dp, used_category = np.flatnonzero(matrix.sum(axis=1)), np.flatnonzero(matrix.sum(axis=0))
    dp_order = used_dp[np.argsort(np.asarray(dp_ids, dtype=object)[used_dp], kind="stable")]
    category_order = used_category[np.argsort(np.asarray(categories, dtype=object)[used_category], kind="stable")]
    return matrix[np.ix_(dp_order, category_order)]


def _gold_answers(rows: pd.DataFrame, instruction: dict, gold: dict[str, tuple[int, ...]]) -> pd.DataFrame:
    """``participant_id``, ``correct`` for each answer to the first choice instruction on a gold datapoint."""
    parsed = _selected_options(rows["answer"], instruction)
    on_gold = rows[is_in(rows["datapoint_id"], gold.keys())]
    correct = [parsed[a] == gold[d] for d, a in zip(on_gold["datapoint_id"], on_gold["answer"])]
    return pd.DataFrame({"participant_id": on_gold["participant_id"], "correct": correct})


def _add_dawid_skene(labels: pd.DataFrame, votes: pd.DataFrame, values: list[str]) -> None:
    """Fill ``ds_label``/``ds_confidence`` of ``labels`` from single-select ``votes`` (datapoint_id,
    participant_id, option) with :func:`dawid_skene`; options nobody chose are left out of the model."""
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


def _gold_summary(kept: pd.DataFrame, gold: dict[str, tuple[int, ...]], instruction: dict) -> dict:
    """Accuracy of the majority-vote and Dawid-Skene labels (``kept`` = labels without attention checks)
    on gold datapoints; a tie counts as wrong. None for a multi-select instruction."""
    on_gold = kept[is_in(kept["datapoint_id"], gold.keys())]
    result = {"datapoints": int(len(on_gold)), "majority_vote_accuracy": None, "dawid_skene_accuracy": None}
    if instruction.get("answer_limit", 1) == 1 and len(on_gold):
        values = [o["value"] for o in instruction["options"]]
        expected = on_gold["datapoint_id"].map(lambda d: "|".join(values[k] for k in gold[d]))
        result["majority_vote_accuracy"] = float((on_gold["label"] == expected).mean())
        result["dawid_skene_accuracy"] = float((on_gold["ds_label"] == expected).mean())
    return result


def _labels_table(parts: list[pd.DataFrame], datapoints: pd.DataFrame, attention: set[str],
                  id_column: str | None) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=[*LABEL_COLUMNS, *datapoints.columns[1:]])
    labels = pd.concat(parts, ignore_index=True)
    labels = labels[~is_in(labels["datapoint_id"], attention)]
    position = pd.Series(range(len(datapoints)), index=datapoints["datapoint_id"])
    labels = (labels.assign(_dp=labels["datapoint_id"].map(position))
              .sort_values(["_dp", "_order"], kind="stable").drop(columns=["_dp", "_order"]))
    clashing = {c: f"{c}_original" for c in datapoints.columns[1:] if c in LABEL_COLUMNS}  # e.g. a CSV column "label"
    labels = labels.merge(datapoints.rename(columns=clashing), on="datapoint_id", how="left")
    id_column = clashing.get(id_column, id_column) if id_column else None
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
