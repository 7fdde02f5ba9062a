"""The job spec (taskbuilder/jobspec/) and its API bodies (taskbuilder/payloads.py): loading, field rules with
their paths, payloads."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

import taskbuilder.jobspec
from taskbuilder.payloads import batch_items_payload, instructions_as_batch_items, instructions_payload, study_payload
from taskbuilder.jobspec import AnnotationJob, SpecError
from taskbuilder.jobspec.run_control import FORM_HIDDEN_FIELDS, RUN_CONTROL_FIELDS

SPEC_YAML = """\
dataset:
  name: Product reviews
  csv: data/reviews.csv
  id_column: id
batch:
  name: Review sentiment
  task_details:
    task_name: Review Sentiment Classification
    task_introduction: "<p>Read each product review carefully.</p>"
    task_steps: "<ol><li>Read the review text</li></ol>"
  tasks_per_group: 5
  instructions:
    - type: free_text
      order: 2
      description: Briefly explain why you chose this sentiment rating
      placeholder_text_input: "e.g. The reviewer uses positive language..."
    - type: multiple_choice
      order: 1
      description: What is the overall sentiment of this review?
      answer_limit: 1
      options:
        - {label: Positive, value: positive}
        - {label: Neutral, value: neutral}
        - {label: Negative, value: negative}
study:
  name: Product Review Sentiment Analysis
  internal_name: sentiment-analysis-q4-2024
  description: "<p>Help us understand the sentiment in product reviews.</p>"
  reward: 300
  estimated_completion_time: 15
  maximum_allowed_time: 45
  annotators_per_task: 3
  device_compatibility: [desktop, tablet]
  completion_codes: [{code: ABC123, code_type: COMPLETED, actions: [{action: MANUALLY_REVIEW}]}]
