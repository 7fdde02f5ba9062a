"""Money and run control (`RunControl`): the spec's top-level fields that steer a run rather than define the
annotation work: publish, max_budget (cents), the assumed fee and VAT rates, the hourly-reward warning
threshold (cents), approval, waiting, the output folder, the token's Secret block, bulk approval and the
quality thresholds.

`RUN_CONTROL_FIELDS` (these and the job `name`) stay out of the derived job key, so re-running a job with
`publish: true` finds the resources the first run created.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from taskbuilder.jobspec.base import SpecModel, resolve_path


class RunControl(SpecModel):
    """The run's limits and switches; `AnnotationJob` holds them at the top level of the spec."""

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
        return resolve_path(value, info)


# The job `name` steers the run too: given, it is the job key itself.
RUN_CONTROL_FIELDS = frozenset({"name", *RunControl.model_fields})
