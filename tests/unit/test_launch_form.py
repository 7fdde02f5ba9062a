"""The launch form: the deployment's parameter schema in shapes Prefect's form renders as fields, and the
form's values read back by the flow (every problem at once, paths against the documented base)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prefect.utilities.callables import parameter_schema

from flows.annotation_batch import annotation_batch
from flows.form_launch import FORM_BASE_ENV, job_form_values, job_from_parameter, launch_parameters
from taskbuilder.jobspec import AnnotationJob
from tasks.inputs import InputInvalid, stage_csv

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "review-sentiment" / "job.yaml"
TYPED = ("type", "$ref", "anyOf", "allOf", "enum", "const")
SCHEMA_KEYWORDS = {"properties", "definitions", "$defs"}

BATCH_ITEMS_SPEC = """\
dataset: {name: Reviews, csv: reviews.csv, id_column: id, column_types: {photo: image_url}}
batch:
  name: Reviews
  batch_items:
    - display_position: intro
      rows: [{columns: [{items: [{type: rich_text, content: "<p>Hello</p>"}]}]}]
    - rows:
        - columns:
            - items:
                - {type: dataset_field, field: text}
                - type: multiple_choice_with_free_text
                  description: Why?
                  options: [{label: A, value: a, heading: Say why}]
                - {type: free_text, description: Notes, validation: {max: 50}}
study:
  name: Reviews
  reward: 100
  estimated_completion_time: 5
  completion_codes:
    - {code: C1, code_type: COMPLETED, actions: [{action: AUTOMATICALLY_APPROVE}]}
    - {code: G1, code_type: OTHER, actions: [{action: ADD_TO_PARTICIPANT_GROUP, participant_group: grp1}]}
"""


@pytest.fixture(scope="module")
def schema() -> dict:
    return parameter_schema(annotation_batch.fn).model_dump(mode="json", by_alias=True)


def _nodes(node, path=""):
    """(path, schema node) of every schema below `node` (property values, items, options, definitions)."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in SCHEMA_KEYWORDS and isinstance(value, dict):
                for name, sub in value.items():
                    yield from _nodes(sub, f"{path}/{key}/{name}")
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                yield from _nodes(value, f"{path}/{key}")
            elif key in ("anyOf", "allOf", "oneOf"):
                for i, sub in enumerate(value):
                    yield from _nodes(sub, f"{path}/{key}[{i}]")


def _resolve(schema: dict, node: dict) -> dict:
    if "$ref" in node:
        return schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_no_untyped_object_or_oneof_under_the_job(schema):
    """Every schema under the job has a type the form renders as fields: no oneOf (a JSON editor), no object
    without properties (a JSON editor), no node without a type."""
    bad = []
    for path, node in _nodes(schema):
        if "oneOf" in node or "discriminator" in node:
            bad.append((path, "oneOf"))
        if node.get("type") == "object" and not node.get("properties"):
            bad.append((path, "object without properties"))
        if path and not any(key in node for key in TYPED):
            bad.append((path, "no type"))
    assert bad == []


def test_list_items_are_objects_with_fields(schema):
    """The form renders a list item through its plain input: each list's items resolve to one object with
    properties (a union item would be a JSON editor)."""
    lists = [(path, _resolve(schema, node["items"])) for path, node in _nodes(schema) if node.get("type") == "array"]
    assert len(lists) > 5
    for path, items in lists:
        if items.get("type") in ("string", "number", "integer", "boolean"):
            continue
        assert items.get("type") == "object" and items.get("properties"), path


def _picker(schema: dict, definition: str, field: str, key: str) -> dict:
    prop = schema["definitions"][definition]["properties"][field]
    array = next(option for option in prop.get("anyOf", [prop]) if option.get("type") == "array")
    return array["items"]["properties"][key]