"""


@pytest.fixture
def spec() -> dict:
    return yaml.safe_load(SPEC_YAML)


def _problems(data: dict) -> dict[str, tuple[str, str]]:
    """{path: (message, hint)} of the SpecError that `data` raises."""
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_dict(data, source="spec.yaml")
    return {p.path: (p.message, p.hint) for p in caught.value.problems}


def test_from_yaml_resolves_paths_against_the_spec_folder(tmp_path, spec):
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "job.yaml").write_text(SPEC_YAML, encoding="utf-8")
    job = AnnotationJob.from_yaml(folder / "job.yaml")
    assert Path(job.dataset.csv) == folder.resolve() / "data" / "reviews.csv"
    assert Path(job.output_dir) == folder.resolve() / "out"
    spec["dataset"]["csv"] = "s3://bucket/in/reviews.csv"
    spec["output_dir"] = "s3://bucket/results/"
    (folder / "s3.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    job = AnnotationJob.from_yaml(folder / "s3.yaml")
    assert (job.dataset.csv, job.output_dir, job.dataset.csv_is_s3) == ("s3://bucket/in/reviews.csv", "s3://bucket/results/", True)


def test_defaults(spec):
    job = AnnotationJob.from_dict(spec)
    assert (job.publish, job.max_budget, job.require_approval, job.wait_for_completion) == (False, 20000, False, True)
    assert (job.dataset.max_rows, job.dataset.max_cell_chars, job.dataset.gold_column) == (100_000, 10_000, None)
    assert job.token_secret_block is None and job.batch.instructions[0].created_by == "taskbuilder"


def test_instructions_payload_is_the_legacy_body_in_order(spec):
    payload = instructions_payload(AnnotationJob.from_dict(spec).batch)
    assert [item["order"] for item in payload] == [1, 2]
    assert payload[0] == {
        "type": "multiple_choice", "order": 1, "created_by": "taskbuilder", "answer_limit": 1,
        "description": "What is the overall sentiment of this review?",
        "options": [{"label": "Positive", "value": "positive"}, {"label": "Neutral", "value": "neutral"},
                    {"label": "Negative", "value": "negative"}],
    }
    assert payload[1]["type"] == "free_text" and payload[1]["answer_limit"] == 1
    assert payload[1]["placeholder_text_input"] == "e.g. The reviewer uses positive language..."


def test_orders_default_to_list_positions(spec):
    for instruction in spec["batch"]["instructions"]:
        del instruction["order"]
    job = AnnotationJob.from_dict(spec)
    assert [i["type"] for i in instructions_payload(job.batch)] == ["free_text", "multiple_choice"]
    assert job.choice_instructions()[0].type == "multiple_choice"


def test_study_payload(spec):
    payload = study_payload(AnnotationJob.from_dict(spec).study, "batch-1", "sentiment [job:abc]")
    assert payload == {
        "name": "Product Review Sentiment Analysis", "internal_name": "sentiment [job:abc]",
        "description": "<p>Help us understand the sentiment in product reviews.</p>",
        "reward": 300, "estimated_completion_time": 15, "maximum_allowed_time": 45,
        "device_compatibility": ["desktop", "tablet"],
        "completion_codes": [{"code": "ABC123", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]}],
        "data_collection_method": "AI_TASK_BUILDER_BATCH", "data_collection_id": "batch-1",
        "data_collection_metadata": {"annotators_per_task": 3},
    }


def test_instructions_as_batch_items_is_one_page(spec):
    job = AnnotationJob.from_dict(spec)
    assert batch_items_payload(job.batch) is None
    pages = instructions_as_batch_items(job.batch, ["review_text", "product_name"])
    items = pages[0]["rows"][0]["columns"][0]["items"]
    assert len(pages) == 1 and len(pages[0]["rows"]) == 1
    assert items[:2] == [{"type": "dataset_field", "field": "review_text"}, {"type": "dataset_field", "field": "product_name"}]
    assert [i["type"] for i in items[2:]] == ["multiple_choice", "free_text"]
    assert all("order" not in i for i in items)


def test_batch_items_job(spec):
    spec["batch"].pop("instructions")
    spec["batch"]["batch_items"] = [
        {"display_position": "intro", "rows": [{"columns": [{"items": [{"type": "rich_text", "content": "<p>Hi</p>"}]}]}]},
        {"rows": [{"columns": [
            {"items": [{"type": "dataset_field", "field": "review_text"},
                       {"type": "image", "url": "https://example.org/a.png", "alt_text": "a"}]},
            {"items": [{"type": "multiple_choice", "description": "Sentiment?",
                        "options": [{"label": "Positive", "value": "positive"}, {"label": "Negative", "value": "negative"}]},
                       {"type": "free_text", "description": "Why?"}]}]}]},
    ]
    spec["dataset"]["gold_column"] = "META_gold"
    job = AnnotationJob.from_dict(spec)
    payload = batch_items_payload(job.batch)
    assert payload[0] == spec["batch"]["batch_items"][0]
    column = payload[1]["rows"][0]["columns"][1]["items"]
    assert column[0]["options"][1] == {"label": "Negative", "value": "negative"} and "order" not in column[0]
    assert job.required_columns() == {"review_text", "id", "META_gold"}
    assert [i.description for i in job.choice_instructions()] == ["Sentiment?"]
    with pytest.raises(ValueError, match="batch_items"):
        instructions_payload(job.batch)
    assert AnnotationJob.model_validate(job.model_dump(mode="json")) == job  # as a Prefect parameter


def test_required_columns_and_gold_column(spec):
    job = AnnotationJob.from_dict(spec)
    assert job.required_columns() == {"id"}
    assert job.dataset.gold_column_in(["id", "META_gold"]) == "META_gold"
    assert job.dataset.gold_column_in(["id"]) is None
    spec["dataset"].update(gold_column="META_answer", attention_check_column="META_check")
    job = AnnotationJob.from_dict(spec)
    assert job.required_columns() == {"id", "META_answer", "META_check"}
    assert job.dataset.gold_column_in(["id"]) == "META_answer"


def test_numbers_in_yaml_become_option_text(spec):
    spec["batch"]["instructions"][1]["options"] = [{"label": "Positive", "value": 1}, {"label": "Negative", "value": 0}]
    options = instructions_payload(AnnotationJob.from_dict(spec).batch)[0]["options"]
    assert [o["value"] for o in options] == ["1", "0"]


@pytest.mark.parametrize("reward", [1.5, 2.75, "£3", True])
def test_reward_must_be_whole_cents(spec, reward):
    spec["study"]["reward"] = reward
    message, hint = _problems(spec)["study.reward"]
    assert "whole number" in message
    assert hint == "reward is in cents: write 150 for £1.50"


def test_reward_whole_number_forms_are_accepted(spec):
    spec["study"]["reward"] = 300.0
    assert AnnotationJob.from_dict(spec).study.reward == 300


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"estimated_completion_time": 12.5}, "study.estimated_completion_time", "whole number"),
    ({"maximum_allowed_time": 10}, "study.maximum_allowed_time", "below estimated_completion_time"),
    ({"annotators_per_task": 0}, "study.annotators_per_task", "annotators_per_task is 0"),
    ({"reward": 0}, "study.reward", "reward is 0"),
    ({"data_collection_method": "DC_TOOL"}, "study.data_collection_method", "set by taskbuilder"),
])
def test_study_rules(spec, change, path, words):
    spec["study"].update(change)
    assert words in _problems(spec)[path][0]


def _instruction(spec: dict, **fields) -> dict:
    spec["batch"]["instructions"] = [fields]
    return spec


@pytest.mark.parametrize(("instruction", "path", "words"), [
    ({"type": "multiple_choice", "description": "d", "answer_limit": 0, "options": [{"label": "A", "value": "a"}]},
     "batch.instructions[0].answer_limit", "not allowed with 1 option"),
    ({"type": "multiple_choice", "description": "d", "answer_limit": 3,
      "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]},
     "batch.instructions[0].answer_limit", "answer_limit 3"),
    ({"type": "multiple_choice", "description": "d", "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "a"}]},
     "batch.instructions[0].options[1].value", "duplicate option value 'a'"),
    ({"type": "multiple_choice", "description": "d", "answer_limit": -1,
      "options": [{"label": "A|B", "value": "a"}, {"label": "C", "value": "c"}]},
     "batch.instructions[0].options[0].label", "contains '|'"),
    ({"type": "multiple_choice", "description": "d", "options": []}, "batch.instructions[0].options", "at least 1"),
    ({"type": "multiple_choice_with_free_text", "description": "d", "options": [{"label": "A", "value": "a"}]},
     "batch.instructions[0].options[0].heading", "Field required"),
    ({"type": "free_text_with_unit", "description": "d", "unit_position": "suffix", "unit_options": [{"label": "cm", "value": "cm"}]},
     "batch.instructions[0].unit_options", "at least 2"),
    ({"type": "free_text_with_unit", "description": "d", "unit_position": "middle",
      "unit_options": [{"label": "cm", "value": "cm"}, {"label": "in", "value": "in"}]},
     "batch.instructions[0].unit_position", "'prefix' or 'suffix'"),
    ({"type": "free_text_with_unit", "description": "d", "unit_position": "suffix", "default_unit": "m",
      "unit_options": [{"label": "cm", "value": "cm"}, {"label": "in", "value": "in"}]},
     "batch.instructions[0].default_unit", "not a unit value"),
    ({"type": "file_upload", "description": "d", "accepted_file_types": [".png", "jpg"], "max_file_size_mb": 5},
     "batch.instructions[0].accepted_file_types[1]", "does not start with a dot"),
    ({"type": "file_upload", "description": "d", "accepted_file_types": [".png"], "max_file_size_mb": 0},
     "batch.instructions[0].max_file_size_mb", "greater than 0"),
    ({"type": "file_upload", "description": "d", "accepted_file_types": [".png"], "max_file_size_mb": 1,
      "min_file_count": 3, "max_file_count": 2},
     "batch.instructions[0].max_file_count", "below min_file_count"),
    ({"type": "free_text", "description": "d", "validation": {"min": 10, "max": 5}},
     "batch.instructions[0].validation.max", "below min"),
    ({"type": "slider", "description": "d"}, "batch.instructions[0]", "'slider' is not an instruction type"),
    ({"type": "multiple_choise", "description": "d"}, "batch.instructions[0]", "did you mean multiple_choice?"),
    ({"type": "free_text", "description": ""}, "batch.instructions[0].description", "must not be empty"),
    ({"type": "free_text", "description": "   "}, "batch.instructions[0].description", "must not be empty or blank"),
    ({"type": "free_text", "description": "d", "colour": "red"}, "batch.instructions[0].colour", "colour is not a field here"),
    ({"type": "free_text", "description": "d", "descripton": "x"}, "batch.instructions[0].descripton", "did you mean description?"),
])
def test_instruction_rules_name_the_field_path(spec, instruction, path, words):
    problems = _problems(_instruction(spec, **instruction))
    assert path in problems, problems
    assert words in problems[path][0]
    assert problems[path][1], "every problem carries a hint"


def test_valid_instruction_types(spec):
    spec["batch"]["instructions"] = [
        {"type": "multiple_choice", "description": "d", "answer_limit": -1, "disable_dropdown": True,
         "options": [{"label": "A", "value": "a"}, {"label": "None", "value": "none", "exclusive": True}]},
        {"type": "multiple_choice_with_free_text", "description": "d", "answer_limit": 2,
         "options": [{"label": "A", "value": "a", "heading": "Why A?"}, {"label": "B", "value": "b", "heading": "Why B?"}]},
        {"type": "free_text", "description": "d", "validation": {"type": "string", "min": 1, "max": 500}},
        {"type": "free_text_with_unit", "description": "d", "unit_position": "prefix", "default_unit": "usd",
         "unit_options": [{"label": "$", "value": "usd", "validation": {"min": 0, "max": 100}}, {"label": "£", "value": "gbp"}]},
        {"type": "file_upload", "description": "d", "accepted_file_types": [".jpg", ".heic"], "max_file_size_mb": 2.5,
         "min_file_count": 1, "max_file_count": 3},
    ]
    payload = instructions_payload(AnnotationJob.from_dict(spec).batch)
    assert [p["order"] for p in payload] == [1, 2, 3, 4, 5]
    assert payload[1]["options"][0]["heading"] == "Why A?" and payload[3]["unit_position"] == "prefix"


def test_unknown_field_hint_lists_the_allowed_ones(spec):
    spec["study"]["reward"] = 300
    spec["dataset"]["csv_path"] = "x.csv"
    message, hint = _problems(spec)["dataset.csv_path"]
    assert "csv" in hint and "id_column" in hint


def test_duplicate_orders_are_reported_with_other_problems(spec):
    spec["batch"]["instructions"][0]["order"] = 1
    spec["batch"]["instructions"][1]["answer_limit"] = 7
    problems = _problems(spec)
    assert "order 1 is also used by instructions[0]" in problems["batch.instructions[1].order"][0]
    assert "batch.instructions[1].answer_limit" in problems


@pytest.mark.parametrize("layout", ["both", "neither"])
def test_exactly_one_layout(spec, layout):
    if layout == "both":
        spec["batch"]["batch_items"] = [{"rows": [{"columns": [{"items": [{"type": "free_text", "description": "d"}]}]}]}]
    else:
        del spec["batch"]["instructions"]
    problems = _problems(spec)
    assert any(f"{layout} instructions" in message or "nor batch_items" in message for message, _ in problems.values())


def test_batch_items_rules(spec):
    del spec["batch"]["instructions"]
    spec["batch"]["batch_items"] = [
        {"display_position": "outro", "rows": [{"columns": [{"items": [{"type": "dataset_field", "field": "x"}]}]}]},
        {"rows": [{"columns": [{"items": [{"type": "free_text", "description": "d", "order": 1},
                                          {"type": "video", "url": "u"}]}]}]},
    ]
    problems = _problems(spec)
    assert "not allowed on an outro page" in problems["batch.batch_items[0].rows[0].columns[0].items[0]"][0]
    assert "order is not used" in problems["batch.batch_items[1].rows[0].columns[0].items[0].order"][0]
    assert "batch.batch_items[1].rows[0].columns[0].items[1]" in problems


def test_batch_items_need_an_instruction_on_a_task_page(spec):
    del spec["batch"]["instructions"]
    spec["batch"]["batch_items"] = [{"rows": [{"columns": [{"items": [{"type": "rich_text", "content": "<p>x</p>"}]}]}]}]
    assert "no instruction on a task page" in _problems(spec)["batch.batch_items"][0]


@pytest.mark.parametrize(("dataset", "path", "words"), [
    ({"gold_column": "gold"}, "dataset.gold_column", "would be shown to participants"),
    ({"attention_check_column": "check"}, "dataset.attention_check_column", "would be shown to participants"),
    ({"encoding": "klingon"}, "dataset.encoding", "unknown encoding"),
    ({"max_rows": 0}, "dataset.max_rows", "greater than or equal to 1"),
    ({"delimiter": "|"}, "dataset.delimiter", "unknown delimiter"),
])
def test_dataset_rules(spec, dataset, path, words):
    spec["dataset"].update(dataset)
    assert words in _problems(spec)[path][0]


@pytest.mark.parametrize(("written", "delimiter"), [("tab", "\t"), ("\t", "\t"), (";", ";"), ("semicolon", ";"), (",", ",")])
def test_delimiter_names(spec, written, delimiter):
    spec["dataset"]["delimiter"] = written
    assert AnnotationJob.from_dict(spec).dataset.delimiter == delimiter


def test_gold_column_needs_a_choice_instruction(spec):
    spec["dataset"]["gold_column"] = "META_gold"
    spec["batch"]["instructions"] = [{"type": "free_text", "description": "Why?"}]
    assert "no choice instruction" in _problems(spec)["dataset.gold_column"][0]


def test_tasks_per_group(spec):
    spec["batch"]["tasks_per_group"] = 0
    assert "write 1 or more" in _problems(spec)["batch.tasks_per_group"][1]


def test_token_is_never_a_field(spec):
    assert not any("token" in name and name != "token_secret_block" for name in AnnotationJob.model_fields)
    spec["api_token"] = "secret-value"
    problems = _problems(spec)
    assert "PROLIFIC_API_TOKEN" in problems["api_token"][1]
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_dict(spec)
    assert "secret-value" not in str(caught.value)


def test_bad_spec_reports_all_problems_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("""\
name: "not a key!"
dataset: {name: d, csv: d.csv, gold_column: gold}
batch:
  name: b
  tasks_per_group: 0
  instructions:
    - {type: multiple_choice, description: d, options: [{label: A, value: a}, {label: B, value: a}, {label: C, value: c}]}
    - {type: free_text, description: d, order: 1}
