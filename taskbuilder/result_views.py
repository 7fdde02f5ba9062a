"""What people read of a job's results (the Prefect artifacts): the labels and participants tables and the
results summary in Markdown. The output files (labels.csv, summary.json, ...) are unchanged; these are views.

- :func:`labels_view`: one row per datapoint and choice instruction, the user's id column first, then the
  text participants saw (the file's displayed columns), the label (the option's *label*, as participants
  saw it), the votes per option (``Positive 2 · Neutral 1``; a multi-select instruction has no majority
  label: its label cell holds the per-option votes), the confidence, then the instruction, the tie flag,
  Dawid-Skene's label and confidence; numbers rounded to 3 decimals, Prolific's datapoint id last.
- :func:`participants_view`: the participants table with shares rounded to 3 decimals.
- :func:`summary_markdown`: counts, label distribution, agreement per instruction, gold accuracy, cost
  spent against the estimate, flagged participants, datapoints without answers, file locations.

Inputs: ``labels``/``participants``/``summary`` of :class:`taskbuilder.aggregate.AggregateResult`, the
instruction payloads (API doc §4.3 shape: ``type``, ``description``, ``options[{label, value}]``,
``answer_limit``), and the run's ``cost`` dict (``quote``: :class:`taskbuilder.cost.JobPrice` dump,
``checked``: :class:`taskbuilder.cost.PublishCost` dump or None); money in cents.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

DECIMALS = 3
META_PREFIX = "META_"
ROWS_LISTED = 20
"""Participants and datapoint ids listed by name in the summary; more are counted."""


def rounded(value: Any) -> Any:
    """A float rounded to :data:`DECIMALS` (NaN → empty text); anything else unchanged."""
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, DECIMALS)
    return value


def _option_labels(instructions: list[dict]) -> dict[str, dict[str, str]]:
    """Instruction description → {option value: option label}."""
    return {ins["description"]: {str(o["value"]): str(o["label"]) for o in ins.get("options", [])} for ins in instructions}


def _multi_select(instructions: list[dict]) -> set[str]:
    return {ins["description"] for ins in instructions if ins.get("options") and ins.get("answer_limit", 1) != 1}


def votes_text(votes_json: str, labels_of: dict[str, str]) -> str:
    """``{"pos": 2, "neu": 1}`` → ``Positive 2 · Neutral 1`` (option labels, option order kept)."""
    votes = json.loads(votes_json or "{}")
    return " · ".join(f"{labels_of.get(value, value)} {count}" for value, count in votes.items())


def labels_view(labels: pd.DataFrame, instructions: list[dict], id_column: str | None,
                dataset_columns: list[str] | None = None) -> list[dict[str, Any]]:
    """The labels table as artifact rows (see the module docstring); ``dataset_columns``: the file's
    columns in order (default: those of ``labels`` after the label columns)."""
    options = _option_labels(instructions)
    multi = _multi_select(instructions)
    key = id_column if id_column and id_column in labels.columns else "datapoint_id"
    given = dataset_columns or [c for c in labels.columns if c not in _LABEL_FIELDS]
    shown = [c for c in given if c in labels.columns and c != key and not c.startswith(META_PREFIX) and c not in _LABEL_FIELDS]
    rows = []
    for record in labels.to_dict(orient="records"):
        labels_of = options.get(record.get("instruction"), {})
        votes = votes_text(record.get("votes", "{}"), labels_of)
        if record.get("instruction") in multi:
            label = votes
        else:
            label = labels_of.get(str(record.get("label", "")), record.get("label", ""))
        row = {key: record.get(key, "")}
        row.update({column: record.get(column, "") for column in shown})
        row.update({
            "label": label,
            "votes": votes,
            "confidence": rounded(record.get("confidence")),
            "instruction": record.get("instruction", ""),
            "tie": bool(record.get("tie")),
            "ds_label": labels_of.get(str(record.get("ds_label", "")), record.get("ds_label", "")),
            "ds_confidence": rounded(record.get("ds_confidence")),
        })
        if key != "datapoint_id":
            row["datapoint_id"] = record.get("datapoint_id", "")
        rows.append({name: "" if value is None else value for name, value in row.items()})
    return rows


_LABEL_FIELDS = ("datapoint_id", "instruction", "label", "tie", "confidence", "votes", "ds_label", "ds_confidence")


def participants_view(participants: pd.DataFrame) -> list[dict[str, Any]]:
    """The participants table as artifact rows, shares rounded to 3 decimals (empty when not scored)."""
    return [{name: rounded(value) for name, value in record.items()} for record in participants.to_dict(orient="records")]


def _share(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _money(cents: int | None, currency: str) -> str:
    return "unknown" if cents is None else f"{cents / 100:,.2f} {currency} ({cents} cents)"


def _distribution(labels: pd.DataFrame, instruction: dict) -> list[str]:
    description = instruction["description"]
    labels_of = _option_labels([instruction])[description]
    rows = labels[labels["instruction"] == description]
    lines = [f"### {description}", "", "| option | " + ("datapoints labelled" if instruction.get("answer_limit", 1) == 1
                                                        else "votes") + " |", "|---|---|"]
    if instruction.get("answer_limit", 1) == 1:
        counts = rows["label"].value_counts()
        lines += [f"| {label} | {int(counts.get(value, 0))} |" for value, label in labels_of.items()]
        lines.append(f"| (tie or no answer) | {int((rows['label'] == '').sum())} |")
    else:
        totals: dict[str, int] = {}
        for votes in rows["votes"]:
            for value, count in json.loads(votes or "{}").items():
                totals[value] = totals.get(value, 0) + int(count)
        lines += [f"| {label} | {totals.get(value, 0)} |" for value, label in labels_of.items()]
    return lines + [""]


def summary_markdown(summary: dict, labels: pd.DataFrame, participants: pd.DataFrame, instructions: list[dict],
                     id_column: str | None, cost: dict | None = None, locations: dict[str, str] | None = None) -> str:
    """The results summary in Markdown (sections in the module docstring)."""
    out = ["# Results", "", "## Counts", "",
           "| datapoints | responses | participants | flagged participants | datapoints without answers |",
           "|---|---|---|---|---|",
           f"| {summary.get('datapoints', 0)} | {summary.get('responses', 0)} | {summary.get('participants', 0)} "
           f"| {summary.get('flagged_participants', 0)} | {summary.get('datapoints_without_answers', 0)} |", ""]
    choices = [ins for ins in instructions if ins.get("options")]
    out += ["## Label distribution", ""]
    for instruction in choices:
        out += _distribution(labels, instruction)
    if not choices:
        out += ["No choice instruction: nothing to count.", ""]
    stats = summary.get("instructions", [])
    out += ["## Agreement per instruction", "", "| instruction | responses | Krippendorff's α | percent agreement |",
            "|---|---|---|---|"]
    out += [f"| {s['instruction']} | {s.get('responses', 0)} | {_share(s.get('krippendorff_alpha'))} "
            f"| {_share(s.get('percent_agreement'))} |" for s in stats]
    out += ["", "## Gold accuracy", ""]
    golds = [(s["instruction"], s["gold"]) for s in stats if s.get("gold")]
    if golds:
        out += ["| instruction | gold datapoints | majority vote | Dawid-Skene |", "|---|---|---|---|"]
        out += [f"| {name} | {g['datapoints']} | {_share(g.get('majority_vote_accuracy'))} "
                f"| {_share(g.get('dawid_skene_accuracy'))} |" for name, g in golds]
    else:
        out.append("No gold column: not measured.")
    out += ["", *_cost_lines(cost), "", *_flagged_lines(participants), "", *_unanswered_lines(labels, id_column)]
    if locations:
        out += ["", "## Files", ""] + [f"- `{name}`: {where}" for name, where in locations.items()]
    return "\n".join(out) + "\n"


def _cost_lines(cost: dict | None) -> list[str]:
    lines = ["## Cost", ""]
    quote, checked = (cost or {}).get("quote"), (cost or {}).get("checked")
    if not quote and not checked:
        return lines + ["Not recorded for this run."]
    currency = (checked or quote).get("currency_code", "")
    estimate = quote.get("quote_cents") if quote else None
    spent = checked.get("checked_cents") if checked else None
    lines += ["| | amount |", "|---|---|", f"| estimate (cost calculator, before anything was created) | {_money(estimate, currency)} |",
              f"| spent (the study's own cost, checked before publishing) | {_money(spent, currency)} |"]
    if estimate is not None and spent is not None:
        lines.append(f"| spent − estimate | {_money(spent - estimate, currency)} |")
    budget = (checked or quote).get("max_budget_cents")
    if budget is not None:
        lines.append(f"| max_budget | {_money(budget, currency)} |")
    return lines


def _flagged_lines(participants: pd.DataFrame) -> list[str]:
    flagged = participants[participants["flagged"].astype(bool)] if len(participants) else participants
    lines = ["## Flagged participants", ""]
    if not len(flagged):
        return lines + ["None (below min_agreement or min_gold_accuracy)."]
    lines += ["| participant | answers | agreement | gold accuracy |", "|---|---|---|---|"]
    lines += [f"| {p['participant_id']} | {p['answers']} | {_share(p['agreement'])} | {_share(p['gold_accuracy'])} |"
              for p in flagged.head(ROWS_LISTED).to_dict(orient="records")]
    if len(flagged) > ROWS_LISTED:
        lines.append(f"\n… and {len(flagged) - ROWS_LISTED} more (participants.csv).")
    return lines


def _unanswered_lines(labels: pd.DataFrame, id_column: str | None) -> list[str]:
    key = id_column if id_column and id_column in labels.columns else "datapoint_id"
    empty = labels[labels["votes"].isin(["{}", ""])] if len(labels) else labels
    ids = list(dict.fromkeys(empty[key].astype(str))) if len(empty) else []
    lines = ["## Datapoints without answers", ""]
    if not ids:
        return lines + ["None: every datapoint got at least one answer."]
    listed = ", ".join(f"`{i}`" for i in ids[:ROWS_LISTED])
    more = f" … and {len(ids) - ROWS_LISTED} more" if len(ids) > ROWS_LISTED else ""
    return lines + [f"{len(ids)} ({key}): {listed}{more}. They are in labels.csv with an empty label and no votes."]
