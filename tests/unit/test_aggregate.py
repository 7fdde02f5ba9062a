"""aggregate: majority vote with ties, Dawid-Skene (checked against crowd-kit), agreement, gold, attention checks."""

from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pandas as pd
import pytest

from taskbuilder.aggregate import (
    LABEL_COLUMNS,
    PARTICIPANT_COLUMNS,
    aggregate,
    nominal_alpha,
    percent_agreement,
    select_submissions_to_approve,
)
from taskbuilder.report import RESPONSE_COLUMNS, parse_report
from tests.unit.report_factory import SENTIMENT, simulate_labelling

TOPICS = {"type": "multiple_choice", "description": "Topics?", "answer_limit": -1,
          "options": [{"label": "Food", "value": "food"}, {"label": "Sports", "value": "sports"},
                      {"label": "News", "value": "news"}]}
BETTER = {"type": "multiple_choice_with_free_text", "description": "Which is better?", "answer_limit": 1,
          "options": [{"label": "A", "value": "a", "heading": "Why A?"}, {"label": "B", "value": "b", "heading": "Why B?"}]}
WHY = {"type": "free_text", "description": "Why?"}
CAREFUL = {f"good{i}": 0.85 for i in range(6)}
CARELESS = {f"random{i}": "random" for i in range(6)} | {f"constant{i}": "constant" for i in range(3)}


