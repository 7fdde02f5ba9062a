"""parse_report on synthetic wide reports: every instruction type, text kept exactly, bad input named."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest

from taskbuilder.report import RESPONSE_COLUMNS, UnmappedAnswerWarning, parse_report, split_joined
from tests.unit.report_factory import write_report

SENTIMENT = {"type": "multiple_choice", "description": "Overall sentiment?", "answer_limit": 1,
             "options": [{"label": "Positive", "value": "pos"}, {"label": "Negative", "value": "neg"}]}
TOPICS = {"type": "multiple_choice", "description": "Topics?", "answer_limit": -1,
          "options": [{"label": "Food | Drink", "value": "food_drink"}, {"label": "Sports", "value": "sports"},
                      {"label": "News", "value": "news"}]}
BETTER = {"type": "multiple_choice_with_free_text", "description": "Which response is better?", "answer_limit": 1,
          "options": [{"label": "Response A", "value": "a", "heading": "Why A?"},
                      {"label": "Response B", "value": "b", "heading": "Why B?"}]}
PRICE = {"type": "free_text_with_unit", "description": "Price?", "unit_position": "prefix",
         "unit_options": [{"label": "Euro", "value": "EUR"}, {"label": "US dollar", "value": "USD"}]}
PHOTO = {"type": "file_upload", "description": "Upload a photo", "accepted_file_types": [".jpg"],
         "max_file_size_mb": 5, "min_file_count": 1, "max_file_count": 2}
WHY = {"type": "free_text", "description": "Why?"}
INSTRUCTIONS = [SENTIMENT, TOPICS, BETTER, PRICE, PHOTO, WHY]
COLUMNS = ["text", "answer", "instruction", "META_gold"]
CELLS = {"d1": ["NA", "001", "1.50", "pos"], "d2": ['say "hi", then\nleave', "", "null", ""]}
FILES = '[{"file_name": "cat.jpg", "file_key": "k/1", "file_size_mb": 1.50, "content_type": "image/jpeg"}]'


def _row(datapoint_id, instruction, *annotations):
    return {"datapoint_id": datapoint_id, "task_group_id": "g-" + datapoint_id, "instruction": instruction,
            "cells": CELLS[datapoint_id], "annotations": list(annotations)}


def _full_report(path):
    return write_report(path, COLUMNS, [
        _row("d1", SENTIMENT, ("p1", "Positive", "t1"), ("p2", "Negative", "t2"), ("p3", "Positive", "t3")),
        _row("d1", TOPICS, ("p1", "Food | Drink|News", "t4"), ("p2", "Sports|Food | Drink", "t5"), ("p3", "", "t6")),
        _row("d1", BETTER, ("p1", json.dumps([{"label": "Response B", "explanation": 'shorter, "NA" \u00e9'}]), "t7")),
        _row("d1", PRICE, ("p1", '{"value": "1.50", "unit": "US dollar"}', "t8"),
             ("p2", '{"value": 12.50, "unit": "Euro"}', "t9")),
        _row("d1", PHOTO, ("p1", FILES, "t10")),
        _row("d1", WHY, ("p1", "NA", "t11"), ("p2", " 001 ", "t12"), ("p3", "", "t13")),
        _row("d2", SENTIMENT, ("p2", "Negative", "t14")),
        _row("d2", WHY, ("p2", "line 1\nline 2 \U0001F600", "t15")),
    ])


def test_columns_order_and_original_columns_kept_as_text(tmp_path):
    responses = parse_report(_full_report(tmp_path / "report.csv"), INSTRUCTIONS)
    assert list(responses.columns) == RESPONSE_COLUMNS + ["text", "answer_original", "instruction_original", "META_gold"]
    d1 = responses[responses["datapoint_id"] == "d1"].iloc[0]
    assert (d1["text"], d1["answer_original"], d1["instruction_original"], d1["META_gold"]) == ("NA", "001", "1.50", "pos")
    d2 = responses[responses["datapoint_id"] == "d2"].iloc[0]
    assert (d2["text"], d2["answer_original"], d2["instruction_original"]) == ('say "hi", then\nleave', "", "null")
    assert responses.isna().sum().sum() == 0
    assert d1["task_group_id"] == "g-d1" and d1["answered_at"] == "t1"


def test_one_row_per_datapoint_instruction_participant_in_report_order(tmp_path):
    responses = parse_report(_full_report(tmp_path / "report.csv"), INSTRUCTIONS)
    assert len(responses) == 3 + 3 + 1 + 2 + 1 + 3 + 1 + 1
    assert responses["answered_at"].tolist() == [f"t{i}" for i in range(1, 16)]
    assert responses.groupby(["datapoint_id", "instruction", "participant_id"]).size().max() == 1
    assert responses.loc[responses["instruction"] == "Why?", "instruction_type"].unique().tolist() == ["free_text"]


def test_answers_encoded_per_instruction_type(tmp_path):
    responses = parse_report(_full_report(tmp_path / "report.csv"), INSTRUCTIONS)
    answer = {(r.datapoint_id, r.instruction, r.participant_id): r.answer for r in responses.itertuples()}
    assert [answer["d1", "Overall sentiment?", p] for p in ("p1", "p2", "p3")] == ["pos", "neg", "pos"]
    # multi-select: values in option order, a label holding "|" kept whole, none selected = ""
    assert answer["d1", "Topics?", "p1"] == "food_drink|news"
    assert answer["d1", "Topics?", "p2"] == "food_drink|sports"
    assert answer["d1", "Topics?", "p3"] == ""
    assert json.loads(answer["d1", "Which response is better?", "p1"]) == [
        {"value": "b", "explanation": 'shorter, "NA" \u00e9'}]
    assert json.loads(answer["d1", "Price?", "p1"]) == {"value": "1.50", "unit": "USD"}
    assert json.loads(answer["d1", "Price?", "p2"]) == {"value": "12.50", "unit": "EUR"}  # number text as typed
    assert answer["d1", "Upload a photo", "p1"] == FILES
    assert [answer["d1", "Why?", p] for p in ("p1", "p2", "p3")] == ["NA", " 001 ", ""]
    assert answer["d2", "Why?", "p2"] == "line 1\nline 2 \U0001F600"


def test_empty_triples_are_skipped_and_report_left_untouched(tmp_path):
    path = _full_report(tmp_path / "report.csv")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    responses = parse_report(path, INSTRUCTIONS)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert set(responses.loc[responses["datapoint_id"] == "d2", "participant_id"]) == {"p2"}


def test_short_rows_count_missing_cells_as_empty(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text("DataPoint_ID,Task_Group_ID,Task_Type,Question,text,Annotator1_ID,Annotator1_Response,"
                    "Annotator1_Timestamp,Annotator2_ID,Annotator2_Response,Annotator2_Timestamp\n"
                    "d1,g1,free_text,Why?,NA,p1,because,t1\n", encoding="utf-8")
    responses = parse_report(path, INSTRUCTIONS)
    assert responses[["participant_id", "answer", "text"]].values.tolist() == [["p1", "because", "NA"]]


def test_crlf_and_bom_reports_read_the_same(tmp_path):
    rows = [_row("d1", SENTIMENT, ("p1", "Positive", "t1")), _row("d1", WHY, ("p1", "a\nb", "t2"))]
    lf = parse_report(write_report(tmp_path / "lf.csv", COLUMNS, rows), INSTRUCTIONS)
    crlf = parse_report(write_report(tmp_path / "crlf.csv", COLUMNS, rows, newline="\r\n"), INSTRUCTIONS)
    assert crlf.equals(lf)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "lf.csv").read_bytes())
    assert parse_report(bom, INSTRUCTIONS).equals(lf)


def test_unknown_label_kept_raw_with_a_warning(tmp_path):
    path = write_report(tmp_path / "report.csv", COLUMNS, [
        _row("d1", SENTIMENT, ("p1", "Positive", "t1"), ("p2", "Meh", "t2")),
        _row("d1", TOPICS, ("p1", "Sports|Cooking", "t3"))])
    with pytest.warns(UnmappedAnswerWarning) as caught:
        responses = parse_report(path, INSTRUCTIONS)
    assert responses["answer"].tolist() == ["pos", "Meh", "Sports|Cooking"]
    messages = [str(w.message) for w in caught]
    assert any("'Meh'" in m and "data row 1 Annotator2_Response" in m for m in messages)
    assert any("'Sports|Cooking'" in m and "Topics?" in m for m in messages)


def test_duplicate_descriptions_fall_back_to_type_then_order(tmp_path):
    first = {"type": "multiple_choice", "description": "Rate it", "answer_limit": 1,
             "options": [{"label": "Good", "value": "good"}, {"label": "Bad", "value": "bad"}]}
    second = {"type": "multiple_choice", "description": "Rate it", "answer_limit": 1,
              "options": [{"label": "Good", "value": "G"}, {"label": "Bad", "value": "B"}]}
    text = {"type": "free_text", "description": "Rate it"}
    path = write_report(tmp_path / "report.csv", COLUMNS, [
        _row("d1", text, ("p1", "Good", "t0")),
        _row("d1", first, ("p1", "Good", "t1")),
        _row("d1", second, ("p1", "Bad", "t2")),
        _row("d2", first, ("p2", "Bad", "t3")),
        _row("d2", second, ("p2", "Good", "t4"))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        responses = parse_report(path, [first, second, text])
    assert responses["answer"].tolist() == ["Good", "good", "B", "bad", "G"]
    assert responses["instruction_type"].tolist() == ["free_text"] + ["multiple_choice"] * 4


def test_row_matching_no_instruction_names_row_and_question(tmp_path):
    path = write_report(tmp_path / "report.csv", COLUMNS, [
        _row("d1", SENTIMENT, ("p1", "Positive", "t1")), _row("d1", {**WHY, "description": "Other?"}, ("p1", "x", "t2"))])
    with pytest.raises(ValueError, match=r"report\.csv: data row 2: Question 'Other\?' with Task_Type 'free_text'"):
        parse_report(path, INSTRUCTIONS)


def test_not_a_report_header_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\nhello,pos\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"data\.csv: line 1: the header must start with DataPoint_ID"):
        parse_report(path, INSTRUCTIONS)


def test_response_without_participant_id_is_refused(tmp_path):
    path = write_report(tmp_path / "report.csv", COLUMNS, [
        _row("d1", SENTIMENT, ("p1", "Positive", "t1"), ("", "Negative", "t2"))])
    with pytest.raises(ValueError, match=r"data row 1: Annotator2_Response/Timestamp is set but Annotator2_ID is empty"):
        parse_report(path, INSTRUCTIONS)


def test_report_without_responses_gives_an_empty_table(tmp_path):
    path = write_report(tmp_path / "report.csv", COLUMNS, [_row("d1", SENTIMENT)])
    responses = parse_report(path, INSTRUCTIONS)
    assert responses.empty and list(responses.columns) == RESPONSE_COLUMNS + [
        "text", "answer_original", "instruction_original", "META_gold"]


@pytest.mark.parametrize(("text", "names", "expected"), [
    ("a|b", ["a", "b"], [0, 1]),
    ("b|a", ["a", "b"], [0, 1]),
    ("x|y|z", ["x|y", "z", "x"], [0, 1]),
    ("", ["a"], []),
    ("a|", ["a"], None),
    ("c", ["a", "b"], None),
    ("a|a", ["a"], None),
])
def test_split_joined(text, names, expected):
    assert split_joined(text, names) == expected
