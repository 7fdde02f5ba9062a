"""One-coin Dawid-Skene with a Beta prior: the label posterior when each participant answered only a handful
of datapoints (issue 19's adaptive overlap; no Prefect).

Model (Dawid & Skene 1979, restricted to one accuracy per participant, the "one-coin" model): a participant
``w`` gives the true option with probability ``a_w`` and each other option with ``(1 - a_w) / (K - 1)``.
The full model fits a K × K confusion matrix per participant, which ~10 answers cannot estimate; one number
can, once it is shrunk toward the pool: ``a_w`` has a Beta prior of mean ``m`` (the pool's accuracy, fitted
from every answer) and strength :data:`PRIOR_STRENGTH` (pseudo-answers), so the EM's M-step is
``a_w = (expected correct answers of w + s·m) / (answers of w + s)``. A participant who agrees with few
others (e.g. a careless one, answering at random) is pulled below the pool and weighs less; one who agrees
with the others weighs more. The option shares (the class prior) have a Dirichlet prior of the same strength per
option: fitted freely they collapsed onto one option when the answers carry little evidence (participants near
chance), and every posterior then read ~1. Fitted over ALL answers of the job so far (every round), never with gold.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from taskbuilder.aggregate import is_in

PRIOR_STRENGTH = 20.0
"""Pseudo-answers of the Beta prior on each participant's accuracy (chosen on B10-like simulations, NOTES.md)."""
_EPS = 1e-6


def one_coin(tasks: np.ndarray, workers: np.ndarray, labels: np.ndarray, n_labels: int, *,
             prior_strength: float = PRIOR_STRENGTH, n_iter: int = 200, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """EM fit of the one-coin model with a Beta prior on each participant's accuracy.

    Args:
        tasks, workers, labels: equal-length integer arrays, one entry per answer; codes 0..n-1 (every task
            and worker code below the maximum must occur); ``labels`` are option codes below ``n_labels`` (≥ 2).
        prior_strength: pseudo-answers of the accuracy prior, and pseudo-datapoints per option of the option
            shares' prior (0: plain one-coin EM).
        n_iter: maximum EM iterations; tol: stop when no posterior moves by more than this.

    Returns:
        ``(posterior, accuracy)``: tasks × n_labels posteriors (rows sum to 1), and each participant's fitted
        accuracy (0–1). Initialised from the majority shares, as crowd-kit's estimators are.
    """
    n_tasks, n_workers = int(tasks.max()) + 1, int(workers.max()) + 1
    counts = np.zeros((n_tasks, n_labels))
    np.add.at(counts, (tasks, labels), 1.0)
    posterior = counts / counts.sum(axis=1, keepdims=True)
    answers = np.bincount(workers, minlength=n_workers).astype(float)
    accuracy = np.full(n_workers, 1.0 / n_labels)
    for _ in range(n_iter):
        correct = np.bincount(workers, weights=posterior[tasks, labels], minlength=n_workers)
        pool = float(np.clip(correct.sum() / answers.sum(), 1.0 / n_labels + 1e-3, 1.0 - 1e-3))
        accuracy = np.clip((correct + prior_strength * pool) / (answers + prior_strength), _EPS, 1.0 - _EPS)
        right, wrong = np.log(accuracy)[workers], np.log((1.0 - accuracy) / (n_labels - 1))[workers]
        shares = (posterior.sum(axis=0) + prior_strength) / (n_tasks + n_labels * prior_strength)
        log_likelihood = np.log(np.clip(shares, 1e-10, None))[None, :] + np.bincount(
            tasks, weights=wrong, minlength=n_tasks)[:, None]
        np.add.at(log_likelihood, (tasks, labels), right - wrong)
        updated = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
        updated /= updated.sum(axis=1, keepdims=True)
        moved = float(np.abs(updated - posterior).max())
        posterior = updated
        if moved < tol:
            break
    return posterior, accuracy


def one_coin_labels(responses: pd.DataFrame, labels: pd.DataFrame, instruction: str) -> pd.DataFrame:
    """The one-coin label and its posterior per datapoint of the single-select ``instruction``.

    Args:
        responses: the tidy responses (``datapoint_id``, ``instruction``, ``participant_id``, ``answer``: an
            option value), every round's; answers that are no voted option of ``labels`` are left out.
        labels: :func:`taskbuilder.aggregate.aggregate`'s table (its ``votes`` JSON names the options counted).
        instruction: the instruction's description, as in both tables.

    Returns:
        ``datapoint_id``, ``oc_label`` (empty when the two best posteriors are equal or nobody answered),
        ``oc_confidence`` (posterior of ``oc_label``, 0–1; 0 without answers), one row per datapoint of
        ``labels`` for the instruction, in its order.
    """
    rows = labels.loc[labels["instruction"] == instruction, "datapoint_id"].astype(str)
    options = sorted({value for text in labels.loc[labels["instruction"] == instruction, "votes"]
                      for value in json.loads(text or "{}")})
    answered = responses.loc[(responses["instruction"] == instruction) & responses["answer"].isin(options)]
    answered = answered.loc[is_in(answered["datapoint_id"].astype(str), rows)]
    result = pd.DataFrame({"datapoint_id": rows.to_numpy(), "oc_label": "", "oc_confidence": 0.0})
    if answered.empty:
        return result
    task_codes, task_ids = pd.factorize(answered["datapoint_id"].astype(str))
    worker_codes, _ = pd.factorize(answered["participant_id"])
    label_codes = pd.Categorical(answered["answer"], categories=options).codes
    posterior, _ = one_coin(task_codes, worker_codes, np.asarray(label_codes), max(len(options), 2))
    ordered = np.sort(posterior, axis=1)
    tied = ordered[:, -1] - ordered[:, -2] < 1e-12
    best = np.asarray(options + ["-"], dtype=object)[posterior.argmax(axis=1)]
    fitted = pd.DataFrame({"oc_label": np.where(tied, "", best), "oc_confidence": ordered[:, -1]}, index=task_ids)
    found = is_in(result["datapoint_id"], fitted.index)
    picked = fitted.loc[result.loc[found, "datapoint_id"]]
    result.loc[found, "oc_label"] = picked["oc_label"].to_numpy()
    result.loc[found, "oc_confidence"] = picked["oc_confidence"].to_numpy()
    return result
