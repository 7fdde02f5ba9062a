"""The one spec loader, through every entry point that reads YAML (`AnnotationJob.from_yaml` for run and
validate, `load_job_from_s3` for the deployments): repeated keys, retyped text, alias bombs, completion
codes, read-only and misplaced study fields, active content in participant-facing text (C04, C06, C10, C15,
C20, C22 kinds)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.launch_from_s3 import load_job_from_s3
from taskbuilder.jobspec import AnnotationJob, SpecError
from taskbuilder.payloads import study_payload

from tests.integration.jobs import write_small_job

runner = CliRunner()


@pytest.fixture
def spec_file(tmp_path) -> Path:
    return write_small_job(tmp_path, name="as-written", publish=False)


def _edit(spec_file: Path, old: str, new: str) -> Path:
    text = spec_file.read_text()
    assert old in text, text
    spec_file.write_text(text.replace(old, new, 1))
    return spec_file


class _S3:  # the S3 client's get_object, serving one spec text
    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self, text: str):
        self.text = text

    def get_object(self, Bucket, Key):
        return {"Body": type("Body", (), {"read": lambda _self: self.text.encode()})()}


def _load_everywhere(spec_file: Path) -> list:
    """Load the spec by each entry point; return the errors (or jobs) in order: from_yaml, validate, S3."""
    results = []
    for load in (lambda: AnnotationJob.from_yaml(spec_file),
                 lambda: load_job_from_s3(_S3(spec_file.read_text()), "bkt", "in/data.csv", "in/data.csv.job.yaml")):
        try:
            results.append(load())
        except SpecError as error:
            results.append(error)
    validate = runner.invoke(app, ["validate", "--job", str(spec_file)])
    results.insert(1, validate)
    return results


def test_a_repeated_publish_is_refused_by_every_entry_point(spec_file):
    spec_file.write_text(spec_file.read_text() + "publish: true\nmax_budget: 100000000\n")
    from_yaml, validate, from_s3 = _load_everywhere(spec_file)
    for error in (from_yaml, from_s3):
        assert isinstance(error, SpecError)
        assert {p.path for p in error.problems} == {"publish", "max_budget"}
        assert all("given twice, on lines" in p.message and p.line for p in error.problems)
    assert validate.exit_code == 2 and "publish (line" in validate.output


def test_an_alias_bomb_fails_fast_in_every_entry_point(spec_file):
    bomb = "  zz_anchors:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)) + "  study_labels: *l8\n"
    _edit(spec_file, "study:\n", "study:\n" + bomb)
    started = time.monotonic()
    from_yaml, validate, from_s3 = _load_everywhere(spec_file)
    assert time.monotonic() - started < 30  # expanded, the bomb takes minutes; room for a machine busy with the suite
    for error in (from_yaml, from_s3):
        assert isinstance(error, SpecError) and "through YAML aliases" in str(error)
    assert validate.exit_code == 2 and "through YAML aliases" in validate.output


def test_run_refuses_an_alias_bomb_before_starting_anything(spec_file):
    _edit(spec_file, "study:\n", "study:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
          "  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
          "  e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n")
    result = runner.invoke(app, ["run", str(spec_file), "--api-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "through YAML aliases" in result.output


@pytest.mark.parametrize("written", ["01", "1.10", "1_000", "0o17", "yes", "2026-01-01", "007", "1:30"])
def test_option_values_labels_and_codes_reach_the_payload_as_written(spec_file, written):
    _edit(spec_file, "value: positive", f"value: {written}")
    _edit(spec_file, "label: Negative", f"label: {written}")
    _edit(spec_file, "code: OK1", f"code: {written}")
    job = AnnotationJob.from_yaml(spec_file.parent / "job.yaml")
    options = job.batch.instructions[0].options
    assert (options[0].value, options[1].label) == (written, written)
    assert study_payload(job.study, "b", "n")["completion_codes"][0]["code"] == written


@pytest.mark.parametrize("field, written, read", [("reward", "0150", "octal number 104"), ("reward", "1_50", "number 150"),
                                                  ("max_budget", "1:00:00", "number 3600"), ("max_budget", "0x186A0", "number 100000")])
def test_money_written_in_a_form_yaml_reads_otherwise_is_refused(spec_file, field, written, read):
    old = {"reward": "reward: 150", "max_budget": "max_budget: 100000"}[field]
    _edit(spec_file, old, f"{field}: {written}")
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_yaml(spec_file)
    [problem] = caught.value.problems
    assert read in problem.message and problem.line and "plain digits" in problem.hint


@pytest.mark.parametrize("line", ["max_budget: 10", "publish: true", "fee_rate: 0", "output_dir: /tmp/elsewhere"])
def test_a_top_level_field_under_study_is_refused(spec_file, line):
    _edit(spec_file, "study:\n", f"study:\n  {line}\n")
    with pytest.raises(SpecError, match="top-level field of the spec"):
        AnnotationJob.from_yaml(spec_file)


@pytest.mark.parametrize("field, written, kept", [("completion_code", "0123", "0123"), ("publish_at", "2026-12-01", "2026-12-01"),
                                                  ("study_labels", "[01, ai_annotation]", ["01", "ai_annotation"])])
def test_documented_text_fields_passed_through_keep_their_text(spec_file, field, written, kept):
    _edit(spec_file, "study:\n", f"study:\n  {field}: {written}\n")
    assert AnnotationJob.from_yaml(spec_file).study.model_extra[field] == kept


def test_an_undocumented_pass_through_date_is_refused_with_the_quoting(spec_file):
    _edit(spec_file, "study:\n", "study:\n  zz_when: 2026-12-01\n")
    with pytest.raises(SpecError, match='zz_when: "2026-12-01"'):
        AnnotationJob.from_yaml(spec_file)


@pytest.mark.parametrize("codes, found", [
    ("[{code: A}]", "code_type"),
    ("[{code: A, code_type: COMPLETD, actions: [{action: AUTOMATICALLY_APPROVE}]}]", "did you mean COMPLETED"),
    ("[{code: A, code_type: COMPLETED, actions: [{action: MANUALLY_REVIEW}]}, {code: A, code_type: OTHER}]", "also completion_codes[0]"),
    ("[{code: A, code_type: OTHER}]", "exactly one"),
])
def test_completion_codes_are_checked_before_anything_is_created(spec_file, codes, found):
    text = yaml.safe_load(spec_file.read_text())
    text["study"]["completion_codes"] = "PLACEHOLDER"
    spec_file.write_text(yaml.safe_dump(text, sort_keys=False).replace("PLACEHOLDER", codes))
    with pytest.raises(SpecError, match=re.escape(found)) as caught:
        AnnotationJob.from_yaml(spec_file)
    assert all(p.path.startswith("study.completion_codes") for p in caught.value.problems)


@pytest.mark.parametrize("field", ["status", "id", "published_at"])
def test_read_only_study_fields_are_refused(spec_file, field):
    _edit(spec_file, "study:\n", f"study:\n  {field}: ACTIVE\n")
    with pytest.raises(SpecError, match="set by Prolific"):
        AnnotationJob.from_yaml(spec_file)


@pytest.mark.parametrize("old, new, path", [
    ("task_introduction: <p>Read.</p>", "task_introduction: '<img src=x onerror=alert(1)>'", "batch.task_details.task_introduction"),
    ("description: <p>Small.</p>", "description: '<script>alert(2)</script>'", "study.description"),
    ("description: Sentiment?", "description: '<a href=\"javascript:alert(1)\">Sentiment?</a>'", "batch.instructions[0].description"),
    ("label: Positive", "label: '<svg onload=alert(1)>'", "batch.instructions[0].options[0].label"),
])
def test_active_content_in_participant_facing_text_is_refused_naming_the_field(spec_file, old, new, path):
    _edit(spec_file, old, new)
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_yaml(spec_file)
    assert [p.path for p in caught.value.problems] == [path]


def test_basic_html_is_fine(spec_file):
    _edit(spec_file, "task_introduction: <p>Read.</p>", "task_introduction: '<p>Read <b>each</b> <a href=\"https://x.example\">review</a>.</p>'")
    AnnotationJob.from_yaml(spec_file)


def test_the_study_deadline_is_a_run_control_field(spec_file):
    job = AnnotationJob.from_yaml(_edit(spec_file, "publish: false", "publish: false\nstudy_deadline_minutes: 90"))
    assert job.study_deadline_minutes == 90
    assert AnnotationJob.from_yaml(write_small_job(spec_file.parent / "b", name="as-written")).study_deadline_minutes == 7 * 24 * 60


@pytest.mark.parametrize("written", ['"1"', "y", '"true"', "'yes'", "1"])
def test_a_money_switch_written_as_text_or_a_number_is_refused(spec_file, written):
    """`publish` spends money: only a YAML boolean turns it on (pydantic alone reads "1", "y", "true" as true)."""
    _edit(spec_file, "publish: false", f"publish: {written}")
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_yaml(spec_file)
    [problem] = caught.value.problems
    assert problem.path == "publish" and problem.line and "true or false" in problem.message + problem.hint


@pytest.mark.parametrize("written, read", [("true", True), ("yes", True), ("off", False), ("false", False)])
def test_yaml_booleans_still_set_a_switch(spec_file, written, read):
    assert AnnotationJob.from_yaml(_edit(spec_file, "publish: false", f"publish: {written}")).publish is read