study: {name: s, reward: 1.5, estimated_completion_time: 10, maximum_allowed_time: 5, annotators_per_task: 0}
""", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_yaml(bad)
    paths = {p.path for p in caught.value.problems}
    assert paths >= {"name", "dataset.gold_column", "batch.tasks_per_group", "batch.instructions[0].options[1].value",
                     "batch.instructions[1].order", "study.reward", "study.maximum_allowed_time",
                     "study.annotators_per_task"}
    lines = str(caught.value).splitlines()
    assert lines[0] == f"invalid job spec {bad}: {len(caught.value.problems)} problem(s)"
    assert all(line.strip().startswith(f"{bad}: ") and "(hint: " in line for line in lines[1:])


def test_spec_error_survives_pickling(spec):
    import pickle

    spec["study"]["reward"] = 1.5
    with pytest.raises(SpecError) as caught:
        AnnotationJob.from_dict(spec, source="job.yaml")
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and again.problems == caught.value.problems and again.source == "job.yaml"


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset:\n  name: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"YAML syntax error at line \d+"):
        AnnotationJob.from_yaml(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not a mapping"):
        AnnotationJob.from_yaml(bad)
    with pytest.raises(SpecError, match="cannot read the spec"):
        AnnotationJob.from_yaml(tmp_path / "missing.yaml")


def test_low_hourly_reward_is_a_warning(spec):
    spec["study"]["reward"] = 100  # 100 cents per 15 min = 400 cents per hour
    job = AnnotationJob.from_dict(spec)
    [warning] = job.warnings()
    assert warning.path == "study.reward" and "400 cents" in warning.message
    spec["study"]["reward"] = 300  # 1200 cents per hour
    assert AnnotationJob.from_dict(spec).warnings() == []


def test_job_key(spec):
    job = AnnotationJob.from_dict(spec)
    key = job.job_key("a" * 64)
    assert key.startswith("review-sentiment-") and len(key) == len("review-sentiment-") + 12
    run_changes = copy.deepcopy(spec)
    run_changes.update(publish=True, max_budget=99999, output_dir="elsewhere/")
    run_changes["dataset"]["csv"] = "/moved/reviews.csv"
    assert AnnotationJob.from_dict(run_changes).job_key("a" * 64) == key
    assert job.job_key("b" * 64) != key
    work_change = copy.deepcopy(spec)
    work_change["study"]["reward"] = 301
    assert AnnotationJob.from_dict(work_change).job_key("a" * 64) != key
    spec["name"] = "my-job.1"
    assert AnnotationJob.from_dict(spec).job_key("a" * 64) == "my-job.1"


def test_round_trip_through_json_as_prefect_parameters_do(spec):
    job = AnnotationJob.from_dict(spec, base_dir="/specs")
    again = AnnotationJob.model_validate(job.model_dump(mode="json"))
    assert again == job
    assert study_payload(again.study, "b", "n") == study_payload(job.study, "b", "n")
    assert "properties" in AnnotationJob.model_json_schema()


def test_the_spec_lists_its_parts_before_money_and_run_control():
    """The field order is the spec's (Prefect's form, the "allowed here" hints), though the fields live in two models."""
    fields = list(AnnotationJob.model_fields)
    assert fields[:8] == ["name", "workspace_id", "project_id", "dataset", "batch", "study", "adaptive", "pilot"]
    from taskbuilder.jobspec.live import LIVE_RUN_CONTROL_FIELDS

    assert set(fields[8:]) == (RUN_CONTROL_FIELDS - {"name"}) | LIVE_RUN_CONTROL_FIELDS and "publish" in fields[8:]
    shown = [name for name in fields if name not in FORM_HIDDEN_FIELDS]
    assert list(AnnotationJob.model_json_schema()["properties"]) == shown


def test_no_run_control_field_changes_the_job_key(spec):
    """Every run-control field stays out of the derived key: a first run unpublished, a second published."""
    key = AnnotationJob.from_dict(spec).job_key("a" * 64)
    changed = {"publish": True, "max_budget": 1, "fee_rate": 0.1, "vat_rate": 0.2, "min_hourly_reward_cents": 1,
               "require_approval": True, "wait_for_completion": False, "output_dir": "elsewhere/",
               "token_secret_block": "my-token", "approve_submissions": True, "min_agreement": 0.5,
               "min_gold_accuracy": 0.5, "study_deadline_minutes": 60, "bonus": {"per_submission_cents": 5},
               "reject": {"below_agreement": 0.1, "category": "OTHER", "message": "m" * 100}}
    assert set(changed) == RUN_CONTROL_FIELDS - {"name"}
    assert AnnotationJob.from_dict({**spec, **changed}).job_key("a" * 64) == key
    assert AnnotationJob.from_dict({**spec, "workspace_id": "ws-2"}).job_key("a" * 64) != key


def _models() -> list[type[BaseModel]]:
    """Every public model of the spec's modules (taskbuilder/jobspec/*.py)."""
    found = {}
    for path in sorted(Path(taskbuilder.jobspec.__file__).parent.glob("*.py")):
        if path.stem == "__init__":
            continue
        module = importlib.import_module(f"taskbuilder.jobspec.{path.stem}")
        found.update({value.__name__: value for value in vars(module).values()
                      if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
                      and not value.__name__.startswith("_")})
    return list(found.values())


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_field_has_a_description(model):
    """Prefect renders the spec as a form: every field needs a description."""
    missing = [name for name, field in model.model_fields.items() if not field.description]
    assert missing == []
    assert model.__doc__


