"""The batch's layout (`BatchSpec`): task details, and either the seed's legacy `instructions` list or
`batch_items` pages → rows → columns → items (API doc §12) holding instructions, content blocks and
`dataset_field` references; plus task grouping (`tasks_per_group`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator

from taskbuilder.jobspec.base import (
    NonBlank,
    SpecModel,
    duplicates,
    fail,
    positive_whole_number,
    raw_number,
    validate_with_raw_checks,
)
from taskbuilder.jobspec.instructions import (
    INSTRUCTION_CHOICE,
    INSTRUCTION_CLASSES,
    FileUploadInstruction,
    FreeTextInstruction,
    FreeTextWithUnitInstruction,
    Instruction,
    MultipleChoiceInstruction,
    MultipleChoiceWithFreeTextInstruction,
)
from taskbuilder.jobspec.form_schema import FormChoice, form_default


class RichTextBlock(SpecModel, title="Text block"):
    """Content block: HTML text (`batch_items`, §12)."""

    type: Literal["rich_text"] = Field(default="rich_text", description="Content block type (`rich_text`).")
    content: NonBlank = Field(description="HTML content, e.g. `<p>Read the review.</p>`.")
    content_format: str | None = Field(default=None, description="Optional content format, passed through.")


class ImageBlock(SpecModel, title="Image"):
    """Content block: an image (`batch_items`, §12)."""

    type: Literal["image"] = Field(default="image", description="Content block type (`image`).")
    url: NonBlank = Field(description="Image URL.")
    alt_text: str | None = Field(default=None, description="Alternative text.")
    caption: str | None = Field(default=None, description="Caption shown under the image.")


class DatasetFieldRef(SpecModel, title="Dataset column"):
    """Places a dataset column on the page (`batch_items`, §12)."""

    type: Literal["dataset_field"] = Field(default="dataset_field", description="Item type (`dataset_field`).")
    field: NonBlank = Field(description="Dataset column name; the CSV must have it.")


BATCH_ITEM_CHOICE = FormChoice("item", "Item")
"""A batch_items item in the launch form: `{item: {...}}` (see `taskbuilder.jobspec.form_schema`)."""
BatchItem = Annotated[
    Union[MultipleChoiceInstruction, MultipleChoiceWithFreeTextInstruction, FreeTextInstruction,
          FreeTextWithUnitInstruction, FileUploadInstruction, RichTextBlock, ImageBlock, DatasetFieldRef],
    Field(discriminator="type"),
    BeforeValidator(BATCH_ITEM_CHOICE.unwrap),
    BATCH_ITEM_CHOICE,
]


class BatchItemsColumn(SpecModel):
    """A column of a row: its `items` in display order."""

    items: list[BatchItem] = Field(min_length=1, description="Instructions, content blocks or dataset_field references.")

    @model_validator(mode="wrap")
    @classmethod
    def _no_order(cls, data: Any, handler: Any) -> "BatchItemsColumn":
        items = data.get("items") if isinstance(data, dict) else None
        items = [BATCH_ITEM_CHOICE.unwrap(item) for item in items] if isinstance(items, list) else []
        problems = [(f"items[{i}].order", "order is not used in batch_items", "remove it: an item's position is its order")
                    for i, item in enumerate(items)
                    if isinstance(item, dict) and item.get("order") is not None]
        return validate_with_raw_checks(handler, data, problems, cls.__name__)


class BatchItemsRow(SpecModel):
    """A row of a page: its `columns` side by side."""

    columns: list[BatchItemsColumn] = Field(min_length=1, description="Columns of the row.")


class BatchItemsPage(SpecModel):
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
            raise fail(problems)
        return self


class TaskDetails(SpecModel):
    """Context shown to participants (seed, "Task details"); basic HTML allowed."""

    task_name: NonBlank = Field(description="Title displayed to participants.")
    task_introduction: str = Field(default="", description="Introduction or general guidance (basic HTML).")
    task_steps: str = Field(default="", description="Steps participants should follow (basic HTML).")


class BatchSpec(SpecModel):
    """The batch: task details, instructions (legacy) or batch_items (current), task grouping."""

    name: NonBlank = Field(description="Batch name; the job key is appended as ` [job:<key> work:<12 hex>]`.")
    task_details: TaskDetails | None = Field(
        default=None, description="Task name, introduction and steps shown to participants.")
    tasks_per_group: int = Field(
        default=1, json_schema_extra=form_default(5),
        description="Tasks per task group (one submission); ignored when the CSV has META_TASK_GROUP_ID. The form "
                    "proposes the seed's 5; a spec file that leaves it out gets 1.")
    instructions: list[Instruction] | None = Field(
        default=None, description="Instructions in the seed's layout (legacy endpoint). Give this or batch_items.")
    batch_items: list[BatchItemsPage] | None = Field(
        default=None, description="Pages → rows → columns → items (API doc §12). Give this or instructions.")

    @field_validator("tasks_per_group", mode="before")
    @classmethod
    def _tasks_per_group(cls, value: Any) -> Any:
        return positive_whole_number(value, "tasks_per_group", "write a whole number of tasks, 1 or more", "write 1 or more")

    @field_validator("instructions")
    @classmethod
    def _default_orders(cls, instructions: list | None) -> list | None:
        if instructions is not None and not instructions:
            raise fail([("", "no instructions", "add at least one instruction")])
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
            raise fail([("", "no instruction on a task page",
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
                raw = [INSTRUCTION_CHOICE.unwrap(item) for item in raw]
                orders = [raw_number(item.get("order", i + 1)) if isinstance(item, dict) else None for i, item in enumerate(raw)]
                problems += [(f"instructions[{i}].order", f"order {o} is also used by instructions[{idx[0]}]",
                              "give every instruction a distinct order")
                             for o, idx in duplicates(orders).items() if o is not None for i in idx[1:]]
        return validate_with_raw_checks(handler, data, problems, cls.__name__)

    def ordered_instructions(self) -> list:
        """The instructions in participant order: legacy by `order`, batch_items by position on task pages."""
        if self.instructions is not None:
            return sorted(self.instructions, key=lambda ins: ins.order)
        return [item for p in self.batch_items or [] if p.display_position is None
                for _, item in p.items() if isinstance(item, INSTRUCTION_CLASSES)]
