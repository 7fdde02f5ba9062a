"""The study part of the job spec (`StudySpec`; seed "Publishing a batch", API doc §6.1): title, reward in
cents, times in whole minutes, annotators per task, and any other documented study field passed through.
A key close to a known study field is refused as a typo; an unknown one passes with a warning.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from taskbuilder.jobspec.base import NonBlank, fail, positive_whole_number, raw_number, validate_with_raw_checks
from taskbuilder.jobspec.form_schema import form_default
from taskbuilder.jobspec.completion_codes import CompletionCode, check_completion_codes, read_only_problems
from taskbuilder.jobspec.hints import closest
from taskbuilder.jobspec.run_control import RUN_CONTROL_FIELDS

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
# Pass-through study fields the API takes as text (API doc §5.1): an unquoted value YAML would type (a
# number, a date) keeps the characters written. `filters[].selected_values` are ids, also text.
TEXT_STUDY_FIELDS = frozenset({
    "external_study_url", "prolific_id_option", "completion_option", "completion_code", "study_type", "filter_set_id",
    "project", "credential_pool_id", "access_details_collection_id", "publish_at", "currency_code",
    "presentment_currency_code", "study_labels", "device_compatibility", "peripheral_requirements",
})
# Top-level fields of the spec that a study mapping may hold by mistake (indented under `study:`): refused,
# since there they would be sent to Prolific while the top-level field kept its default (publish, max_budget).
TOP_LEVEL_FIELDS = (RUN_CONTROL_FIELDS | {"workspace_id", "project_id", "dataset", "batch"}) - {"name"}


def is_study_text_field(path: tuple) -> bool:
    """True for a path (spec keys and list positions) inside a pass-through study field the API takes as text."""
    if len(path) < 2 or path[0] != "study":
        return False
    if path[1] in TEXT_STUDY_FIELDS:
        return True
    return path[1] == "filters" and len(path) >= 4 and path[3] in ("filter_id", "selected_values")


class StudySpec(BaseModel):
    """The Prolific study that runs the batch (seed "Publishing a batch"; API doc §6.1).

    Any other study field the API documents (filters, device_compatibility, total_available_places,
    project, submissions_config, ...) passes through unchanged.
    """

    model_config = ConfigDict(extra="allow", validate_default=True)

    name: NonBlank = Field(description="Study title shown to participants.")
    internal_name: str | None = Field(
        default=None, description="Name seen only by you; the job key is appended as ` [job:<key> work:<12 hex>]`.")
    description: str = Field(default="", description="Participant-facing description (basic HTML).")
    reward: int = Field(description="Reward per submission in cents/pence (minor units), a whole number: 300 = £3.00.")
    estimated_completion_time: int = Field(description="Estimated minutes per submission (whole minutes).")
    maximum_allowed_time: int | None = Field(
        default=None, description="Time limit in whole minutes (≥ estimated_completion_time).")
    annotators_per_task: int = Field(
        default=1, json_schema_extra=form_default(3),
        description="Participants per datapoint (data_collection_metadata.annotators_per_task). The form proposes 3; "
                    "a spec file that leaves it out gets 1.")
    completion_codes: list[CompletionCode] | None = Field(
        default=None, description="Completion codes, each a code, its type and its actions (API doc §5.1); empty = "
                                  "Prolific's default (COMPLETED, MANUALLY_REVIEW).")

    @field_validator("reward", mode="before")
    @classmethod
    def _reward_cents(cls, value: Any) -> Any:
        return positive_whole_number(value, "reward", "reward is in cents: write 150 for £1.50",
                                     "reward is in cents and must be positive: write 150 for £1.50")

    @field_validator("estimated_completion_time", "maximum_allowed_time", mode="before")
    @classmethod
    def _whole_minutes(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        what = info.field_name
        return positive_whole_number(value, what, f"{what} is in whole minutes, e.g. 15", "write 1 minute or more")

    @field_validator("annotators_per_task", mode="before")
    @classmethod
    def _annotators(cls, value: Any) -> Any:
        return positive_whole_number(value, "annotators_per_task", "write a whole number of participants, 1 or more",
                                     "write 1 or more")

    @model_validator(mode="wrap")
    @classmethod
    def _rules(cls, data: Any, handler: Any) -> "StudySpec":
        problems: list[tuple[str, str, str]] = []
        if isinstance(data, dict):
            problems += [(key, f"{key} is set by taskbuilder", "remove it; set study.annotators_per_task for "
                          "data_collection_metadata") for key in FLOW_SET_STUDY_FIELDS if key in data]
            problems += read_only_problems(data)
            problems += [(key, f"{key} is a top-level field of the spec, not a study field",
                          f"move it to the top level (not indented under study:); under study it would be sent to "
                          f"Prolific while the job's own {key} kept its default") for key in data if key in TOP_LEVEL_FIELDS]
            problems += [(key, f"{key} is not a study field; it looks like a misspelling of {near!r}",
                          f"write {near}: a misspelled field would be sent to Prolific as is while {near} kept its "
                          "default") for key, near in misspelled_study_fields(data) if key not in TOP_LEVEL_FIELDS]
            estimated, maximum = raw_number(data.get("estimated_completion_time")), raw_number(data.get("maximum_allowed_time"))
            if estimated is not None and maximum is not None and maximum < estimated:
                problems.append(("maximum_allowed_time", f"maximum_allowed_time {maximum} is below "
                                 f"estimated_completion_time {estimated}",
                                 "make maximum_allowed_time at least estimated_completion_time (minutes)"))
        return validate_with_raw_checks(handler, data, problems, cls.__name__)

    @model_validator(mode="after")
    def _completion_codes(self) -> "StudySpec":
        problems = [(f"completion_codes{sub}", message, hint)
                    for sub, message, hint in check_completion_codes(self.completion_codes or [])] if self.completion_codes else []
        if problems:
            raise fail(problems)
        return self


def known_study_fields() -> set[str]:
    """StudySpec's fields, the other study fields the API documents, and the ones the flow sets."""
    return set(StudySpec.model_fields) | DOCUMENTED_STUDY_FIELDS | set(FLOW_SET_STUDY_FIELDS)


def misspelled_study_fields(data: dict) -> list[tuple[str, str]]:
    """(key, known field it is close to) for each key of a study mapping that is not a known study field but
    reads like one (difflib ratio ≥ 0.8, case and `-`/space ignored), e.g. `annotator_per_task`."""
    known = known_study_fields()
    found = []
    for key in data:
        if not isinstance(key, str) or key in known:
            continue
        near = closest(key.strip().replace("-", "_").replace(" ", "_"), sorted(known), cutoff=0.8)
        if near is not None:
            found.append((key, near))
    return found
