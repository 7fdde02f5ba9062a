"""The spec's `bonus` and `reject` fields (taskbuilder/jobspec/payments.py): shapes, the documented rejection
reason (§5.7), the bonus file read before anything is created, and both kept out of the job key."""

from __future__ import annotations

import pytest
import yaml

from taskbuilder.jobspec import AnnotationJob, SpecError

from tests.unit.test_job import SPEC_YAML

MESSAGE = ("Your answers on the check questions did not match the instructions on the task page, so this submission "
           "cannot be accepted.")


@pytest.fixture
def spec() -> dict:
    return yaml.safe_load(SPEC_YAML)


def _problems(data: dict, base_dir=None) -> dict[str, tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_dict(data, source="spec.yaml", base_dir=base_dir)
    return {p.path: (p.message, p.hint) for p in caught.value.problems}


def test_bonus_rule_and_reject_rules_load_as_written(spec):
    spec["bonus"] = {"per_submission_cents": 50, "when": {"min_agreement": 0.8, "min_gold_accuracy": 0.9}}
    spec["reject"] = {"below_gold_accuracy": 0.5, "failed_attention_checks": 1, "category": "FAILED_CHECK", "message": MESSAGE}
    job = AnnotationJob.from_dict(spec)
    assert job.bonus.per_submission_cents == 50 and job.bonus.when.min_gold_accuracy == 0.9
    assert job.reject.message == MESSAGE and job.reject.category == "FAILED_CHECK"


@pytest.mark.parametrize("reject,path,words", [
    ({"below_agreement": 0.5, "category": "FAILED_CHECK", "message": "Sorry, wrong."}, "reject.message", "at least 100"),
    ({"below_agreement": 0.5, "category": "FAILED_CHEK", "message": MESSAGE}, "reject.category", "not a rejection category"),
    ({"category": "FAILED_CHECK", "message": MESSAGE}, "reject", "no rule"),
    ({"below_agreement": 1.5, "category": "OTHER", "message": MESSAGE}, "reject.below_agreement", "less than or equal"),
])
def test_reject_rules_are_refused_with_the_field(spec, reject, path, words):
    spec["reject"] = reject
    problems = _problems(spec)
    assert words in problems[path][0], problems
    assert problems[path][1]


def test_a_misspelt_category_gets_the_documented_one(spec):
    spec["reject"] = {"below_agreement": 0.5, "category": "FAILED_CHEK", "message": MESSAGE}
    assert "FAILED_CHECK" in _problems(spec)["reject.category"][1]


@pytest.mark.parametrize("bonus,path", [
    ({"per_submission_cents": 50, "csv": "b.csv"}, "bonus"),
    ({}, "bonus"),
    ({"per_submission_cents": 0}, "bonus.per_submission_cents"),
    ({"per_submission_cents": 50, "when": {"min_agreement": 2}}, "bonus.when.min_agreement"),
])
def test_bonus_shapes_are_refused(spec, bonus, path, tmp_path):
    (tmp_path / "b.csv").write_text("participant_id,bonus_cents\np1,150\n")
    spec["bonus"] = bonus
    assert path in _problems(spec, base_dir=tmp_path)


def test_bonus_file_is_read_when_the_spec_is_loaded(spec, tmp_path):
    (tmp_path / "bonuses.csv").write_text("participant_id,bonus_cents\np1,150\np2,1.50\np1,20\n,5\n")
    spec["bonus"] = {"csv": "bonuses.csv"}
    message = _problems(spec, base_dir=tmp_path)["bonus.csv"][0]
    assert str(tmp_path / "bonuses.csv") in message
    assert "line 3, column bonus_cents: '1.50'" in message
    assert "line 4, column participant_id: 'p1' is also on line 2" in message
    assert "line 5, column participant_id: empty" in message
    (tmp_path / "bonuses.csv").write_text("participant,amount\np1,150\n")
    assert "line 1: the header must be participant_id,bonus_cents" in _problems(spec, base_dir=tmp_path)["bonus.csv"][0]
    (tmp_path / "bonuses.csv").write_text("participant_id,bonus_cents\np1,150\n")
    assert AnnotationJob.from_dict(spec, base_dir=tmp_path).bonus.csv == str(tmp_path / "bonuses.csv")



def test_a_bonus_file_naming_one_participant_twice_in_disguise_is_refused(spec, tmp_path):
    """Spaces round an id (the API reads `p1` and ` p1` as one participant: paid twice), a comma or quote in an id
    (it would split §7's line), and digits other than ASCII ones (`²` crashed the reader, `１２` read as 12)."""
    (tmp_path / "bonuses.csv").write_text('participant_id,bonus_cents\np1,50\n p1,50\np1 ,20\n"p2,p3",5\np4,²\np5,１２\n',
                                          encoding="utf-8")
    spec["bonus"] = {"csv": "bonuses.csv"}
    message = _problems(spec, base_dir=tmp_path)["bonus.csv"][0]
    for line, cell in ((3, "' p1'"), (4, "'p1 '"), (5, "'p2,p3'")):
        assert f"line {line}, column participant_id: {cell} has spaces at an end, a comma" in message
    assert "line 6, column bonus_cents: '²'" in message and "line 7, column bonus_cents: '１２'" in message


@pytest.mark.parametrize("field,value", [("per_submission_cents", True), ("per_submission_cents", "1.5")])
def test_bonus_cents_that_are_not_whole_numbers_are_refused(spec, field, value):
    spec["bonus"] = {field: value}
    assert "whole number" in _problems(spec)[f"bonus.{field}"][0]


def test_a_boolean_attention_check_count_is_refused(spec):
    spec["reject"] = {"failed_attention_checks": True, "category": "FAILED_CHECK", "message": MESSAGE}
    assert "whole number" in _problems(spec)["reject.failed_attention_checks"][0]


def test_paying_fields_stay_out_of_the_job_key(spec):
    plain = AnnotationJob.from_dict(spec)
    spec["bonus"] = {"per_submission_cents": 50}
    spec["reject"] = {"below_agreement": 0.2, "category": "LOW_EFFORT", "message": MESSAGE}
    paying = AnnotationJob.from_dict(spec)
    assert paying.work_fingerprint("abc") == plain.work_fingerprint("abc")
    assert paying.job_key("abc") == plain.job_key("abc")