def test_each_instruction_type_is_a_titled_option_with_its_own_fields(schema):
    picker = _picker(schema, "BatchSpec", "instructions", "instruction")
    options = {option["title"]: option for option in picker["anyOf"]}
    assert set(options) == {"Multiple choice", "Multiple choice with free text", "Free text", "Number with unit", "File upload"}
    assert "heading" in _resolve(schema, options["Multiple choice with free text"]["properties"]["options"]["items"])["properties"]
    assert "unit_options" in options["Number with unit"]["properties"]
    assert "accepted_file_types" in options["File upload"]["properties"]
    for option in options.values():
        assert option["properties"]["type"]["default"] == option["properties"]["type"]["const"]
        assert all(field.get("description") for field in option["properties"].values())
    items = _picker(schema, "BatchItemsColumn", "items", "item")
    assert {"Text block", "Image", "Dataset column", "Free text"} <= {option["title"] for option in items["anyOf"]}


def test_completion_codes_and_column_types_are_typed(schema):
    code = schema["definitions"]["CompletionCode"]["properties"]
    assert "COMPLETED" in code["code_type"]["enum"]
    action = schema["definitions"]["CompletionAction"]
    assert set(action["properties"]) == {"action", "participant_group"} and "AUTOMATICALLY_APPROVE" in action["properties"]["action"]["enum"]
    rows = schema["definitions"]["DatasetSpec"]["properties"]["column_types"]["anyOf"][0]
    assert rows["type"] == "array" and set(rows["items"]["properties"]) == {"column", "type"}


def test_defaults_make_a_small_job_and_each_setting_is_one_field(schema):
    assert schema["definitions"]["BatchSpec"]["properties"]["tasks_per_group"]["default"] == 5
    assert schema["definitions"]["StudySpec"]["properties"]["annotators_per_task"]["default"] == 3
    job_fields = set(schema["definitions"]["AnnotationJob"]["properties"])
    assert {"wait_for_completion", "output_dir"} <= set(schema["properties"])
    assert not job_fields & {"wait_for_completion", "output_dir", "fee_rate", "vat_rate"}
    # a spec file that leaves them out keeps its old values (and job key)
    job = AnnotationJob.from_dict(yaml.safe_load(BATCH_ITEMS_SPEC))
    assert (job.batch.tasks_per_group, job.study.annotators_per_task) == (1, 1)


def test_no_description_holds_an_html_looking_placeholder_outside_code(schema):
    """The form renders descriptions as Markdown: `<key>` outside backticks would vanish as an HTML tag."""
    swallowed = []
    for path, node in _nodes(schema):
        text = re.sub(r"`[^`]*`", "", node.get("description") or "")
        if re.search(r"<[A-Za-z/][^>]*>", text):
            swallowed.append((path, node["description"]))
    assert swallowed == []


@pytest.mark.parametrize("source", ["example", "batch_items"])
def test_form_values_read_back_to_the_same_job(tmp_path, source):
    if source == "example":
        job = AnnotationJob.from_yaml(EXAMPLE)
    else:
        job = AnnotationJob.from_dict(yaml.safe_load(BATCH_ITEMS_SPEC), base_dir=tmp_path)
    values = job_form_values(job)
    if job.batch.instructions:
        assert set(values["batch"]["instructions"][0]) == {"instruction"}
    assert job_from_parameter(values) == job
    assert job_from_parameter(job.model_dump(mode="json")) == job  # a plain dump (launch-from-s3) too
    assert job_from_parameter(job) is job


def test_column_types_rows_from_the_form_are_the_mapping():
    data = yaml.safe_load(BATCH_ITEMS_SPEC)
    data["dataset"]["column_types"] = [{"column": "photo", "type": "image_url"}]
    assert AnnotationJob.from_dict(data).dataset.column_types == {"photo": "image_url"}


def test_a_form_launch_reports_every_problem_at_once():
    values = job_form_values(AnnotationJob.from_yaml(EXAMPLE))
    values["study"]["reward"] = 0
    values["batch"]["instructions"][0]["instruction"]["answer_limit"] = 7
    values["study"]["completion_codes"][0]["code_type"] = "COMPLETE"
    with pytest.raises(InputInvalid) as caught:
        job_from_parameter(values)
    message = str(caught.value)
    for path in ("study.reward", "batch.instructions[0].answer_limit", "study.completion_codes[0].code_type"):
        assert path in message
    assert "launch form" in message


