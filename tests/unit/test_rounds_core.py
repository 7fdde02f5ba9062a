"""The rounds' core (issue 19): which datapoints a follow-up round asks again, the round keys and filters, the
files of a round's rows (bytes as uploaded), and the spec's round fields."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from taskbuilder.jobspec import AnnotationJob, SpecError
from taskbuilder.jobspec.run_control import RUN_CONTROL_FIELDS
from taskbuilder.rounds import (DAWID_SKENE, MAJORITY_SHARE, MIN_ANSWERS_FOR_ONE_COIN, MIN_ANSWERS_PER_PARTICIPANT, ONE_COIN,
                                below_target, blocklist_filter, confidence_rule, label_confidence, round_key, write_subset)

Q = "Sentiment?"


def _labels(rows: list[tuple[str, str, bool, float, dict, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"datapoint_id": d, "instruction": Q, "label": label, "tie": tie, "confidence": conf,
                          "votes": json.dumps(votes), "ds_label": ds, "ds_confidence": ds_conf}
                         for d, label, tie, conf, votes, ds, ds_conf in rows])


LABELS = _labels([
    ("agree", "pos", False, 1.0, {"pos": 2, "neg": 0}, "pos", 0.97),
    ("tie", "", True, 0.5, {"pos": 1, "neg": 1}, "pos", 0.90),  # a tie is below even when Dawid-Skene leans
    ("split", "pos", False, 2 / 3, {"pos": 2, "neg": 1}, "pos", 0.88),
    ("full", "pos", False, 0.6, {"pos": 3, "neg": 2}, "pos", 0.70),
])


def test_majority_share_judges_when_dawid_skene_is_not_used():
    confidence = label_confidence(LABELS, Q, dawid_skene=False)
    assert confidence["answers"].tolist() == [2, 2, 3, 5]
    again, stay = below_target(confidence, 0.85, max_answers=5)
    assert again == ["tie", "split"] and stay == ["full"]


def test_dawid_skene_posterior_judges_but_a_tie_stays_below():
    confidence = label_confidence(LABELS, Q, dawid_skene=True)
    assert confidence["confidence"].tolist() == [0.97, 0.0, 0.88, 0.70]
    again, stay = below_target(confidence, 0.85, max_answers=5)
    assert again == ["tie"] and stay == ["full"]


def test_the_rule_follows_the_answers_per_participant():
    def answers(each: int) -> pd.DataFrame:  # three participants, ``each`` answers to Q apiece
        return pd.DataFrame({"instruction": [Q] * (3 * each), "participant_id": ["a", "b", "c"] * each})

    assert confidence_rule(answers(MIN_ANSWERS_FOR_ONE_COIN - 1), Q) == MAJORITY_SHARE
    assert confidence_rule(answers(MIN_ANSWERS_FOR_ONE_COIN), Q) == ONE_COIN
    assert confidence_rule(answers(MIN_ANSWERS_PER_PARTICIPANT - 1), Q) == ONE_COIN
    assert confidence_rule(answers(MIN_ANSWERS_PER_PARTICIPANT), Q) == DAWID_SKENE
    assert confidence_rule(answers(MIN_ANSWERS_PER_PARTICIPANT), "another instruction") == MAJORITY_SHARE


def test_round_keys_and_the_blocklist():
    assert round_key("job-1", 1) == "job-1" and round_key("job-1", 3) == "job-1-round-3"
    assert blocklist_filter(["s1", "s2", "s1"]) == {"filter_id": "previous_studies_blocklist", "selected_values": ["s1", "s2"]}


def test_a_rounds_file_keeps_the_records_bytes(tmp_path):
    source = tmp_path / "data.csv"
    text = 'id,text\r\n1,"two\nlines"\r\n2,plain\r\n3,"quote "" and, comma"\r\n4,  spaces  '
    source.write_bytes(text.encode())
    assert write_subset(source, "id", ["1", "3", "4"], tmp_path / "r2" / "data.csv") == 3
    assert (tmp_path / "r2" / "data.csv").read_bytes() == ('id,text\r\n1,"two\nlines"\r\n3,"quote "" and, comma"\r\n'
                                                          '4,  spaces  ').encode()


def test_a_rounds_jsonl_file_keeps_its_lines(tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n', encoding="utf-8")
    assert write_subset(source, "id", ["b"], tmp_path / "out.jsonl") == 1
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == '{"id": "b", "text": "y"}\n'


def _spec(**changes) -> dict:
    spec = {
        "dataset": {"name": "d", "csv": "data.csv", "id_column": "id"},
        "batch": {"name": "b", "tasks_per_group": 1, "instructions": [
            {"order": 1, "type": "multiple_choice", "description": Q, "answer_limit": 1,
             "options": [{"label": "P", "value": "pos"}, {"label": "N", "value": "neg"}]}]},
        "study": {"name": "s", "description": "d", "reward": 100, "estimated_completion_time": 5, "maximum_allowed_time": 20,
                  "annotators_per_task": 1,
                  "completion_codes": [{"code": "C1", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}]},
    }
    spec.update(changes)
    return spec


def test_the_spec_checks_the_adaptive_fields():
    job = AnnotationJob.from_dict(_spec(adaptive={"start_annotators": 2, "max_annotators": 5, "target_confidence": 0.85}))
    assert job.adaptive.start_annotators == 2
    with pytest.raises(SpecError, match="max_annotators"):
        AnnotationJob.from_dict(_spec(adaptive={"start_annotators": 3, "max_annotators": 2, "target_confidence": 0.9}))
    no_id = _spec(adaptive={"start_annotators": 2, "max_annotators": 3, "target_confidence": 0.9})
    no_id["dataset"] = {"name": "d", "csv": "data.csv"}
    with pytest.raises(SpecError, match="id_column"):
        AnnotationJob.from_dict(no_id)


def test_unset_round_fields_keep_the_job_key():
    plain = AnnotationJob.from_dict(_spec())
    assert "adaptive" not in json.dumps(plain.model_dump(mode="json", exclude_none=True))
    with_rounds = AnnotationJob.from_dict(_spec(adaptive={"start_annotators": 2, "max_annotators": 3, "target_confidence": 0.9}))
    assert plain.job_key("a" * 64) != with_rounds.job_key("a" * 64)
    # the key of a spec without round fields is the one computed before they existed
    from taskbuilder.jobspec.live import LIVE_RUN_CONTROL_FIELDS

    work = plain.model_dump(mode="json", exclude=set(RUN_CONTROL_FIELDS) | LIVE_RUN_CONTROL_FIELDS)
    work["dataset"].pop("csv")
    work.pop("adaptive"), work.pop("pilot")
    assert plain.work_fingerprint("a" * 64) == hashlib.sha256(json.dumps([work, "a" * 64], sort_keys=True).encode()).hexdigest()
