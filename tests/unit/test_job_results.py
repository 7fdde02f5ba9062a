"""The job's results from its parsed report (taskbuilder/job_results.py) and the instructions they are read
against (taskbuilder.payloads.instruction_payloads): the local work the flow's tasks and the plain script share."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from taskbuilder.job_results import aggregate_parsed, participants_with_status
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.payloads import instruction_payloads, instructions_payload
from taskbuilder.report import RESPONSE_COLUMNS, ParsedReport
from tests.unit.test_job import SPEC_YAML

CHOICE = {"type": "multiple_choice", "description": "Sentiment?", "answer_limit": 1,
          "options": [{"label": "Positive", "value": "positive"}, {"label": "Negative", "value": "negative"}]}


@pytest.fixture
def spec() -> dict:
    return yaml.safe_load(SPEC_YAML)


def test_instruction_payloads_of_the_seed_layout_are_its_legacy_body(spec):
    job = AnnotationJob.from_dict(spec)
    assert instruction_payloads(job) == instructions_payload(job.batch)
    assert [item["type"] for item in instruction_payloads(job)] == ["multiple_choice", "free_text"]


def test_instruction_payloads_of_batch_items_are_their_instructions_in_page_row_column_order(spec):
    spec["batch"].pop("instructions")
    why = {"type": "free_text", "description": "Why?"}
    spec["batch"]["batch_items"] = [
        {"display_position": "intro", "rows": [{"columns": [{"items": [{"type": "rich_text", "content": "<p>Hi</p>"}]}]}]},
        {"rows": [
            {"columns": [{"items": [{"type": "dataset_field", "field": "review_text"}]}, {"items": [CHOICE]}]},
            {"columns": [{"items": [{"type": "image", "url": "https://example.org/a.png", "alt_text": "a"}, why]}]},
        ]},
    ]
    payloads = instruction_payloads(AnnotationJob.from_dict(spec))
    assert [(item["type"], item["description"]) for item in payloads] == [("multiple_choice", "Sentiment?"), ("free_text", "Why?")]
    assert payloads[0]["options"] == CHOICE["options"]


def _parsed(rows: list[tuple[str, str, str]], gold: dict[str, str] | None) -> ParsedReport:
    """A parsed report of (datapoint_id, participant_id, answer) to CHOICE; with a META_gold column when ``gold``."""
    columns = {"id": {d: f"row-{d}" for d, _, _ in rows}, "text": {}} | ({"META_gold": gold} if gold is not None else {})
    records = [{"datapoint_id": d, "task_group_id": "g", "instruction": CHOICE["description"], "instruction_type": CHOICE["type"],
                "participant_id": p, "answer": a, "answered_at": "t", **{c: cells.get(d, "") for c, cells in columns.items()}}
               for d, p, a in rows]
    return ParsedReport.from_responses(pd.DataFrame(records, columns=[*RESPONSE_COLUMNS, *columns], dtype=str))


def test_aggregate_parsed_scores_gold_from_META_gold_when_the_spec_names_none(spec):
    job = AnnotationJob.from_dict(spec)
    assert job.dataset.gold_column is None
    rows = [("d1", "p1", "positive"), ("d1", "p2", "negative"), ("d2", "p1", "negative"), ("d2", "p2", "negative")]
    with_gold = aggregate_parsed(job, _parsed(rows, {"d1": "positive", "d2": "negative"}), [CHOICE])
    accuracy = with_gold.participants.set_index("participant_id")["gold_accuracy"].to_dict()
    assert accuracy == {"p1": 1.0, "p2": 0.5}
    without = aggregate_parsed(job, _parsed(rows, None), [CHOICE])
    assert without.participants["gold_accuracy"].isna().all()


def test_aggregate_parsed_applies_the_jobs_thresholds(spec):
    spec["min_agreement"] = 0.9
    rows = [("d1", "p1", "positive"), ("d1", "p2", "positive"), ("d1", "p3", "negative")]
    result = aggregate_parsed(AnnotationJob.from_dict(spec), _parsed(rows, None), [CHOICE])
    assert result.participants.set_index("participant_id")["flagged"].to_dict() == {"p1": False, "p2": False, "p3": True}


def test_participants_with_status_fills_each_submission_status_and_leaves_the_table_alone():
    participants = pd.DataFrame({"participant_id": ["p1", "p2", "p3"], "answers": [2, 2, 1], "submission_status": ["", "", ""]})
    submissions = [{"id": "s1", "participant_id": "p1", "status": "APPROVED"},
                   {"id": "s3", "participant_id": "p3", "status": "AWAITING REVIEW"}]
    table = participants_with_status(participants, submissions)
    assert table["submission_status"].tolist() == ["APPROVED", "", "AWAITING REVIEW"]
    assert participants["submission_status"].tolist() == ["", "", ""]
    assert table["answers"].tolist() == [2, 2, 1]
