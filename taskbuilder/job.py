"""The job spec: one YAML file that describes a whole annotation job (`AnnotationJob`).

Load it with `AnnotationJob.from_yaml(path)` (relative paths are resolved against the spec file's folder,
`s3://` URLs are kept as they are) or `AnnotationJob.from_dict(data, source=...)`. Both raise `SpecError`
with every problem found in one pass, each naming the field path (`batch.instructions[1].options[2].value`,
zero-based list positions), the spec file and what to do. `AnnotationJob.model_validate(data)` is plain
pydantic (raises `pydantic.ValidationError`; Prefect uses it for flow parameters);
`SpecError.from_validation_error` turns that into a `SpecError`.

The API token is never a field: it comes from `PROLIFIC_API_TOKEN` or the Prefect Secret block named by
`token_secret_block`.

Sources: the seed ("Working with Batches": task details, instructions, setup, study payload) and
docs/prolific-api.md §2.6 (META_ columns, META_TASK_GROUP_ID), §4 (instruction types and fields),
§6.1 (study fields), §12 (`batch_items` pages → rows → columns → items).
"""

from __future__ import annotations

import codecs
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

META_PREFIX = "META_"
TASK_GROUP_COLUMN = "META_TASK_GROUP_ID"
DEFAULT_GOLD_COLUMN = "META_gold"
CHOICE_TYPES = ("multiple_choice", "multiple_choice_with_free_text")
# Fields that steer a run rather than define the annotation work: they stay out of the derived job key,
# so re-running a job with `publish: true` finds the resources the first run created.
RUN_CONTROL_FIELDS = frozenset({
    "name", "publish", "max_budget", "fee_rate", "vat_rate", "min_hourly_reward_cents",
    "require_approval", "wait_for_completion", "output_dir", "token_secret_block",
    "approve_submissions", "min_agreement", "min_gold_accuracy",
})
# Study fields the flow sets itself (seed, "Publishing a batch").
FLOW_SET_STUDY_FIELDS = ("data_collection_method", "data_collection_id", "data_collection_metadata")
# Study fields the API documents besides StudySpec's own (API doc §6.1 table and §6.1 response fields): an
# extra key among them passes through quietly; one close to a known name is a typo (an error); any other
# passes through with a warning (the API may know fields the doc does not).
DOCUMENTED_STUDY_FIELDS = frozenset({
    "external_study_url", "prolific_id_option", "completion_option", "completion_code", "total_available_places",
    "device_compatibility", "peripheral_requirements", "study_type", "study_labels", "filters", "filter_set_id",
    "project", "credential_pool_id", "submissions_config", "access_details", "access_details_collection_id",
    "eligibility_requirements", "publish_at", "is_pilot", "currency_code", "presentment_currency_code",
})


# ----------------------------------------------------------------------------------------------------------
# Problems and the error


class SpecProblem(BaseModel):
    """One problem (or warning) in a job spec: `path` is the field path, e.g. `study.reward`."""

    path: str = Field(description="Field path in the spec, zero-based list positions, e.g. batch.instructions[0].options[1].value.")
    message: str = Field(description="What is wrong.")
    hint: str = Field(default="", description="What to do about it.")

    def format(self, source: str | None = None) -> str:
        """One line: `<source>: <path>: <message> (hint: <hint>)`."""
        where = f"{source}: " if source else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{self.path or '<spec>'}: {self.message}{hint}"


class SpecError(Exception):
    """A job spec is invalid. `problems` holds every problem found; `source` is the spec file (or None).

    `str(error)` lists them all, one per line, each naming the spec file and the field path.
    """

    def __init__(self, problems: list[SpecProblem], source: str | Path | None = None):
        self.problems = problems
        self.source = str(source) if source is not None else None
        lines = [p.format(self.source) for p in problems]
        header = f"invalid job spec{f' {self.source}' if self.source else ''}: {len(problems)} problem(s)"
        super().__init__("\n".join([header, *("  " + line for line in lines)]))

    def __reduce__(self):  # keeps the problems when Prefect or multiprocessing pickles the error
        return (type(self), (self.problems, self.source))

    @classmethod
    def from_validation_error(cls, error: ValidationError, source: str | Path | None = None) -> "SpecError":
        """Convert pydantic's error of `AnnotationJob` validation into a `SpecError` with field paths and hints."""
        problems: list[SpecProblem] = []
        for item in error.errors(include_url=False):
            ctx = item.get("ctx") or {}
            path = _loc_to_path(item["loc"])
            if "problems" in ctx:  # our own checks carry sub-paths, messages and hints
                for subpath, message, hint in ctx["problems"]:
                    problems.append(SpecProblem(path=_join(path, subpath), message=message, hint=hint))
                continue
            problems.append(SpecProblem(path=path, message=_message_for(item), hint=_hint_for(item)))
        return cls(problems, source)


def _fail(problems: list[tuple[str, str, str]]) -> PydanticCustomError:
    """Our checks' error: `problems` are (sub-path relative to the validated value, message, hint)."""
    message = "; ".join(f"{p[0]}: {p[1]}" if p[0] else p[1] for p in problems)
    return PydanticCustomError("spec_problem", "{summary}", {"summary": message, "problems": problems})


def _join(path: str, subpath: str) -> str:
    if not subpath:
        return path
    if subpath.startswith("["):
        return f"{path}{subpath}"
    return f"{path}.{subpath}" if path else subpath


