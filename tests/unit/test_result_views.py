"""The artifacts' views of the results (taskbuilder/result_views.py): keyed on the user's id, text first,
labels as participants saw them, multi-select as per-option votes, 3 decimals, the summary's sections."""

from __future__ import annotations

import re

import pandas as pd

from taskbuilder.result_views import labels_view, participants_view, summary_markdown

SENTIMENT = {"type": "multiple_choice", "description": "Sentiment?", "answer_limit": 1,
             "options": [{"label": "Positive", "value": "pos"}, {"label": "Negative", "value": "neg"}]}
TOPICS = {"type": "multiple_choice", "description": "Topics?", "answer_limit": -1,
          "options": [{"label": "Price", "value": "price"}, {"label": "Quality", "value": "quality"}]}
INSTRUCTIONS = [SENTIMENT, TOPICS]


def _labels() -> pd.DataFrame:
    return pd.DataFrame({
        "datapoint_id": ["dp-1", "dp-1", "dp-2", "dp-2", "dp-3", "dp-3"],
        "instruction": ["Sentiment?", "Topics?"] * 3,
        "label": ["pos", "", "", "", "", ""],
        "tie": [False, False, True, False, False, False],
        "confidence": [2 / 3, float("nan"), 0.5, float("nan"), float("nan"), float("nan")],
        "votes": ['{"pos": 2, "neg": 1}', '{"price": 3, "quality": 1}', '{"pos": 1, "neg": 1}', '{"quality": 2}', "{}", "{}"],
        "ds_label": ["pos", "", "neg", "", "", ""],
        "ds_confidence": [0.987654, float("nan"), 0.51234, float("nan"), float("nan"), float("nan")],
        "review_id": ["r1", "r1", "r2", "r2", "r3", "r3"],
        "text": ["Great value", "Great value", "Meh", "Meh", "Broken", "Broken"],
        "META_gold": ["pos", "pos", "", "", "", ""],
    })


def _participants() -> pd.DataFrame:
    return pd.DataFrame({"participant_id": ["p1", "p2"], "answers": [4, 4], "agreement": [1 / 3, 1.0],
                         "gold_accuracy": [0.0, float("nan")], "flagged": [True, False], "submission_status": ["", ""]})


def test_labels_view_is_keyed_on_the_id_text_first_and_labels_as_shown():
    rows = labels_view(_labels(), INSTRUCTIONS, "review_id")
    assert list(rows[0])[:6] == ["review_id", "text", "label", "votes", "confidence", "instruction"]
    assert list(rows[0])[-1] == "datapoint_id" and "META_gold" not in rows[0]
    assert rows[0]["label"] == "Positive" and rows[0]["votes"] == "Positive 2 · Negative 1"
    assert rows[1]["label"] == "Price 3 · Quality 1"  # multi-select: per-option votes, not blank
    assert rows[2]["label"] == "" and rows[2]["tie"] is True and rows[2]["ds_label"] == "Negative"


def test_numbers_in_the_views_have_at_most_three_decimals():
    cells = [value for row in labels_view(_labels(), INSTRUCTIONS, "review_id") + participants_view(_participants())
             for value in row.values() if isinstance(value, float)]
    assert cells and all(len(repr(value).split(".")[1]) <= 3 for value in cells)
    assert participants_view(_participants())[1]["gold_accuracy"] == ""


def test_without_an_id_column_the_datapoint_id_leads():
    rows = labels_view(_labels(), INSTRUCTIONS, None)
    assert list(rows[0])[0] == "datapoint_id" and list(rows[0]).count("datapoint_id") == 1


def test_summary_markdown_has_every_section_with_the_figures():
    summary = {"datapoints": 3, "responses": 12, "participants": 2, "flagged_participants": 1, "datapoints_without_answers": 1,
               "instructions": [{"instruction": "Sentiment?", "responses": 6, "krippendorff_alpha": 0.123456, "percent_agreement": 0.5,
                                 "gold": {"datapoints": 1, "majority_vote_accuracy": 1.0, "dawid_skene_accuracy": 1.0}},
                                {"instruction": "Topics?", "responses": 6, "krippendorff_alpha": None, "percent_agreement": 0.25}]}
    cost = {"quote": {"quote_cents": 1800, "currency_code": "GBP", "max_budget_cents": 20000},
            "checked": {"checked_cents": 1920, "currency_code": "GBP", "max_budget_cents": 20000}}
    text = summary_markdown(summary, _labels(), _participants(), INSTRUCTIONS, "review_id", cost, {"labels.csv": "/out/labels.csv"})
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections == ["Counts", "Label distribution", "Agreement per instruction", "Gold accuracy", "Cost",
                        "Flagged participants", "Datapoints without answers", "Files"]
    assert "| Positive | 1 |" in text and "| Price | 3 |" in text and "| Quality | 3 |" in text
    assert "0.123" in text and "0.123456" not in text
    assert "18.00 GBP" in text and "19.20 GBP" in text and "1.20 GBP (120 cents)" in text
    assert "| p1 | 4 | 0.333 | 0.000 |" in text and "p2" not in text
    assert "1 (review_id): `r3`" in text
    assert "```json" not in text
