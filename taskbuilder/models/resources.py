"""Pydantic models of Prolific's resources as the API returns them (``../shared/docs/prolific-api-current.md``).

Field names are the API's. Every model keeps unknown server fields (``extra="allow"``), so a newer
server adds fields without breaking parsing, and validation errors never echo their input
(``hide_input_in_errors=True``: a report URL in an input would carry its signature). These are the
client's models: only what the client relies on is required. The fields the facts mark required are
checked by the contract's stricter models (:mod:`taskbuilder.models.contract`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from taskbuilder.models.statuses import (
    BatchStatusField,
    DatasetStatusField,
    ImportStatusField,
    StudyStatusField,
    SubmissionStatusField,
)
from taskbuilder.redact import redact_url


class ProlificModel(BaseModel):
    """Base of all resource models: unknown fields kept, inputs hidden from validation errors."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    @property
    def error_reason(self) -> str | None:
        """The server's explanation of an ERROR status (datasets, batches), if it sent one. The field
        name is not documented (§10); the first non-empty of ``reason``, ``error``,
        ``error_message``, ``status_reason``, ``failure_reason`` among the received fields is used [G]."""
        extra = self.model_extra or {}
        for name in ("reason", "error", "error_message", "status_reason", "failure_reason"):
            if extra.get(name):
                return str(extra[name])
        return None


class User(ProlificModel):
    """``GET /api/v1/users/me/`` (``../shared/docs/prolific-api.md`` §7; not in the current facts). ``balance``/``available_balance`` in minor units."""

    id: str
    name: str | None = None
    email: str | None = None
    currency_code: str | None = None
    balance: int | None = None
    available_balance: int | None = None


class Workspace(ProlificModel):
    """An item of ``GET /api/v1/workspaces/`` (``../shared/docs/prolific-api.md`` §7; not in the current facts)."""

    id: str
    title: str | None = None
    description: str | None = None


class WorkspaceBalance(ProlificModel):
    """``GET /api/v1/workspaces/{id}/balance/`` (``../shared/docs/prolific-api.md`` §7; not in the current facts); amounts are integers in minor units
    (pence/cents); breakdowns are ``{"rewards", "fees", "vat"}``."""

    currency_code: str | None = None
    total_balance: int | None = None
    available_balance: int | None = None
    balance_breakdown: dict[str, int] | None = None
    available_balance_breakdown: dict[str, int] | None = None


class Project(ProlificModel):
    """An item of ``GET /api/v1/workspaces/{id}/projects/`` (``../shared/docs/prolific-api.md`` §7; not in the current facts)."""

    id: str
    title: str | None = None
    description: str | None = None
    workspace: str | None = None


class SchemaField(ProlificModel):
    """One field of a V4 dataset schema (§1.1): ``type`` is ``text``, ``image_url``, ``audio_url``,
    ``video_url``, ``metadata`` or ``task_group_id``; ``label`` an optional display label."""

    type: str
    label: str | None = None


class DatasetSchema(ProlificModel):
    """A V4 dataset schema (§1.1): ``fields`` maps a field name (a CSV column or JSONL key) to its
    :class:`SchemaField`; ``strict`` rejects records missing a schema field."""

    strict: bool = False
    fields: dict[str, SchemaField]


class ImportRecordError(ProlificModel):
    """One rejected record of an import job (§1.6 ``errors[]``): ``record_index`` zero-based."""

    record_index: int
    field: str | None = None
    reason: str | None = None


class ImportJob(ProlificModel):
    """A V4 dataset's import job, ``GET …/datasets/{dataset_id}/imports/{import_id}`` (§1.6).

    ``accepted_count`` is set when ``complete`` or ``partial``; ``rejected_count`` and ``errors`` when
    ``partial``; ``reason`` when ``failed``.
    """

    import_id: str
    dataset_id: str | None = None
    status: ImportStatusField
    type: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    accepted_count: int | None = None
    rejected_count: int | None = None
    errors: list[ImportRecordError] | None = None
    reason: str | None = None


