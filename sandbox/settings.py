"""Sandbox settings (``GET``/``POST /_sandbox/settings``, ``--settings FILE.json``).

Not part of Prolific's API. Defaults take a 100-datapoint job with 3 annotators per task from upload
to a complete report in well under 30 seconds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Settings(BaseModel):
    """Every tunable of the sandbox; units are in the names. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    dataset_processing_seconds: float = Field(0.5, ge=0)
    """Time a dataset spends in PROCESSING after its upload."""
    batch_setup_seconds: float = Field(0.5, ge=0)
    """Time a batch spends in PROCESSING after setup."""
    participant_arrival_per_second: float = Field(25.0, gt=0)
    """Participants starting a submission per second on each ACTIVE study."""
    submission_seconds: float = Field(1.0, ge=0)
    """Time a participant takes for one submission (one task group)."""
    participant_pool_size: int = Field(500, ge=1)
    """Number of distinct simulated participants (24-hex ids derived from the seed)."""
    accuracy_mean: float = Field(0.8, ge=0.0, le=1.0)
    """Mean probability that a careful participant answers the gold instruction correctly."""
    accuracy_spread: float = Field(0.1, ge=0.0)
    """Standard deviation of per-participant accuracy around the mean (clipped to [0, 1])."""
    careless_share: float = Field(0.1, ge=0.0, le=1.0)
    """Share of participants who answer uniformly at random."""
    return_rate: float = Field(0.05, ge=0.0, le=1.0)
    """Probability that a started submission ends RETURNED (its place is freed)."""
    timeout_rate: float = Field(0.02, ge=0.0, le=1.0)
    """Probability that a started submission ends TIMED-OUT (its place is freed)."""
    gold_column: str = "META_gold"
    """Dataset column holding the correct option value of the first choice instruction."""
    sign_content_type: bool = False
    """When true, V3 upload URLs are signed for ``Content-Type: text/csv`` (V4 URLs always are, for their file type)."""
    v3_dataset_field_items: Literal["refused", "accepted"] = "refused"
    """``refused`` (as Prolific): ``dataset_field`` items on a batch with a V3 dataset → 422; ``accepted``: the
    seed-era sandbox's leniency, for clients not yet on V4 datasets."""
    legacy_instructions: Literal["active", "retired"] = "active"
    """``retired``: the legacy instructions endpoints answer 410 Gone."""
    report_delivery: Literal["pointer", "inline"] = "pointer"
    """``pointer``: the report endpoint answers a JSON pointer to a presigned CSV; ``inline``: the CSV."""
    webhook_attempts: int = Field(12, ge=1)
    """Delivery attempts per webhook event (now §6: up to 12), the first included."""
    webhook_retry_base_seconds: float = Field(0.5, ge=0)
    """Back-off before redelivery: a random wait up to base × 2^(attempt-1) (full jitter)."""
    webhook_retry_max_seconds: float = Field(30.0, ge=0)
    """Longest back-off before a redelivery."""
    seed: int = 0
    """Seed of every random choice (grouping, participants, answers, fault probabilities)."""
    upload_url_expires_seconds: int = Field(3600, ge=1)
    """Lifetime of a dataset upload URL."""
    report_url_expires_seconds: int = Field(3600, ge=1)
    """Lifetime of a report URL."""
    account_balance_cents: int = 10_000_000
    """The account's available balance in minor units; publishing a study debits its total_cost."""
    currency_code: str = "GBP"
    """Currency of rewards, costs and balance."""
    service_fee_percent: float = Field(33.33, ge=0)
    """Fee added to rewards in a study's total_cost (percent of the rewards)."""
    vat_percent: float = Field(0.0, ge=0)
    """VAT charged on the fee (percent of the fee, not of the rewards), added to a study's total_cost."""
    min_reward_per_hour_cents: int = Field(600, ge=0)
    """Reward recommendations' minimum per hour; a study paying less per hour ``is_underpaying``."""
    recommended_reward_per_hour_cents: int = Field(900, ge=0)
    """Reward recommendations' recommended reward per hour."""

    @model_validator(mode="after")
    def _rates_fit(self) -> "Settings":
        if self.return_rate + self.timeout_rate >= 1.0:
            raise ValueError("return_rate + timeout_rate must be below 1")
        return self
