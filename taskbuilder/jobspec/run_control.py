"""Money and run control (`RunControl`): the spec's top-level fields that steer a run rather than define the
annotation work: publish, max_budget (cents), the retired fee and VAT rates, the hourly-reward warning
threshold (cents), approval, waiting and the study deadline (minutes), the output folder, the token's Secret block, bulk approval and the
quality thresholds.

`RUN_CONTROL_FIELDS` (these and the job `name`) stay out of the derived job key, so re-running a job with
`publish: true` finds the resources the first run created.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator
from pydantic.json_schema import SkipJsonSchema

from taskbuilder.jobspec.base import SpecModel, resolve_path
from taskbuilder.jobspec.payments import PAYMENT_FIELDS


class RunControl(SpecModel):
    """The run's limits and switches; `AnnotationJob` holds them at the top level of the spec."""

    publish: bool = Field(default=False, description="Publish the study (spends money) only when true.")
    max_budget: int = Field(
        default=20_000, ge=0,
        description="Largest total cost in cents, fees and VAT included, as the account prices it (its cost calculator "
                    "before anything is created, the draft study's own cost before publishing); above it nothing is "
                    "created, or the study is not published.")
    fee_rate: SkipJsonSchema[float | None] = Field(
        default=None, ge=0, lt=1,
        description="No longer used (the account's cost calculator prices the job); accepted so older specs load, "
                    "with a warning.")
    vat_rate: SkipJsonSchema[float | None] = Field(
        default=None, ge=0, lt=1, description="No longer used (see fee_rate); accepted with a warning.")
    min_hourly_reward_cents: int = Field(default=800, ge=0, description="Warn when reward per hour (cents) is below this.")
    require_approval: bool = Field(default=False, description="Pause for a human approval in Prefect before publishing.")
    # wait_for_completion and output_dir are also parameters of the flow (a deployment launches with
    # wait_for_completion false): the launch form shows them there only, once each (SkipJsonSchema).
    wait_for_completion: SkipJsonSchema[bool] = Field(
        default=True, description="Wait for the study to finish and collect the report.")
    study_deadline_minutes: int = Field(
        default=7 * 24 * 60, ge=1,
        description="How long a run waits for the study to finish, in minutes (10080 = 7 days); then it stops waiting "
                    "and says so. The study keeps running on Prolific; a re-run resumes the wait. CLI: "
                    "--study-deadline-minutes.")
    output_dir: SkipJsonSchema[str] = Field(
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
        return resolve_path(value, info)


FORM_HIDDEN_FIELDS = ("fee_rate", "vat_rate", "wait_for_completion", "output_dir")
"""Spec fields the launch form leaves out: the retired rates, and the two that are flow parameters too."""

# The job `name` steers the run too: given, it is the job key itself; paying (`bonus`, `reject`) is run control too.
RUN_CONTROL_FIELDS = frozenset({"name", *RunControl.model_fields, *PAYMENT_FIELDS})