def _validate_with_raw_checks(handler: Any, data: Any, problems: list[tuple[str, str, str]], title: str) -> Any:
    """Run pydantic's `handler(data)` and report `problems` (checks made on the raw input) together with any
    field errors, so one bad field does not hide the other problems of the same spec section."""
    try:
        model = handler(data)
    except ValidationError as error:
        if not problems:
            raise
        details = []
        for item in error.errors(include_url=False):
            kind = item["type"]
            if kind == "spec_problem":
                kind = PydanticCustomError("spec_problem", "{summary}", item["ctx"])
            detail = InitErrorDetails(type=kind, loc=item["loc"], input=item["input"])
            if "ctx" in item and not isinstance(kind, PydanticCustomError):
                detail["ctx"] = item["ctx"]
            details.append(detail)
        details.append(InitErrorDetails(type=_fail(problems), loc=(), input=data))
        raise ValidationError.from_exception_data(title, details) from None
    if problems:
        raise _fail(problems)
    return model


def _number(value: Any) -> float | None:
    """A raw YAML number (not bool), else None: raw checks skip values the field validators refuse anyway."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# ----------------------------------------------------------------------------------------------------------
# Shared pieces


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _fail([("", "must not be empty or blank", "write the text (spaces alone do not count)")])
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]

class _Spec(BaseModel):
    # YAML writes `value: 1` as a number; option values and labels are text, so numbers become strings.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_default=True)


def _whole_number(value: Any, what: str, hint: str) -> Any:
    """Accept an int (or a float/str holding a whole number); refuse fractions and booleans with `hint`."""
    if isinstance(value, bool):
        raise _fail([("", f"{what} must be a whole number, got {value!r}", hint)])
    if isinstance(value, float):
        if not value.is_integer():
            raise _fail([("", f"{what} must be a whole number, got {value!r}", hint)])
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _fail([("", f"{what} must be a whole number, got {value!r}", hint)]) from None
    return value


def _duplicates(values: list) -> dict[Any, list[int]]:
    """Each value seen more than once → its positions."""
    seen: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        seen.setdefault(v, []).append(i)
    return {v: idx for v, idx in seen.items() if len(idx) > 1}


# ----------------------------------------------------------------------------------------------------------
# Instructions (API doc §4)


class ChoiceOption(_Spec):
    """An option of a `multiple_choice` instruction (API doc §4.3)."""

    label: NonBlank = Field(description="Text shown to participants; the report's response cells hold labels.")
    value: NonBlank = Field(description="Value stored for the option; gold answers use values.")
    exclusive: bool | None = Field(default=None, description="Selecting it deselects the others (e.g. 'None of the above').")


class HeadedOption(_Spec):
    """An option of a `multiple_choice_with_free_text` instruction: `heading` prompts the free-text box (§4.3)."""

    label: NonBlank = Field(description="Text shown to participants.")
    value: NonBlank = Field(description="Value stored for the option.")
    heading: NonBlank = Field(description="Prompt of the free-text box shown when this option is picked.")


class UnitValidation(_Spec):
    """Number bounds of a unit of a `free_text_with_unit` instruction."""

    type: Literal["number"] = Field(default="number", description="Always 'number'.")
    min: float | None = Field(default=None, description="Smallest allowed number.")
    max: float | None = Field(default=None, description="Largest allowed number.")


class UnitOption(_Spec):
    """A unit of a `free_text_with_unit` instruction (§4.3)."""

    label: NonBlank = Field(description="Unit shown to participants, e.g. 'cm'.")
    value: NonBlank = Field(description="Unit value stored with the answer.")
    validation: UnitValidation | None = Field(default=None, description="Optional number bounds for this unit.")


class TextValidation(_Spec):
    """Length bounds of a `free_text` answer (§4.3)."""

    type: Literal["string"] = Field(default="string", description="Always 'string'.")
    min: int | None = Field(default=None, ge=0, description="Fewest characters.")
    max: int | None = Field(default=None, ge=1, description="Most characters.")

    @model_validator(mode="after")
    def _min_le_max(self) -> "TextValidation":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _fail([("max", f"max ({self.max}) is below min ({self.min})", "make max at least min")])
        return self


class _InstructionBase(_Spec):
    description: NonBlank = Field(description="The question or prompt shown to participants (the report's Question column).")
    helper_text: str | None = Field(default=None, description="Guidance shown under the question.")
    placeholder_text_input: str | None = Field(default=None, description="Placeholder of the input box.")
    order: int | None = Field(
        default=None, ge=1,
        description="Position (1, 2, ...) in legacy `instructions`; defaults to the list position. Not used in batch_items.",
    )
    created_by: NonBlank = Field(default="taskbuilder", description="Author name sent with the instruction.")


def _check_answer_limit(answer_limit: int, n_options: int) -> list[tuple[str, str, str]]:
    if answer_limit == -1 or 1 <= answer_limit <= n_options:
        return []
    return [("answer_limit", f"answer_limit {answer_limit} is not allowed with {n_options} option(s)",
             f"use 1 (single select), -1 (unlimited) or a number from 1 to {n_options}")]


def _check_options(options: list, *, labels_joined: bool) -> list[tuple[str, str, str]]:
    problems = []
    for field in ("value", "label"):
        for v, idx in _duplicates([getattr(o, field) for o in options]).items():
            for i in idx[1:]:
                problems.append((f"options[{i}].{field}", f"duplicate option {field} {v!r} (also options[{idx[0]}])",
                                 f"give every option a distinct {field}"))
    if labels_joined:
        for i, o in enumerate(options):
            if "|" in o.label:
                problems.append((f"options[{i}].label", f"label {o.label!r} contains '|'",
                                 "the report joins several selected labels with '|'; remove it from the label "
                                 "or set answer_limit: 1"))
    return problems


class MultipleChoiceInstruction(_InstructionBase):
    """`multiple_choice`: pick options (§4.3; seed "Example: Sentiment classification")."""

    type: Literal["multiple_choice"] = Field(description="Instruction type.")
    options: list[ChoiceOption] = Field(min_length=1, description="The options, in display order.")
    answer_limit: int = Field(default=1, description="1 = single select, -1 = unlimited, or up to the number of options.")
    disable_dropdown: bool | None = Field(default=None, description="Render radio buttons/checkboxes even with 5 or more options.")

    @model_validator(mode="after")
    def _rules(self) -> "MultipleChoiceInstruction":
        problems = _check_answer_limit(self.answer_limit, len(self.options))
        problems += _check_options(self.options, labels_joined=self.answer_limit != 1)
        if problems:
            raise _fail(problems)
        return self


class MultipleChoiceWithFreeTextInstruction(_InstructionBase):
    """`multiple_choice_with_free_text`: pick options, each with a headed free-text box (§4.3)."""

    type: Literal["multiple_choice_with_free_text"] = Field(description="Instruction type.")
    options: list[HeadedOption] = Field(min_length=1, description="The options; each needs a heading.")
    answer_limit: int = Field(default=1, description="1 = single select, -1 = unlimited, or up to the number of options.")

    @model_validator(mode="after")
    def _rules(self) -> "MultipleChoiceWithFreeTextInstruction":
        problems = _check_answer_limit(self.answer_limit, len(self.options)) + _check_options(self.options, labels_joined=False)
        if problems:
            raise _fail(problems)
        return self


class FreeTextInstruction(_InstructionBase):
    """`free_text`: an open text answer (§4.3; seed "Example: Free text explanation")."""

    type: Literal["free_text"] = Field(description="Instruction type.")
    validation: TextValidation | None = Field(default=None, description="Optional answer length bounds.")


class FreeTextWithUnitInstruction(_InstructionBase):
    """`free_text_with_unit`: a number with a unit picked from `unit_options` (§4.3)."""

    type: Literal["free_text_with_unit"] = Field(description="Instruction type.")
    unit_options: list[UnitOption] = Field(description="At least two units.")
    unit_position: Literal["prefix", "suffix"] = Field(description="Unit shown before ('prefix') or after ('suffix') the number.")
    default_unit: str | None = Field(default=None, description="Preselected unit: one of the unit_options values.")

    @model_validator(mode="after")
    def _rules(self) -> "FreeTextWithUnitInstruction":
        problems = []
        if len(self.unit_options) < 2:
            problems.append(("unit_options", f"{len(self.unit_options)} unit option(s); at least 2 are needed",
                             "list two or more units, or use a free_text instruction"))
        values = [u.value for u in self.unit_options]
        for v, idx in _duplicates(values).items():
            problems += [(f"unit_options[{i}].value", f"duplicate unit value {v!r}", "give every unit a distinct value")
                         for i in idx[1:]]
        if self.default_unit is not None and self.default_unit not in values:
            problems.append(("default_unit", f"default_unit {self.default_unit!r} is not a unit value",
                             f"use one of {values}"))
        if problems:
            raise _fail(problems)
        return self


class FileUploadInstruction(_InstructionBase):
    """`file_upload`: participants upload files (§4.3)."""

    type: Literal["file_upload"] = Field(description="Instruction type.")
    accepted_file_types: list[str] = Field(min_length=1, description="Extensions, each starting with a dot, e.g. ['.jpg', '.png'].")
    max_file_size_mb: float = Field(gt=0, description="Largest file in megabytes (> 0).")
    min_file_count: int = Field(default=1, ge=1, description="Fewest files (≥ 1).")
    max_file_count: int = Field(default=1, ge=1, description="Most files (≥ min_file_count).")

    @model_validator(mode="after")
    def _rules(self) -> "FileUploadInstruction":
        problems = [(f"accepted_file_types[{i}]", f"extension {ext!r} does not start with a dot", f"write '.{ext}'")
                    for i, ext in enumerate(self.accepted_file_types) if not ext.startswith(".") or len(ext) < 2]
        if self.min_file_count > self.max_file_count:
            problems.append(("max_file_count", f"max_file_count {self.max_file_count} is below min_file_count "
                             f"{self.min_file_count}", "make max_file_count at least min_file_count"))
        if problems:
            raise _fail(problems)
        return self


Instruction = Annotated[
    Union[MultipleChoiceInstruction, MultipleChoiceWithFreeTextInstruction, FreeTextInstruction,
          FreeTextWithUnitInstruction, FileUploadInstruction],
    Field(discriminator="type"),
]
INSTRUCTION_CLASSES = (MultipleChoiceInstruction, MultipleChoiceWithFreeTextInstruction, FreeTextInstruction,
                       FreeTextWithUnitInstruction, FileUploadInstruction)


# ----------------------------------------------------------------------------------------------------------
# batch_items (API doc §12)


class RichTextBlock(_Spec):
    """Content block: HTML text (`batch_items`, §12)."""

    type: Literal["rich_text"] = Field(description="Content block type.")
    content: NonBlank = Field(description="HTML content, e.g. '<p>Read the review.</p>'.")
    content_format: str | None = Field(default=None, description="Optional content format, passed through.")


class ImageBlock(_Spec):
    """Content block: an image (`batch_items`, §12)."""

    type: Literal["image"] = Field(description="Content block type.")
    url: NonBlank = Field(description="Image URL.")
    alt_text: str | None = Field(default=None, description="Alternative text.")
    caption: str | None = Field(default=None, description="Caption shown under the image.")


class DatasetFieldRef(_Spec):
    """Places a dataset column on the page (`batch_items`, §12)."""

    type: Literal["dataset_field"] = Field(description="Item type.")
    field: NonBlank = Field(description="Dataset column name; the CSV must have it.")


BatchItem = Annotated[
    Union[MultipleChoiceInstruction, MultipleChoiceWithFreeTextInstruction, FreeTextInstruction,
          FreeTextWithUnitInstruction, FileUploadInstruction, RichTextBlock, ImageBlock, DatasetFieldRef],
    Field(discriminator="type"),
]


class BatchItemsColumn(_Spec):
    """A column of a row: its `items` in display order."""

    items: list[BatchItem] = Field(min_length=1, description="Instructions, content blocks or dataset_field references.")

    @model_validator(mode="wrap")
    @classmethod
    def _no_order(cls, data: Any, handler: Any) -> "BatchItemsColumn":
        items = data.get("items") if isinstance(data, dict) else None
        problems = [(f"items[{i}].order", "order is not used in batch_items", "remove it: an item's position is its order")
                    for i, item in enumerate(items if isinstance(items, list) else [])
                    if isinstance(item, dict) and item.get("order") is not None]
        return _validate_with_raw_checks(handler, data, problems, cls.__name__)


class BatchItemsRow(_Spec):
    """A row of a page: its `columns` side by side."""

    columns: list[BatchItemsColumn] = Field(min_length=1, description="Columns of the row.")


class BatchItemsPage(_Spec):
    """A page: repeated for every task, or shown once before (`intro`) or after (`outro`) the tasks."""

    display_position: Literal["intro", "outro"] | None = Field(
        default=None, description="'intro' or 'outro' (content blocks only); empty = a task page repeated per task.")
    rows: list[BatchItemsRow] = Field(min_length=1, description="Rows of the page, top to bottom.")

    def items(self) -> list[tuple[str, Any]]:
        """(sub-path, item) of every item on the page, in display order."""
        return [(f"rows[{r}].columns[{c}].items[{i}]", item)
                for r, row in enumerate(self.rows) for c, col in enumerate(row.columns)
                for i, item in enumerate(col.items)]

    @model_validator(mode="after")
    def _intro_outro_content_only(self) -> "BatchItemsPage":
        if self.display_position is None:
            return self
        problems = [(sub, f"{item.type} is not allowed on an {self.display_position} page",
                     "intro/outro pages hold content blocks only (rich_text, image); move it to a task page")
                    for sub, item in self.items() if not isinstance(item, (RichTextBlock, ImageBlock))]
        if problems:
            raise _fail(problems)
        return self


# ----------------------------------------------------------------------------------------------------------
# Sections


class DatasetSpec(_Spec):
    """The CSV to upload as the dataset (API doc §2, §2.6)."""

    name: NonBlank = Field(description="Dataset name on Prolific.")
    csv: NonBlank = Field(description="CSV (or .tsv) file: a path relative to the spec file, or s3://bucket/key.")
    id_column: str | None = Field(default=None, description="Column with a unique id per row (checked: present, non-empty, unique).")
    gold_column: str | None = Field(
        default=None,
        description="META_ column with the gold answer per row: an option value of the first choice instruction "
                    "(empty cell = no gold). Empty = META_gold when the CSV has that column.")
    attention_check_column: str | None = Field(
        default=None, description="META_ column marking attention-check rows (non-empty and not '0'/'false').")
    encoding: str | None = Field(
        default=None, description="Text encoding of the file when not UTF-8, e.g. cp1252: transcoded to UTF-8 for upload.")
    delimiter: str | None = Field(
        default=None, description="Field separator when detection is not wanted: ',' or ';' (CSV quoting) or 'tab' "
                                  "(TSV, no quoting). Empty = .tsv files and tab-separated .txt are TSV, others CSV.")
    max_rows: int = Field(default=100_000, ge=1, description="Largest number of data rows accepted.")
    max_cell_chars: int = Field(default=10_000, ge=1, description="Longest cell accepted, in characters.")

    def gold_column_in(self, columns: list[str]) -> str | None:
        """The gold column for a CSV with `columns`: `gold_column` if set, else META_gold if present, else None."""
        if self.gold_column is not None:
            return self.gold_column
        return DEFAULT_GOLD_COLUMN if DEFAULT_GOLD_COLUMN in columns else None

    @property
    def csv_is_s3(self) -> bool:
        """True when `csv` is an `s3://bucket/key` URL."""
        return self.csv.startswith("s3://")

    @field_validator("csv", mode="after")
    @classmethod
    def _resolve_csv(cls, value: str, info: ValidationInfo) -> str:
        return _resolve(value, info)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise _fail([("", f"unknown encoding {value!r}", "use a Python codec name such as cp1252, latin-1 or utf-16")]) from None

    @field_validator("delimiter")
    @classmethod
    def _known_delimiter(cls, value: str | None) -> str | None:
        names = {",": ",", "comma": ",", ";": ";", "semicolon": ";", "\t": "\t", "tab": "\t", "\\t": "\t"}
        if value is None or value in names:
            return None if value is None else names[value]
        raise _fail([("", f"unknown delimiter {value!r}", "use ',', ';' or 'tab'")])

    @field_validator("gold_column", "attention_check_column")
    @classmethod
    def _hidden(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.startswith(META_PREFIX):
            raise _fail([("", f"{info.field_name} {value!r} would be shown to participants",
                          f"rename the column to start with {META_PREFIX} (e.g. {META_PREFIX}{value}) so it stays hidden")])
        return value


class TaskDetails(_Spec):
    """Context shown to participants (seed, "Task details"); basic HTML allowed."""

    task_name: NonBlank = Field(description="Title displayed to participants.")
    task_introduction: str = Field(default="", description="Introduction or general guidance (basic HTML).")
    task_steps: str = Field(default="", description="Steps participants should follow (basic HTML).")


class BatchSpec(_Spec):
    """The batch: task details, instructions (legacy) or batch_items (current), task grouping."""

    name: NonBlank = Field(description="Batch name; the job key is appended as ' [job:<key>]'.")
    task_details: TaskDetails | None = Field(
        default=None, description="Task name, introduction and steps shown to participants.")
    tasks_per_group: int = Field(
        default=1, description="Tasks per task group (one submission); ignored when the CSV has META_TASK_GROUP_ID.")
    instructions: list[Instruction] | None = Field(
        default=None, description="Instructions in the seed's layout (legacy endpoint). Give this or batch_items.")
    batch_items: list[BatchItemsPage] | None = Field(
        default=None, description="Pages → rows → columns → items (API doc §12). Give this or instructions.")

    @field_validator("tasks_per_group", mode="before")
    @classmethod
    def _tasks_per_group(cls, value: Any) -> Any:
        value = _whole_number(value, "tasks_per_group", "write a whole number of tasks, 1 or more")
        if isinstance(value, int) and value < 1:
            raise _fail([("", f"tasks_per_group is {value}", "write 1 or more")])
        return value

    @field_validator("instructions")
    @classmethod
    def _default_orders(cls, instructions: list | None) -> list | None:
        if instructions is not None and not instructions:
            raise _fail([("", "no instructions", "add at least one instruction")])
        for i, ins in enumerate(instructions or []):
            if ins.order is None:
                ins.order = i + 1
        return instructions

    @field_validator("batch_items")
    @classmethod
    def _has_task_instruction(cls, pages: list | None) -> list | None:
        if pages is None:
            return None
        task_items = [item for p in pages if p.display_position is None for _, item in p.items()]
        if not any(isinstance(item, INSTRUCTION_CLASSES) for item in task_items):
            raise _fail([("", "no instruction on a task page",
                          "add a page without display_position holding at least one instruction")])
        return pages

    @model_validator(mode="wrap")
    @classmethod
    def _layout_and_orders(cls, data: Any, handler: Any) -> "BatchSpec":
        problems: list[tuple[str, str, str]] = []
        if isinstance(data, dict):
            given = [key for key in ("instructions", "batch_items") if data.get(key) is not None]
            if len(given) != 1:
                problems.append(("instructions" if given else "", "both instructions and batch_items are given" if given
                                 else "neither instructions nor batch_items is given",
                                 "give exactly one: instructions (the seed's legacy layout) or batch_items (API doc §12)"))
            raw = data.get("instructions")
            if isinstance(raw, list):
                orders = [_number(item.get("order", i + 1)) if isinstance(item, dict) else None for i, item in enumerate(raw)]
                problems += [(f"instructions[{i}].order", f"order {o} is also used by instructions[{idx[0]}]",
                              "give every instruction a distinct order")
                             for o, idx in _duplicates(orders).items() if o is not None for i in idx[1:]]
        return _validate_with_raw_checks(handler, data, problems, cls.__name__)

    def ordered_instructions(self) -> list:
        """The instructions in participant order: legacy by `order`, batch_items by position on task pages."""
        if self.instructions is not None:
            return sorted(self.instructions, key=lambda ins: ins.order)
        return [item for p in self.batch_items or [] if p.display_position is None
                for _, item in p.items() if isinstance(item, INSTRUCTION_CLASSES)]


def _minutes(value: Any, what: str) -> Any:
    value = _whole_number(value, what, f"{what} is in whole minutes, e.g. 15")
    if isinstance(value, int) and value < 1:
        raise _fail([("", f"{what} is {value}", "write 1 minute or more")])
    return value


class StudySpec(BaseModel):
    """The Prolific study that runs the batch (seed "Publishing a batch"; API doc §6.1).

    Any other study field the API documents (filters, device_compatibility, total_available_places,
    project, submissions_config, ...) passes through unchanged.
    """

    model_config = ConfigDict(extra="allow", validate_default=True)

    name: NonBlank = Field(description="Study title shown to participants.")
    internal_name: str | None = Field(
        default=None, description="Name seen only by you; the job key is appended as ' [job:<key>]'.")
    description: str = Field(default="", description="Participant-facing description (basic HTML).")
    reward: int = Field(description="Reward per submission in cents/pence (minor units), a whole number: 300 = £3.00.")
    estimated_completion_time: int = Field(description="Estimated minutes per submission (whole minutes).")
    maximum_allowed_time: int | None = Field(
        default=None, description="Time limit in whole minutes (≥ estimated_completion_time).")
    annotators_per_task: int = Field(
        default=1, description="Participants per datapoint (data_collection_metadata.annotators_per_task).")
    completion_codes: list[dict[str, Any]] | None = Field(
        default=None, description="Completion codes, passed through (API doc §6.1).")

    @field_validator("reward", mode="before")
    @classmethod
    def _reward_cents(cls, value: Any) -> Any:
        value = _whole_number(value, "reward", "reward is in cents: write 150 for £1.50")
        if isinstance(value, int) and value < 1:
            raise _fail([("", f"reward is {value}", "reward is in cents and must be positive: write 150 for £1.50")])
        return value

    @field_validator("estimated_completion_time", "maximum_allowed_time", mode="before")
    @classmethod
    def _whole_minutes(cls, value: Any, info: ValidationInfo) -> Any:
        return None if value is None else _minutes(value, info.field_name)

    @field_validator("annotators_per_task", mode="before")
    @classmethod
    def _annotators(cls, value: Any) -> Any:
        value = _whole_number(value, "annotators_per_task", "write a whole number of participants, 1 or more")
        if isinstance(value, int) and value < 1:
            raise _fail([("", f"annotators_per_task is {value}", "write 1 or more")])
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _rules(cls, data: Any, handler: Any) -> "StudySpec":
        problems: list[tuple[str, str, str]] = []
        if isinstance(data, dict):
            problems += [(key, f"{key} is set by taskbuilder", "remove it; set study.annotators_per_task for "
                          "data_collection_metadata") for key in FLOW_SET_STUDY_FIELDS if key in data]
            problems += [(key, f"{key} is not a study field; it looks like a misspelling of {near!r}",
                          f"write {near}: a misspelled field would be sent to Prolific as is while {near} kept its "
                          "default") for key, near in _misspelled_study_fields(data)]
            estimated, maximum = _number(data.get("estimated_completion_time")), _number(data.get("maximum_allowed_time"))
            if estimated is not None and maximum is not None and maximum < estimated:
                problems.append(("maximum_allowed_time", f"maximum_allowed_time {maximum} is below "
                                 f"estimated_completion_time {estimated}",
                                 "make maximum_allowed_time at least estimated_completion_time (minutes)"))
        return _validate_with_raw_checks(handler, data, problems, cls.__name__)


def _known_study_fields() -> set[str]:
    return set(StudySpec.model_fields) | DOCUMENTED_STUDY_FIELDS | set(FLOW_SET_STUDY_FIELDS)


def _misspelled_study_fields(data: dict) -> list[tuple[str, str]]:
    """(key, known field it is close to) for each key of a study mapping that is not a known study field but
    reads like one (difflib ratio ≥ 0.8, case and `-`/space ignored), e.g. `annotator_per_task`."""
    known = _known_study_fields()
    found = []
    for key in data:
        if not isinstance(key, str) or key in known:
            continue
        near = _closest(key.strip().replace("-", "_").replace(" ", "_"), sorted(known), cutoff=0.8)
        if near is not None:
            found.append((key, near))
    return found


def _resolve(value: str, info: ValidationInfo) -> str:
    """Resolve a relative path against `context["base_dir"]` (the spec's folder); keep s3:// URLs."""
    if value.startswith("s3://"):
        return value
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return str(path)


class AnnotationJob(_Spec):
    """A whole annotation job: dataset CSV, batch, study and the run's limits and switches.

    Shapes and sources: see the module docstring. Money is in cents (minor units); times in minutes.
    Load with `from_yaml(path)` or `from_dict(data)`; both raise `SpecError` listing every problem.
    """

    name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Job name = job key (letters, digits, . _ -; up to 64). Empty = derived from the spec and the "
                    "CSV bytes.")
    workspace_id: str | None = Field(
        default=None, description="Prolific workspace id; empty = PROLIFIC_WORKSPACE_ID (the sandbox has a default).")
    project_id: str | None = Field(default=None, description="Prolific project id; empty = PROLIFIC_PROJECT_ID, if set.")
    dataset: DatasetSpec = Field(description="The CSV file and its checks.")
    batch: BatchSpec = Field(description="Batch name, task details, instructions or batch_items, tasks_per_group.")
    study: StudySpec = Field(
        description="The study: name, reward (cents), times (minutes), annotators_per_task, extra API fields.")
    publish: bool = Field(default=False, description="Publish the study (spends money) only when true.")
    max_budget: int = Field(
        default=20_000, ge=0,
        description="Largest total cost in cents (rewards + fee + VAT); above it the study is not published.")
    fee_rate: float = Field(
        default=0.3333, ge=0, lt=1,
        description="Assumed Prolific service fee as a share of rewards (0.3333 = 33.33%); check your account's rate.")
    vat_rate: float = Field(default=0.0, ge=0, lt=1, description="VAT charged on the fee, as a share (0.2 = 20%).")
    min_hourly_reward_cents: int = Field(default=800, ge=0, description="Warn when reward per hour (cents) is below this.")
    require_approval: bool = Field(default=False, description="Pause for a human approval in Prefect before publishing.")
    wait_for_completion: bool = Field(default=True, description="Wait for the study to finish and collect the report.")
    output_dir: str = Field(
        default="out/", description="Folder for results: a path relative to the spec file, or s3://bucket/prefix.")
    token_secret_block: str | None = Field(
        default=None, description="Prefect Secret block holding the API token; empty = PROLIFIC_API_TOKEN.")
    approve_submissions: bool = Field(default=False, description="Bulk-approve passing submissions after the study.")
    min_agreement: float = Field(
        default=0.0, ge=0, le=1, description="Flag participants whose agreement with the majority is below this share.")
    min_gold_accuracy: float = Field(
        default=0.0, ge=0, le=1, description="Flag participants whose accuracy on gold rows is below this share.")

    @field_validator("output_dir", mode="after")
    @classmethod
    def _resolve_output_dir(cls, value: str, info: ValidationInfo) -> str:
        return _resolve(value, info)

    @model_validator(mode="after")
    def _cross_checks(self) -> "AnnotationJob":
        problems = []
        if self.dataset.gold_column is not None and not self.choice_instructions():
            problems.append(("dataset.gold_column", "gold_column is set but the batch has no choice instruction",
                             "add a multiple_choice instruction (gold values are its option values) or remove gold_column"))
        if problems:
            raise _fail(problems)
        return self

    # ---------------------------------------------------------------- loading

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path | None = None, base_dir: str | Path | None = None) -> "AnnotationJob":
        """Validate a spec mapping; relative paths resolve against `base_dir`. Raises `SpecError` (all problems)."""
        if not isinstance(data, dict):
            raise SpecError([SpecProblem(path="", message=f"the spec is a {type(data).__name__}, not a mapping",
                                         hint="write the spec as YAML keys: name, dataset, batch, study, ...")], source)
        try:
            return cls.model_validate(data, context={"base_dir": str(base_dir) if base_dir is not None else None})
        except ValidationError as error:
            raise SpecError.from_validation_error(error, source) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "AnnotationJob":
        """Load a spec file. Paths in it resolve against its folder (s3:// kept). Raises `SpecError`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SpecError([SpecProblem(path="", message=f"cannot read the spec: {error}",
                                         hint="check the path; the spec is a UTF-8 YAML file")], path) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise SpecError([SpecProblem(path="", message=f"YAML syntax error{where}: {getattr(error, 'problem', error)}",
                                         hint="fix the YAML (indentation, a missing ':' or an unclosed quote)")], path) from None
        return cls.from_dict(data, source=path, base_dir=path.resolve().parent)

    # ---------------------------------------------------------------- derived values

    def warnings(self) -> list[SpecProblem]:
        """Problems that do not stop the job: a reward per hour below `min_hourly_reward_cents`, and study fields
        the API doc does not list (they are sent to Prolific as written; API doc §6.1)."""
        found = []
        per_hour = self.study.reward / self.study.estimated_completion_time * 60
        if per_hour < self.min_hourly_reward_cents:
            found.append(SpecProblem(path="study.reward", message=f"reward per hour is {per_hour:.0f} cents "
                                     f"({self.study.reward} cents for {self.study.estimated_completion_time} min), below "
                                     f"min_hourly_reward_cents {self.min_hourly_reward_cents}",
                                     hint="raise study.reward or lower estimated_completion_time; Prolific flags underpaying studies"))
        known = _known_study_fields()
        found += [SpecProblem(path=f"study.{key}", message=f"{key} is not a study field the API documents; it is sent "
                              "to Prolific as written", hint="check the name against Prolific's study fields, or remove it")
                  for key in (self.study.model_extra or {}) if key not in known]
        return found

    def work_fingerprint(self, csv_sha256: str) -> str:
        """SHA-256 (hex) of what the job asks participants to do: the spec's work fields and the CSV's bytes.

        Run-control fields (publish, budget, output, thresholds, ...) and the CSV's location are left out:
        changing them keeps the fingerprint, so a job first run with `publish: false` can be published later.
        """
        work = self.model_dump(mode="json", exclude=set(RUN_CONTROL_FIELDS))
        work["dataset"].pop("csv")
        return hashlib.sha256(json.dumps([work, csv_sha256], sort_keys=True).encode()).hexdigest()

    def job_key(self, csv_sha256: str) -> str:
        """The job key: `name`, else `<batch name slug>-<12 hex>` from the spec's work fields and the CSV's SHA-256.

        Run-control fields (publish, budget, output, thresholds, ...) and the CSV's location are left out, so the
        same work on the same bytes keeps its key across runs.
        """
        if self.name:
            return self.name
        digest = self.work_fingerprint(csv_sha256)[:12]
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.batch.name.lower()).strip("-")
        slug = "-".join(part for part in slug.split("-") if part)[:40] or "job"
        return f"{slug}-{digest}"

    def choice_instructions(self) -> list:
        """Choice instructions (multiple_choice, multiple_choice_with_free_text) in order; the first is the gold target."""
        return [ins for ins in self.batch.ordered_instructions() if ins.type in CHOICE_TYPES]

    def required_columns(self) -> set[str]:
        """CSV columns the job needs: dataset_field references, the id, gold and attention-check columns (when set)."""
        columns = {item.field for page in self.batch.batch_items or [] for _, item in page.items()
                   if isinstance(item, DatasetFieldRef)}
        columns.update(c for c in (self.dataset.id_column, self.dataset.gold_column,
                                   self.dataset.attention_check_column) if c)
        return columns

    def instructions_payload(self) -> list[dict]:
        """Body items for `POST /batches/{id}/instructions` (legacy, API doc §4): sorted by `order`.

        Non-choice instructions get `answer_limit: 1`, as Prolific's example clients send it on every
        instruction (API doc §4.3 [I]). Raises ValueError when the spec uses batch_items.
        """
        if self.batch.instructions is None:
            raise ValueError("this job uses batch_items; use batch_items_payload()")
        payload = []
        for ins in self.batch.ordered_instructions():
            item = ins.model_dump(mode="json", exclude_none=True)
            item.setdefault("answer_limit", 1)
            payload.append(item)
        return payload

    def batch_items_payload(self) -> list[dict] | None:
        """The `batch_items` array for `POST/PATCH /batches` (API doc §12), or None for a legacy-instructions job."""
        if self.batch.batch_items is None:
            return None
        return [page.model_dump(mode="json", exclude_none=True) for page in self.batch.batch_items]

    def instructions_as_batch_items(self, visible_columns: list[str]) -> list[dict]:
        """The legacy instructions as ONE `batch_items` task page (API doc §12): each visible dataset column as a
        `dataset_field` reference first, then the instructions in order (without `order`). For when the legacy
        endpoint is retired. `visible_columns`: the CSV columns participants see (not META_), in CSV order.
        """
        items: list[dict] = [{"type": "dataset_field", "field": column} for column in visible_columns]
        if self.batch.instructions is None:
            raise ValueError("this job already uses batch_items; use batch_items_payload()")
        items += [ins.model_dump(mode="json", exclude_none=True, exclude={"order"}) for ins in self.batch.ordered_instructions()]
        return [{"rows": [{"columns": [{"items": items}]}]}]

    def study_payload(self, batch_id: str, internal_name: str) -> dict:
        """Body for `POST /api/v1/studies/` (seed "Publishing a batch"; API doc §6.1): the study fields, the
        passthrough extras, `data_collection_method: AI_TASK_BUILDER_BATCH`, `data_collection_id: batch_id`,
        `data_collection_metadata: {annotators_per_task}`. `internal_name` replaces the spec's (the flow adds the
        job key). reward in cents, times in minutes.
        """
        payload = self.study.model_dump(mode="json", exclude_none=True, exclude={"annotators_per_task"})
        payload["internal_name"] = internal_name
        payload["data_collection_method"] = "AI_TASK_BUILDER_BATCH"
        payload["data_collection_id"] = batch_id
        payload["data_collection_metadata"] = {"annotators_per_task": self.study.annotators_per_task}
        return payload


# ----------------------------------------------------------------------------------------------------------
# Error paths and hints

_TAGS = {"multiple_choice", "multiple_choice_with_free_text", "free_text", "free_text_with_unit", "file_upload",
         "rich_text", "image", "dataset_field"}


def _loc_to_path(loc: tuple) -> str:
    """('batch','instructions',1,'multiple_choice','options',2,'value') → 'batch.instructions[1].options[2].value'."""
    path = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in _TAGS:
            pass  # the discriminated union's tag, not a field
        else:
            path = f"{path}.{part}" if path else str(part)
        previous = part
    return path


def _field_info(loc: tuple):
    """The pydantic FieldInfo at `loc` (walking models, lists, optionals and tagged unions), or None."""
    model: Any = AnnotationJob
    info = None
    annotation: Any = None  # the annotation of the last field, still to be entered
    for part in loc:
        if isinstance(part, int):
            continue
        if annotation is not None:
            model = _model_in(annotation, part)
            annotation = None
            if model is None:
                return None
            if part in _TAGS and part not in model.model_fields:
                continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        annotation = info.annotation
    return info


def _model_in(annotation: Any, tag: str) -> Any:
    """The pydantic model inside `annotation` (list/Optional/Annotated/Union), choosing the union member by `tag`."""
    candidates = []
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            candidates.append(ann)
        elif get_origin(ann) is not None or get_args(ann):
            stack.extend(get_args(ann))
    if len(candidates) == 1:
        return candidates[0]
    for model in candidates:
        type_field = model.model_fields.get("type")
        if type_field is not None and tag in get_args(type_field.annotation):
            return model
    return None


def _closest(word: str, choices: list[str], cutoff: float = 0.75) -> str | None:
    """The choice that `word` most likely misspells (difflib ratio ≥ `cutoff`, case ignored), or None."""
    import difflib

    lowered = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[found[0]] if found else None


def _allowed_fields(loc: tuple) -> list[str]:
    """The field names allowed beside the last part of `loc` (the model that holds it), or []."""
    parent = _field_info(loc[:-1])
    model = AnnotationJob if len(loc) == 1 else (_model_in(parent.annotation, str(loc[-2])) if parent else None)
    return list(model.model_fields) if model is not None else []


def _message_for(error: dict) -> str:
    """Pydantic's message, reworded where it speaks pydantic: an unknown field, an unknown instruction type."""
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        near = _closest(str(loc[-1]), _allowed_fields(loc))
        return f"{loc[-1]} is not a field here" + (f"; did you mean {near}?" if near else "")
    if kind == "union_tag_invalid":
        tag = str((error.get("ctx") or {}).get("tag", ""))
        near = _closest(tag, sorted(_TAGS))
        return f"{tag!r} is not an instruction type" + (f"; did you mean {near}?" if near else "")
    return error["msg"]


def _hint_for(error: dict) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden" and "token" in str(loc[-1]).lower():
        return "the API token is never part of the spec: set PROLIFIC_API_TOKEN or name a Prefect Secret block in token_secret_block"
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_fields(loc))
        return f"remove it or fix its spelling; allowed here: {allowed}" if allowed else "remove it or fix its spelling"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "set type to one of: " + error.get("ctx", {}).get("expected_tags", ", ".join(sorted(_TAGS)))
    info = _field_info(loc)
    described = info.description if info is not None and info.description else ""
    if kind == "missing":
        return f"add it: {described}" if described else "add it"
    if kind == "string_type" and isinstance(error.get("input"), bool):
        return "YAML reads yes/no/true/false as booleans: put the text in quotes"
    return described
