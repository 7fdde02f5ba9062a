"""Dataset columns named like report or output columns, and datapoints nobody answered (read_report + aggregate).

Every dataset column must reach the outputs, under one name in every file, and every datapoint of the
report must reach ``labels``: the study was paid for.
"""

from __future__ import annotations

import json
import warnings

import pytest

from taskbuilder.aggregate import LABEL_COLUMNS, aggregate
from taskbuilder.report import OUTPUT_COLUMNS, RESPONSE_COLUMNS, output_column_names, parse_report, read_report
from tests.unit.report_factory import SENTIMENT, write_report


def _row(datapoint_id, cells, *annotations):
    return {"datapoint_id": datapoint_id, "task_group_id": "g-" + datapoint_id, "instruction": SENTIMENT,
            "cells": cells, "annotations": list(annotations)}


@pytest.mark.parametrize("column", sorted(OUTPUT_COLUMNS))
def test_an_id_column_named_like_any_output_column_is_found_under_its_one_output_name(tmp_path, column):
    path = write_report(tmp_path / "report.csv", [column, "x"], [
        _row("d1", ["00123", "a"], ("p1", "Positive", "t1")),
        _row("d2", ["04567", "b"], ("p1", "Negative", "t2")),
    ])
    parsed = read_report(path, [SENTIMENT])
    renamed = f"{column}_original"
    assert parsed.column_names == {column: renamed, "x": "x"}
    assert list(parsed.responses.columns) == [*RESPONSE_COLUMNS, renamed, "x"]
    result = aggregate(parsed, [SENTIMENT], id_column=column)
    assert list(result.labels.columns) == [*LABEL_COLUMNS, renamed, "x"]
    assert result.labels[renamed].tolist() == ["00123", "04567"]  # text kept, ordered by the id
    assert result.labels["label"].tolist() == ["pos", "neg"]


def test_a_renamed_name_never_takes_another_dataset_columns_name():
    names = output_column_names(["participant_id", "participant_id_original", "text"])
    assert names == {"participant_id": "participant_id_original_original",
                     "participant_id_original": "participant_id_original", "text": "text"}


@pytest.mark.parametrize("columns", [
    ["text", "Annotator1_ID"],
    ["Annotator1_ID", "text"],
    ["Annotator2_Response", "Annotator1_Timestamp", "DataPoint_ID", "Question"],
    ["text", "Annotator1_ID", "Annotator1_Response", "Annotator1_Timestamp"],
])
def test_dataset_columns_named_like_report_columns_are_kept(tmp_path, columns):
    cells = [f"cell{i}" for i in range(len(columns))]
    path = write_report(tmp_path / "report.csv", columns, [
        _row("d1", cells, ("p1", "Positive", "t1"), ("p2", "Negative", "t2"))])
    responses = parse_report(path, [SENTIMENT])
    assert list(responses.columns[len(RESPONSE_COLUMNS):]) == columns
    assert responses[columns].values.tolist() == [cells, cells]
    assert responses["participant_id"].tolist() == ["p1", "p2"]
    assert responses["answer"].tolist() == ["pos", "neg"]


def test_the_uploaded_header_settles_a_dataset_ending_like_an_annotator_triple(tmp_path):
    columns = ["text", "Annotator1_ID", "Annotator1_Response", "Annotator1_Timestamp"]
    path = write_report(tmp_path / "report.csv", columns, [_row("d1", ["a", "b", "c", "d"])])  # nobody answered
    assert read_report(path, [SENTIMENT], dataset_columns=columns).column_names == {c: c for c in columns}
    with pytest.warns(UserWarning):  # without a fitting hint the header's tail reads as one annotator
        guessed = read_report(path, [SENTIMENT], dataset_columns=["text", "extra"])
    assert list(guessed.column_names) == ["text"]


def test_datapoints_nobody_answered_are_in_labels_and_counted(tmp_path):
    path = write_report(tmp_path / "report.csv", ["id", "text"], [
        _row("d1", ["1", "a"], ("p1", "Positive", "t1")),
        _row("d2", ["2", "b"]),
        _row("d3", ["3", "c"], ("p2", "", "t3")),  # answered, but no option selected
        _row("d4", ["4", "d"]),
    ])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = aggregate(read_report(path, [SENTIMENT]), [SENTIMENT], id_column="id")
    labels = result.labels
    assert labels["id"].tolist() == ["1", "2", "3", "4"]
    assert labels["label"].tolist() == ["pos", "", "", ""]
    assert [json.loads(v) for v in labels["votes"]] == [{"pos": 1}, {}, {}, {}]
    assert labels["text"].tolist() == ["a", "b", "c", "d"]
    assert result.summary["datapoints"] == 4
    assert result.summary["datapoints_without_answers"] == 2
    assert result.summary["instructions"][0]["datapoints_without_votes"] == 3
    assert any("2 of 4 datapoints got no answer" in str(w.message) for w in caught)


def test_a_report_nobody_answered_still_lists_every_datapoint(tmp_path):
    path = write_report(tmp_path / "report.csv", ["id"], [_row("d1", ["1"]), _row("d2", ["2"])])
    with pytest.warns(UserWarning, match="2 of 2 datapoints got no answer"):
        result = aggregate(read_report(path, [SENTIMENT]), [SENTIMENT], id_column="id")
    assert result.labels["id"].tolist() == ["1", "2"] and set(result.labels["label"]) == {""}
    assert (result.summary["datapoints"], result.summary["datapoints_without_answers"], result.summary["responses"]) == (2, 2, 0)
