"""Request bodies the client sends, typed from ``../shared/docs/prolific-api-current.md`` (the § in each).

The client builds its JSON bodies through these models (``body(...)``), so a field-name slip fails here,
and the contract test validates each recorded request body against the same models. Unknown fields are
allowed (a study passes the spec's extra fields through as written); required fields and types are the
facts'. ``body()`` drops ``None`` values: an optional field the caller did not give is not sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskbuilder.jobspec.payments import REJECTION_CATEGORIES, REJECTION_MESSAGE_MIN_CHARS

SchemaFieldType = Literal["text", "image_url", "audio_url", "video_url", "metadata", "task_group_id"]
"""The V4 schema field types (§1.1)."""
DISPLAYED_FIELD_TYPES = ("text", "image_url", "audio_url", "video_url")
"""Schema field types shown to participants; only these may be a ``dataset_field`` item (§3.3)."""


class RequestModel(BaseModel):
    """Base of the request bodies: unknown fields allowed, inputs hidden from validation errors."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True, populate_by_name=True)

    def body(self) -> dict[str, Any]:
        """The JSON body: the API's field names, ``None`` values left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SchemaFieldRequest(RequestModel):
    """A schema field (§1.1): ``type`` one of :data:`SchemaFieldType`; ``label`` optional."""

    type: SchemaFieldType
    label: str | None = None


class DatasetSchemaRequest(RequestModel):
    """A V4 schema (§1.1): at least one field, at most one ``task_group_id``; ``strict`` always sent."""

    strict: bool = False
    fields: dict[str, SchemaFieldRequest] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_group_field(self) -> DatasetSchemaRequest:
        groups = [name for name, spec in self.fields.items() if spec.type == "task_group_id"]
        if len(groups) > 1:
            raise ValueError(f"at most one task_group_id field, got {groups}")
        return self


class CreateDatasetRequest(RequestModel):
    """``POST /api/v1/data-collection/datasets`` (§1.1): with ``schema`` a V4 dataset, without a V3 one."""

    name: str = Field(min_length=1)
    workspace_id: str = Field(min_length=1)
    dataset_schema: DatasetSchemaRequest | None = Field(default=None, alias="schema")


class TaskDetailsRequest(RequestModel):
    """``task_details`` of a batch (§2.2): all three fields required when the object is sent."""

    task_name: str
    task_introduction: str
    task_steps: str


class CreateBatchRequest(RequestModel):
    """``POST /api/v1/data-collection/batches`` (§2.2)."""

    name: str = Field(min_length=1)
    workspace_id: str = Field(min_length=1)
    task_details: TaskDetailsRequest | None = None
    dataset_id: str | None = None
    batch_items: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    auto_sync_enabled: bool | None = None


class UpdateBatchRequest(RequestModel):
    """``PATCH /api/v1/data-collection/batches/{batch_id}`` (§2.4): every field optional."""

    name: str | None = None
    task_details: TaskDetailsRequest | None = None
    dataset_id: str | None = None
    batch_items: list[dict[str, Any]] | None = None
    auto_sync_enabled: bool | None = None


class SetupBatchRequest(RequestModel):
    """``POST /api/v1/data-collection/batches/{batch_id}/setup`` (§2.6)."""

    dataset_id: str | None = None
    tasks_per_group: int | None = Field(default=None, ge=1)


class InstructionsRequest(RequestModel):
    """``POST``/``PUT …/batches/{batch_id}/instructions`` (§4, legacy): ``instructions`` required."""

    instructions: list[dict[str, Any]]


class CreateStudyRequest(RequestModel):
    """``POST /api/v1/studies/`` (§5.1) for a Task Builder batch. ``reward`` in cents; times in minutes;
    ``data_collection_id`` (the batch id) required with a Task Builder ``data_collection_method``."""

    name: str = Field(min_length=1)
    internal_name: str | None = None
    description: str | None = None
    reward: int = Field(ge=0)
    estimated_completion_time: int | None = Field(default=None, ge=1)
    maximum_allowed_time: int | None = None
    total_available_places: int | None = Field(default=None, ge=1)
    data_collection_method: str | None = None
    data_collection_id: str | None = None
    data_collection_metadata: dict[str, Any] | None = None
    completion_codes: list[dict[str, Any]] | None = None
    project: str | None = None

    @model_validator(mode="after")
    def _batch_linked(self) -> CreateStudyRequest:
        method = self.data_collection_method or ""
        if method.startswith("AI_TASK_BUILDER") or method == "DC_TOOL":
            if not self.data_collection_id:
                raise ValueError(f"data_collection_id is required with data_collection_method {method}")
        return self


class TransitionStudyRequest(RequestModel):
    """``POST /api/v1/studies/{id}/transition/`` (§5.4): ``action`` PUBLISH, START, PAUSE or STOP."""

    action: Literal["PUBLISH", "START", "PAUSE", "STOP"]


class StudyCostRequest(RequestModel):
    """``POST /api/v1/study-cost-calculator/`` (§5.6): ``reward`` in cents per place, places; both required."""

    reward: float = Field(ge=0)
    total_available_places: float = Field(ge=0)


class BulkApproveRequest(RequestModel):
    """``POST /api/v1/submissions/bulk-approve/`` (§5.7): the ``submission_ids`` form."""

    submission_ids: list[str] = Field(min_length=1)


class TransitionSubmissionRequest(RequestModel):
    """``POST /api/v1/submissions/{id}/transition/`` (§5.7): ``action``; a REJECT needs ``message`` (≥ 100
    characters) and ``rejection_category``."""

    action: Literal["APPROVE", "REJECT"]
    message: str | None = None
    rejection_category: Literal[REJECTION_CATEGORIES] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _reject_reason(self) -> TransitionSubmissionRequest:
        if self.action == "REJECT" and (len(self.message or "") < REJECTION_MESSAGE_MIN_CHARS or not self.rejection_category):
            raise ValueError(f"REJECT needs a message of at least {REJECTION_MESSAGE_MIN_CHARS} characters and a rejection_category")
        return self


class CreateBonusPaymentsRequest(RequestModel):
    """``POST /api/v1/submissions/bonus-payments/`` (§7): ``study_id`` and ``csv_bonuses``
    (``<participant_id>,<amount>`` lines, amounts decimals in the study's currency, major units)."""

    study_id: str = Field(min_length=1)
    csv_bonuses: str = Field(min_length=1)


class CreateHookSecretRequest(RequestModel):
    """``POST /api/v1/hooks/secrets/`` (§6)."""

    workspace_id: str


class CreateSubscriptionRequest(RequestModel):
    """``POST /api/v1/hooks/subscriptions/`` (§6): all three required."""

    event_type: str
    target_url: str
    workspace_id: str


class ConfirmSubscriptionRequest(RequestModel):
    """``POST /api/v1/hooks/subscriptions/{id}/`` (§6): the ``X-Hook-Secret`` of the creation answer."""

    secret: str