def test_relative_paths_of_a_form_launch_resolve_against_the_base(tmp_path, monkeypatch):
    monkeypatch.setenv(FORM_BASE_ENV, str(tmp_path))
    values = job_form_values(AnnotationJob.from_yaml(EXAMPLE))
    values["dataset"]["csv"] = "data/missing.csv"
    job, _, _, output_dir = launch_parameters(values, None, None, "results")
    assert job.dataset.csv == str(tmp_path / "data" / "missing.csv")
    assert output_dir == str(tmp_path / "results")
    with pytest.raises(InputInvalid) as caught:
        stage_csv(job.dataset.csv, tmp_path / "work")
    assert str(tmp_path / "data" / "missing.csv") in str(caught.value)
    assert "TASKBUILDER_FORM_BASE_DIR" in str(caught.value)


def test_a_spec_path_resolves_against_the_base_and_an_error_shows_the_resolved_path(tmp_path, monkeypatch):
    from flows.launch_from_spec import load_spec

    monkeypatch.setenv(FORM_BASE_ENV, str(tmp_path))
    with pytest.raises(InputInvalid) as caught:
        load_spec("jobs/job.yaml", {})
    assert str(tmp_path / "jobs" / "job.yaml") in str(caught.value)
    monkeypatch.setenv(FORM_BASE_ENV, str(EXAMPLE.parent.parent))
    job = load_spec("review-sentiment/job.yaml", {"publish": False, "max_budget": 900})
    assert (job.publish, job.max_budget) == (False, 900)
    assert job.dataset.csv == str(EXAMPLE.parent / "reviews.csv")  # inside the file: against its folder


def test_pasted_yaml_with_overrides_reports_every_problem_naming_the_form(tmp_path, monkeypatch):
    from flows.launch_from_spec import load_spec

    monkeypatch.setenv(FORM_BASE_ENV, str(tmp_path))
    job = load_spec(BATCH_ITEMS_SPEC, {"require_approval": True})
    assert job.require_approval and job.dataset.csv == str(tmp_path / "reviews.csv")
    broken = BATCH_ITEMS_SPEC.replace("reward: 100", "reward: 0").replace("estimated_completion_time: 5", "estimated_completion_time: 0")
    with pytest.raises(InputInvalid) as caught:
        load_spec(broken, {})
    assert "study.reward" in str(caught.value) and "study.estimated_completion_time" in str(caught.value)
    assert "pasted spec" in str(caught.value)


def test_an_s3_spec_s_relative_bonus_file_is_never_read_from_the_worker_s_folder(tmp_path, monkeypatch):
    """A relative bonus.csv in an s3:// spec sits beside the spec in the bucket: a file of that name in the worker's
    working directory must not decide who is paid; the spec is refused naming the field."""
    import boto3

    from flows.launch_from_spec import load_spec

    data = yaml.safe_load(EXAMPLE.read_text())
    data["bonus"] = {"csv": "bonuses.csv"}
    text = yaml.safe_dump(data)

    class FakeS3:
        class exceptions:
            NoSuchKey = KeyError

        def get_object(self, Bucket, Key):
            assert (Bucket, Key) == ("jobs", "review/job.yaml")
            return {"Body": type("Body", (), {"read": lambda self: text.encode()})()}

    monkeypatch.setattr(boto3, "client", lambda name: FakeS3())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bonuses.csv").write_text("participant_id,bonus_cents\nsomeone-else,5000\n")
    with pytest.raises(InputInvalid) as caught:
        load_spec("s3://jobs/review/job.yaml", {})
    assert "bonus.csv" in str(caught.value) and "s3://jobs/review/bonuses.csv" in str(caught.value)
