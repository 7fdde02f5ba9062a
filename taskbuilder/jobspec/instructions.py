"""The instruction types of a batch (API doc §4.3; the seed's "Example" sections): what participants answer.

Used in the legacy `batch.instructions` list and on `batch_items` task pages (`taskbuilder/jobspec/layout.py`).
Each type checks its own rules (answer_limit against the options, distinct option values and labels, units,
file types) and reports every problem with its sub-path.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from taskbuilder.jobspec.base import NonBlank, SpecModel, duplicates, fail
from taskbuilder.jobspec.form_schema import FormChoice

CHOICE_TYPES = ("multiple_choice", "multiple_choice_with_free_text")


class ChoiceOption(SpecModel):
    """An option of a `multiple_choice` instruction (API doc §4.3)."""

    label: NonBlank = Field(description="Text shown to participants; the report's response cells hold labels.")
    value: NonBlank = Field(description="Value stored for the option; gold answers use values.")
    exclusive: bool | None = Field(default=None, description="Selecting it deselects the others (e.g. 'None of the above').")


class HeadedOption(SpecModel):
    """An option of a `multiple_choice_with_free_text` instruction: `heading` prompts the free-text box (§4.3)."""

    label: NonBlank = Field(description="Text shown to participants.")
    value: NonBlank = Field(description="Value stored for the option.")
    heading: NonBlank = Field(description="Prompt of the free-text box shown when this option is picked.")


class UnitValidation(SpecModel):
    """Number bounds of a unit of a `free_text_with_unit` instruction."""

    type: Literal["number"] = Field(default="number", description="Always 'number'.")
    min: float | None = Field(default=None, description="Smallest allowed number.")
    max: float | None = Field(default=None, description="Largest allowed number.")


class UnitOption(SpecModel):
    """A unit of a `free_text_with_unit` instruction (§4.3)."""

    label: NonBlank = Field(description="Unit shown to participants, e.g. 'cm'.")
    value: NonBlank = Field(description="Unit value stored with the answer.")
    validation: UnitValidation | None = Field(default=None, description="Optional number bounds for this unit.")


class TextValidation(SpecModel):
    """Length bounds of a `free_text` answer (§4.3)."""

    type: Literal["string"] = Field(default="string", description="Always 'string'.")
    min: int | None = Field(default=None, ge=0, description="Fewest characters.")
    max: int | None = Field(default=None, ge=1, description="Most characters.")

    @model_validator(mode="after")
    def _min_le_max(self) -> "TextValidation":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise fail([("max", f"max ({self.max}) is below min ({self.min})", "make max at least min")])
        return self


class _InstructionBase(SpecModel):
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
        for v, idx in duplicates([getattr(o, field) for o in options]).items():
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


class MultipleChoiceInstruction(_InstructionBase, title="Multiple choice"):
    """`multiple_choice`: pick options (§4.3; seed "Example: Sentiment classification")."""

    type: Literal["multiple_choice"] = Field(default="multiple_choice", description="Instruction type (`multiple_choice`).")
    options: list[ChoiceOption] = Field(min_length=1, description="The options, in display order.")
    answer_limit: int = Field(default=1, description="1 = single select, -1 = unlimited, or up to the number of options.")
    disable_dropdown: bool | None = Field(default=None, description="Render radio buttons/checkboxes even with 5 or more options.")

    @model_validator(mode="after")
    def _rules(self) -> "MultipleChoiceInstruction":
        problems = _check_answer_limit(self.answer_limit, len(self.options))
        problems += _check_options(self.options, labels_joined=self.answer_limit != 1)
        if problems:
            raise fail(problems)
        return self


class MultipleChoiceWithFreeTextInstruction(_InstructionBase, title="Multiple choice with free text"):
    """`multiple_choice_with_free_text`: pick options, each with a headed free-text box (§4.3)."""

    type: Literal["multiple_choice_with_free_text"] = Field(default="multiple_choice_with_free_text", description="Instruction type (`multiple_choice_with_free_text`).")
    options: list[HeadedOption] = Field(min_length=1, description="The options; each needs a heading.")
    answer_limit: int = Field(default=1, description="1 = single select, -1 = unlimited, or up to the number of options.")

    @model_validator(mode="after")
    def _rules(self) -> "MultipleChoiceWithFreeTextInstruction":
        problems = _check_answer_limit(self.answer_limit, len(self.options)) + _check_options(self.options, labels_joined=False)
        if problems:
            raise fail(problems)
        return self


class FreeTextInstruction(_InstructionBase, title="Free text"):
    """`free_text`: an open text answer (§4.3; seed "Example: Free text explanation")."""

    type: Literal["free_text"] = Field(default="free_text", description="Instruction type (`free_text`).")
    validation: TextValidation | None = Field(default=None, description="Optional answer length bounds.")


class FreeTextWithUnitInstruction(_InstructionBase, title="Number with unit"):
    """`free_text_with_unit`: a number with a unit picked from `unit_options` (§4.3)."""

    type: Literal["free_text_with_unit"] = Field(default="free_text_with_unit", description="Instruction type (`free_text_with_unit`).")
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
        for v, idx in duplicates(values).items():
            problems += [(f"unit_options[{i}].value", f"duplicate unit value {v!r}", "give every unit a distinct value")
                         for i in idx[1:]]
        if self.default_unit is not None and self.default_unit not in values:
            problems.append(("default_unit", f"default_unit {self.default_unit!r} is not a unit value",
                             f"use one of {values}"))
        if problems:
            raise fail(problems)
        return self


class FileUploadInstruction(_InstructionBase, title="File upload"):
    """`file_upload`: participants upload files (§4.3)."""

    type: Literal["file_upload"] = Field(default="file_upload", description="Instruction type (`file_upload`).")
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
            raise fail(problems)
        return self


INSTRUCTION_CHOICE = FormChoice("instruction", "Instruction")
"""An instruction in the launch form: `{instruction: {...}}` (see `taskbuilder.jobspec.form_schema`)."""
Instruction = Annotated[
    Union[MultipleChoiceInstruction, MultipleChoiceWithFreeTextInstruction, FreeTextInstruction,
          FreeTextWithUnitInstruction, FileUploadInstruction],
    Field(discriminator="type"),
    BeforeValidator(INSTRUCTION_CHOICE.unwrap),
    INSTRUCTION_CHOICE,
]
INSTRUCTION_CLASSES = (MultipleChoiceInstruction, MultipleChoiceWithFreeTextInstruction, FreeTextInstruction,
                       FreeTextWithUnitInstruction, FileUploadInstruction)