class Dataset(ProlificModel):
    """A dataset (§1.1, §1.2). V3: ``status``, ``filename``, ``has_predetermined_grouping_id``. V4
    (``schema_version`` 4): ``dataset_schema`` (the API's ``schema``) and ``imports`` (most recent first).
    ``total_datapoint_count`` is the number of datapoints after processing."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True, populate_by_name=True)

    id: str
    name: str | None = None
    status: DatasetStatusField | None = None
    total_datapoint_count: int | None = None
    workspace_id: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    filename: str | None = None
    has_predetermined_grouping_id: bool | None = None
    schema_version: int | None = None
    dataset_schema: DatasetSchema | None = Field(default=None, alias="schema")
    imports: list[ImportJob] | None = None


class UploadURL(ProlificModel):
    """``GET /api/v1/data-collection/datasets/{id}/upload-url/{filename}`` (§1.4).

    ``upload_url`` is a presigned S3 URL whose query string is a credential: ``repr()``/``str()`` show it
    redacted; use the attribute only to upload. ``http_method`` is ``"PUT"``. V4 adds ``import_id`` (poll
    it, §1.6), ``content_type`` (send it as the PUT's ``Content-Type``, §1.5) and ``file_key``.
    """

    upload_url: str
    expires_at: datetime | None = None
    http_method: str = "PUT"
    dataset_id: str | None = None
    import_id: str | None = None
    content_type: str | None = None
    file_key: str | None = None

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "upload_url" else value


class Batch(ProlificModel):
    """A batch (§2.1). ``total_task_count``/``total_task_groups`` are set after setup;
    ``datasets`` holds the attached dataset(s); ``batch_items`` is the page layout of §3 or ``None``
    for a legacy-instructions batch."""

    id: str
    name: str | None = None
    status: BatchStatusField | None = None
    workspace_id: str | None = None
    dataset_id: str | None = None
    datasets: list[Dataset] | None = None
    total_task_count: int | None = None
    total_task_groups: int | None = None
    total_instruction_count: int | None = None
    tasks_per_group: int | None = None
    task_details: dict[str, Any] | None = None
    batch_items: list[Any] | None = None
    schema_version: int | None = None
    created_at: datetime | None = None


class Instruction(ProlificModel):
    """A legacy instruction (§4): loose on purpose, the type-specific fields (``options``,
    ``answer_limit``, ``unit_options``…) are kept as they come."""

    id: str | None = None
    type: str
    description: str | None = None
    order: int | None = None
    batch_id: str | None = None
    created_by: str | None = None


class Study(ProlificModel):
    """A study (§5.1). ``reward`` is an integer in minor units (cents/pence) per place;
    ``data_collection_id`` is the batch id for ``AI_TASK_BUILDER_BATCH`` studies."""

    id: str
    name: str | None = None
    internal_name: str | None = None
    status: StudyStatusField | None = None
    total_available_places: int | None = None
    places_taken: int | None = None
    reward: int | None = None
    currency_code: str | None = None
    total_cost: int | None = None
    data_collection_method: str | None = None
    data_collection_id: str | None = None
    data_collection_metadata: dict[str, Any] | None = None
    published_at: datetime | None = None
    project: str | None = None


class Money(ProlificModel):
    """An amount of the study cost (§5.5): ``amount`` in minor units (cents) of ``currency``."""

    amount: float
    currency: str | None = None


class CostBreakdown(ProlificModel):
    """One part of a study's cost (§5.5): ``rewards``, ``fees`` and ``tax``, each :class:`Money`."""

    rewards: Money | None = None
    fees: Money | None = None
    tax: Money | None = None

    def total(self) -> float | None:
        """rewards + fees + tax in minor units, or ``None`` when any part is missing (an incomplete cost)."""
        parts = (self.rewards, self.fees, self.tax)
        if any(part is None for part in parts):
            return None
        return sum(part.amount for part in parts)  # type: ignore[union-attr]


class StudyCost(ProlificModel):
    """``GET /api/v1/studies/{id}/cost/`` (§5.5): ``rewards`` and ``bonuses``, each a
    :class:`CostBreakdown` or ``None``; amounts in minor units."""

    rewards: CostBreakdown | None = None
    bonuses: CostBreakdown | None = None


class CalculatedCost(ProlificModel):
    """``POST /api/v1/study-cost-calculator/`` (§5.6): ``total_cost`` in minor units (cents), VAT and
    fees included at the account's rates."""

    total_cost: float


class RewardRecommendation(ProlificModel):
    """One entry of ``GET /api/v1/reward-recommendations/`` (§12): hourly rates in the currency's minor units."""

    currency: str | None = None
    min_reward_per_hour: int
    recommended_reward_per_hour: int


class TestStudy(ProlificModel):
    """``POST /api/v1/studies/{id}/test-study`` (§5.9): the test study made of a draft, ``study_id`` and
    ``study_url`` (where a test participant takes the task), each possibly ``None``."""

    study_id: str | None = None
    study_url: str | None = None


class Submission(ProlificModel):
    """A submission (§5.7). ``time_taken`` in seconds [G]; ``reward`` in minor units."""

    id: str
    participant_id: str | None = None
    status: SubmissionStatusField | None = None
    study_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    is_complete: bool | None = None
    time_taken: int | None = None
    reward: int | None = None


class BonusPayment(ProlificModel):
    """A bulk bonus payment, as ``POST /api/v1/submissions/bonus-payments/`` answers it (§7, "Bonus created"):
    ``id`` (to pay it with), ``study``, and ``amount``, ``fees``, ``vat``, ``total_amount`` in minor units
    (``total_amount`` is what paying deducts from the balance)."""

    id: str
    study: str | None = None
    amount: float | None = None
    fees: float | None = None
    vat: float | None = None
    total_amount: float | None = None


class ReportLocation(ProlificModel):
    """Where a batch report is (``GET /api/v1/data-collection/batches/{id}/report/``, §2.7).

    Exactly one of: ``url`` (presigned GET, with ``expires_at`` and ``http_method``), or ``csv_text``
    (the CSV delivered inline with ``Content-Type: text/csv``, e.g. by the sandbox's inline setting).
    ``repr()``/``str()`` redact the URL and show only the length of inline CSV.
    """

    url: str | None = None
    expires_at: datetime | None = None
    http_method: str | None = None
    csv_text: str | None = None

    @model_validator(mode="after")
    def _one_location(self) -> ReportLocation:
        if (self.url is None) == (self.csv_text is None):
            raise ValueError("a report location needs exactly one of 'url' and 'csv_text'")
        return self

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "url" and value is not None:
                yield name, redact_url(value)
            elif name == "csv_text" and value is not None:
                yield name, f"<{len(value)} characters>"
            else:
                yield name, value


class HookSecret(ProlificModel):
    """A workspace's webhook signing secret (``/api/v1/hooks/secrets/``, §6). ``value`` is the
    HMAC-SHA256 key of the deliveries' ``X-Prolific-Request-Signature``: a ``SecretStr``."""

    id: str
    value: SecretStr
    workspace_id: str | None = None


class HookSubscription(ProlificModel):
    """A webhook subscription (``/api/v1/hooks/subscriptions/``, §6). ``hook_secret`` is the
    one-time ``X-Hook-Secret`` handshake value of the creation answer (``None`` elsewhere); post it back
    with :meth:`taskbuilder.client.ProlificClient.confirm_hook_subscription` to enable the subscription."""

    id: str
    event_type: str | None = None
    target_url: str | None = None
    is_enabled: bool | None = None
    workspace_id: str | None = None
    hook_secret: SecretStr | None = None