@pytest.mark.parametrize("typo,meant", [("annotator_per_task", "annotators_per_task"), ("rewards", "reward"),
                                        ("Device_Compatibility", "device_compatibility"),
                                        ("estimated-completion-time", "estimated_completion_time")])
def test_a_misspelled_study_field_is_an_error_naming_the_field_meant(spec, typo, meant):
    spec["study"][typo] = spec["study"].get(meant, 3)
    problems = _problems(spec)
    assert f"study.{typo}" in problems, problems
    message, hint = problems[f"study.{typo}"]
    assert meant in message and meant in hint


def test_documented_and_unknown_study_fields_pass_through_unknown_with_a_warning(spec):
    spec["study"].update(device_compatibility=["desktop"], submissions_config={"max_submissions_per_participant": -1},
                         my_custom_flag=True)
    job = AnnotationJob.from_dict(spec)
    assert study_payload(job.study, "b1", "internal")["my_custom_flag"] is True
    assert study_payload(job.study, "b1", "internal")["device_compatibility"] == ["desktop"]
    assert [w.path for w in job.warnings() if "API documents" in w.message] == ["study.my_custom_flag"]


@pytest.mark.parametrize("name, refused", [("survey-round-2", True), ("survey-round-12", True), ("survey-round", False),
                                           ("round-2-survey", False), ("survey-round-two", False)])
def test_a_name_shaped_like_a_later_rounds_key_is_refused(spec, name, refused):
    spec["name"] = name
    if not refused:
        assert AnnotationJob.from_dict(spec).name == name
        return
    problems = _problems(spec)
    message, hint = problems["name"]
    assert "kept for the rounds of a job" in message and f"job 'survey' runs under '{name}'" in message and "choose a name" in hint