def responses(rows: list[tuple], columns: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """Responses table from (datapoint_id, instruction, participant_id, answer) tuples; ``columns`` gives
    dataset columns as {column: {datapoint_id: cell}} ("" where absent)."""
    columns = columns or {"text": {}}
    records = [{"datapoint_id": d, "task_group_id": "g-" + d, "instruction": ins["description"],
                "instruction_type": ins["type"], "participant_id": p, "answer": a, "answered_at": "t",
                **{c: cells.get(d, "") for c, cells in columns.items()}} for d, ins, p, a in rows]
    return pd.DataFrame(records, columns=[*RESPONSE_COLUMNS, *columns], dtype=str)


def _label(result, datapoint_id, instruction=SENTIMENT):
    labels = result.labels
    return labels[(labels["datapoint_id"] == datapoint_id) & (labels["instruction"] == instruction["description"])].iloc[0]


def test_majority_vote_reports_ties_and_confidence():
    votes = {"d1": ["pos", "pos", "neg"], "d2": ["pos", "neg"], "d3": ["neu", "neu", "pos", "pos"], "d4": ["neg"],
             "d5": ["Meh"]}
    table = responses([(d, SENTIMENT, f"p{k}", a) for d, answers in votes.items() for k, a in enumerate(answers)])
    result = aggregate(table, [SENTIMENT])
    assert list(result.labels.columns) == [*LABEL_COLUMNS, "text"]
    d1, d2, d3, d4, d5 = (_label(result, d) for d in ("d1", "d2", "d3", "d4", "d5"))
    assert (d1["label"], d1["tie"], d1["confidence"]) == ("pos", False, pytest.approx(2 / 3))
    assert json.loads(d1["votes"]) == {"pos": 2, "neg": 1} and list(json.loads(d3["votes"])) == ["pos", "neu"]
    assert (d2["label"], d2["tie"], d2["confidence"]) == ("", True, 0.5)
    assert (d3["label"], d3["tie"]) == ("", True)
    assert (d4["label"], d4["confidence"], d4["ds_label"]) == ("neg", 1.0, "neg")
    assert (d5["label"], d5["tie"], json.loads(d5["votes"])) == ("", False, {}) and math.isnan(d5["confidence"])
    stats = result.summary["instructions"][0]
    assert stats["label_distribution"] == {"pos": 1, "neg": 1, "neu": 0}
    assert (stats["ties"], stats["unreadable_answers"], stats["responses"]) == (2, 1, 11)


def test_percent_agreement_and_alpha_by_hand():
    # units [a,a], [b,b], [a,b]: o_aa = o_bb = 2, o_ab = o_ba = 1, n_a = n_b = 3, n = 6
    # alpha = 1 - (n-1) * (o_ab + o_ba) / (2 * n_a * n_b) = 1 - 5 * 2 / 18 = 4/9; pairs agree: 1, 1, 0
    table = responses([("u1", SENTIMENT, "p1", "pos"), ("u1", SENTIMENT, "p2", "pos"),
                       ("u2", SENTIMENT, "p1", "neg"), ("u2", SENTIMENT, "p2", "neg"),
                       ("u3", SENTIMENT, "p1", "pos"), ("u3", SENTIMENT, "p2", "neg")])
    stats = aggregate(table, [SENTIMENT]).summary["instructions"][0]
    assert stats["krippendorff_alpha"] == pytest.approx(4 / 9)
    assert stats["percent_agreement"] == pytest.approx(2 / 3)
    # three annotators: pairs agreeing 3/3, 1/3 ([a,a,b]); a single answer is not a pair
    assert percent_agreement(np.array([[3, 0], [2, 1], [1, 0]])) == pytest.approx((1 + 1 / 3) / 2)
    assert percent_agreement(np.array([[1, 0]])) is None
    assert nominal_alpha(np.array([[2, 0], [3, 0]])) is None  # one category used: alpha undefined


def test_alpha_equals_krippendorff_on_reliability_data():
    # Krippendorff's own example (3 coders x 15 units, values 1..4; nominal alpha 0.691)
    nan = np.nan
    data = [[nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
            [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
            [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4]]
    four = {**SENTIMENT, "options": [{"label": str(v), "value": str(v)} for v in (1, 2, 3, 4)]}
    rows = [(f"u{u}", four, f"c{c}", str(int(v))) for c, coder in enumerate(data)
            for u, v in enumerate(coder) if not math.isnan(v)]
    alpha = aggregate(responses(rows), [four]).summary["instructions"][0]["krippendorff_alpha"]
    assert alpha == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    assert alpha == pytest.approx(0.691358, abs=1e-6)


def _simulated(tmp_path, **kwargs):
    accuracies = CAREFUL | CARELESS
    truth = simulate_labelling(tmp_path / "report.csv", n_datapoints=300, accuracies=accuracies, per_datapoint=5,
                               seed=7, **kwargs)
    return truth, parse_report(tmp_path / "report.csv", [SENTIMENT])


def test_dawid_skene_beats_majority_vote_when_many_are_careless(tmp_path):
    truth, table = _simulated(tmp_path, gold_every=1)
    result = aggregate(table, [SENTIMENT], gold_column="META_gold", min_gold_accuracy=0.6)
    gold = result.summary["instructions"][0]["gold"]
    labels = result.labels.set_index("datapoint_id")
    truth = pd.Series(truth)
    assert gold["datapoints"] == 300
    assert gold["majority_vote_accuracy"] == pytest.approx((labels["label"] == truth).mean())
    assert gold["dawid_skene_accuracy"] == pytest.approx((labels["ds_label"] == truth).mean())
    assert gold["dawid_skene_accuracy"] > gold["majority_vote_accuracy"] + 0.15
    flagged = set(result.participants.loc[result.participants["flagged"], "participant_id"])
    assert flagged == set(CARELESS)


@pytest.mark.filterwarnings("ignore:The (inplace|copy) keyword")  # crowd-kit 1.4.2 under pandas 3
def test_dawid_skene_matches_crowd_kit(tmp_path):
    aggregation = pytest.importorskip(
        "crowdkit.aggregation", reason="crowd-kit is not installed (pip install -e '.[dev]' adds it)")
    _, table = _simulated(tmp_path)
    labels = aggregate(table, [SENTIMENT]).labels.set_index("datapoint_id")
    data = table.rename(columns={"datapoint_id": "task", "participant_id": "worker", "answer": "label"})
    probas = aggregation.DawidSkene(n_iter=100, tol=1e-5).fit_predict_proba(data[["task", "worker", "label"]])
    probas = probas.reindex(labels.index)
    assert (probas.idxmax(axis=1) == labels["ds_label"]).all()
    assert np.allclose(probas.max(axis=1), labels["ds_confidence"].astype(float), atol=1e-6)


def test_gold_rows_stay_and_attention_checks_are_scored_but_left_out(tmp_path):
    truth, table = _simulated(tmp_path, gold_every=3, attention_every=5)
    result = aggregate(table, [SENTIMENT], gold_column="META_gold", attention_check_column="META_attention")
    attention = {d for i, d in enumerate(sorted(truth)) if i % 5 == 0}
    gold = {d for i, d in enumerate(sorted(truth)) if i % 3 == 0}
    assert set(result.labels["datapoint_id"]) == set(truth) - attention
    assert gold - attention <= set(result.labels["datapoint_id"])
    assert result.summary["attention_check_datapoints"] == len(attention)
    assert result.summary["instructions"][0]["gold"]["datapoints"] == len(gold - attention)
    # a participant's gold accuracy counts attention-check rows that carry gold
    scored = table[table["META_gold"] != ""]
    expected = (scored["answer"] == scored["META_gold"]).groupby(scored["participant_id"]).mean()
    got = result.participants.set_index("participant_id")["gold_accuracy"]
    assert np.allclose(got.reindex(expected.index), expected)
    assert scored["datapoint_id"].isin(attention).any()


def test_attention_marks():
    marks = {"d1": "1", "d2": "yes", "d3": "0", "d4": "false", "d5": "No", "d6": "", "d7": "TRUE"}
    table = responses([(d, SENTIMENT, "p1", "pos") for d in marks], {"META_attention": marks})
    labels = aggregate(table, [SENTIMENT], attention_check_column="META_attention").labels
    assert set(labels["datapoint_id"]) == {"d3", "d4", "d5", "d6"}


def test_multi_select_gets_per_option_votes_only():
    table = responses([("d1", TOPICS, "p1", "food|news"), ("d1", TOPICS, "p2", "food"), ("d1", TOPICS, "p3", ""),
                       ("d2", TOPICS, "p1", "sports"), ("d2", TOPICS, "p2", "sports")])
    result = aggregate(table, [TOPICS])
    d1 = _label(result, "d1", TOPICS)
    assert json.loads(d1["votes"]) == {"food": 2, "news": 1}
    assert (d1["label"], d1["tie"], d1["ds_label"]) == ("", False, "")
    stats = result.summary["instructions"][0]
    assert stats["percent_agreement"] == pytest.approx(0.5)  # sets compared whole: d1 0/3 pairs, d2 1/1
    assert stats["selection_distribution"] == {"food": 2, "sports": 2, "news": 1}


def test_choice_with_free_text_aggregated_by_value():
    def answer(value, why):
        return json.dumps([{"value": value, "explanation": why}])

    table = responses([("d1", BETTER, "p1", answer("a", "NA")), ("d1", BETTER, "p2", answer("a", "clearer")),
                       ("d1", BETTER, "p3", answer("b", "")), ("d1", WHY, "p1", "because")])
    result = aggregate(table, [BETTER, WHY])
    d1 = _label(result, "d1", BETTER)
    assert (d1["label"], d1["confidence"], json.loads(d1["votes"])) == ("a", pytest.approx(2 / 3), {"a": 2, "b": 1})
    assert len(result.labels) == 1  # free text gets no label row


def test_participant_agreement_excludes_ties_and_single_votes():
    table = responses([("d1", SENTIMENT, "p1", "pos"), ("d1", SENTIMENT, "p2", "pos"), ("d1", SENTIMENT, "p3", "neg"),
                       ("d2", SENTIMENT, "p1", "pos"), ("d2", SENTIMENT, "p3", "neg"),
                       ("d3", SENTIMENT, "p1", "neg"), ("d3", WHY, "p1", "text")])
    result = aggregate(table, [SENTIMENT, WHY], min_agreement=0.5)
    participants = result.participants.set_index("participant_id")
    assert list(result.participants.columns) == PARTICIPANT_COLUMNS
    assert participants["answers"].to_dict() == {"p1": 4, "p2": 1, "p3": 2}
    assert participants["agreement"].to_dict() == {"p1": 1.0, "p2": 1.0, "p3": 0.0}
    assert participants["flagged"].to_dict() == {"p1": False, "p2": False, "p3": True}
    assert participants["gold_accuracy"].isna().all()
    assert result.summary["flagged_participants"] == 1


def test_gold_cell_that_is_not_an_option_value_is_ignored_with_a_warning():
    table = responses([("d1", SENTIMENT, "p1", "pos"), ("d2", SENTIMENT, "p1", "pos")],
                      {"META_gold": {"d1": "pos", "d2": "Positive"}})
    with pytest.warns(UserWarning, match=r"META_gold: 1 cell\(s\) are not option values of 'Overall sentiment\?'.*datapoint 'd2' has 'Positive'"):
        result = aggregate(table, [SENTIMENT], gold_column="META_gold")
    assert result.summary["gold_datapoints"] == 1
    assert result.participants["gold_accuracy"].tolist() == [1.0]


def test_id_column_orders_labels_and_unknown_columns_are_named():
    ids = {"d1": "10", "d2": "9", "d3": "100"}
    table = responses([(d, SENTIMENT, "p1", "pos") for d in ids], {"id": ids})
    assert aggregate(table, [SENTIMENT], id_column="id").labels["id"].tolist() == ["9", "10", "100"]
    with pytest.raises(ValueError, match=r"gold_column 'META_gold' is not a dataset column of the report"):
        aggregate(table, [SENTIMENT], gold_column="META_gold")


def test_summary_is_strict_json(tmp_path):
    _, table = _simulated(tmp_path, gold_every=2, attention_every=7)
    result = aggregate(table, [SENTIMENT], gold_column="META_gold", attention_check_column="META_attention")
    again = json.loads(json.dumps(result.summary, allow_nan=False))
    assert again["responses"] == len(table) == 1500
    assert (again["datapoints"], again["participants"]) == (300, 15)


def test_select_submissions_to_approve_only_awaiting_review_and_not_flagged():
    participants = pd.DataFrame({"participant_id": ["ok", "bad", "ok2"], "answers": [3, 3, 3],
                                 "agreement": [1.0, 0.0, 1.0], "gold_accuracy": [np.nan] * 3,
                                 "flagged": [False, True, False], "submission_status": [""] * 3})
    submissions = [{"id": "s1", "participant_id": "ok", "status": "AWAITING REVIEW"},
                   {"id": "s2", "participant_id": "bad", "status": "AWAITING REVIEW"},
                   {"id": "s3", "participant_id": "ok2", "status": "RETURNED"},
                   {"id": "s4", "participant_id": "ok2", "status": "TIMED-OUT"},
                   {"id": "s5", "participant_id": "ok2", "status": "APPROVED"},
                   {"id": "s6", "participant_id": "stranger", "status": "AWAITING REVIEW"},
                   {"id": "s7", "participant_id": "ok2", "status": "AWAITING REVIEW"}]
    assert select_submissions_to_approve(submissions, participants) == ["s1", "s7"]


def test_no_readable_votes_and_no_responses_give_empty_figures():
    table = responses([("d1", SENTIMENT, "p1", "Meh"), ("d1", TOPICS, "p1", "Cooking"), ("d1", WHY, "p1", "x")])
    result = aggregate(table, [SENTIMENT, TOPICS, WHY], min_agreement=0.5)
    assert result.labels[["label", "votes", "ds_label"]].values.tolist() == [["", "{}", ""], ["", "{}", ""]]
    assert [s["unreadable_answers"] for s in result.summary["instructions"]] == [1, 1]
    assert result.summary["instructions"][0]["krippendorff_alpha"] is None
    assert result.participants["flagged"].tolist() == [False]  # no agreement figure flags nothing
    empty = aggregate(responses([]), [SENTIMENT, WHY])
    assert empty.labels.empty and empty.participants.empty
    assert (empty.summary["datapoints"], empty.summary["responses"]) == (0, 0)


def test_dataset_columns_named_like_label_columns_get_the_original_suffix():
    rows = [("d1", SENTIMENT, "p1", "pos"), ("d1", SENTIMENT, "p2", "pos")]
    table = responses(rows, {"label": {"d1": "my own label"}, "votes": {"d1": "12"}, "text": {"d1": "hi"}})
    result = aggregate(table, [SENTIMENT])
    assert list(result.labels.columns) == [*LABEL_COLUMNS, "label_original", "votes_original", "text"]
    row = result.labels.iloc[0]
    assert (row["label"], row["label_original"], row["votes_original"]) == ("pos", "my own label", "12")


@pytest.mark.parametrize("dtype", [object, "str"])
def test_is_in_answers_as_isin_does(dtype):
    from taskbuilder.aggregate import is_in

    column = pd.Series(["a", "b", "c", "a", "é", ""], dtype=dtype)
    for candidates in (pd.Series(["a", "é", "a"], dtype=dtype), ["b", "x"], {"c", ""}, {"a": 1, "zz": 2}.keys(), [],
                       pd.Index(["b"]), np.array(["c", "é"], dtype=object)):
        expected = column.isin(list(candidates)).to_numpy()
        assert is_in(column, candidates).tolist() == expected.tolist(), candidates
