"""The study part of the job spec (`StudySpec`; seed "Publishing a batch", API doc §6.1): title, reward in
cents, times in whole minutes, annotators per task, and any other documented study field passed through.
A key close to a known study field is refused as a typo; an unknown one passes with a warning.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from taskbuilder.jobspec.base import NonBlank, positive_whole_number, raw_number, validate_with_raw_checks
from taskbuilder.jobspec.hints import closest

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
            problems += [(key, f"{key} is not a study field; it looks like a misspelling of {near!r}",
                          f"write {near}: a misspelled field would be sent to Prolific as is while {near} kept its "
                          "default") for key, near in misspelled_study_fields(data)]
            estimated, maximum = raw_number(data.get("estimated_completion_time")), raw_number(data.get("maximum_allowed_time"))
            if estimated is not None and maximum is not None and maximum < estimated:
                problems.append(("maximum_allowed_time", f"maximum_allowed_time {maximum} is below "
                                 f"estimated_completion_time {estimated}",
                                 "make maximum_allowed_time at least estimated_completion_time (minutes)"))
        return validate_with_raw_checks(handler, data, problems, cls.__name__)


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
