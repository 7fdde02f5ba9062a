"""Pydantic models of Prolific's resources as the API returns them (API doc §2–§7).

Field names are the API's. Every model keeps unknown server fields (``extra="allow"``), so a newer
server adds fields without breaking parsing, and validation errors never echo their input
(``hide_input_in_errors=True``: a report URL in an input would carry its signature).

Statuses are ``enum.StrEnum``s (members compare equal to the server's strings). A status string the
enum does not know is kept as a plain ``str`` instead of failing validation (fields typed
``XStatus | str``, tried left to right); code that needs an enum helper such as ``is_terminal`` should
check ``isinstance(status, XStatus)`` first, or use :func:`parse_status`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from taskbuilder.redact import redact_url

E = TypeVar("E", bound=enum.StrEnum)


def parse_status(enum_cls: type[E], value: str) -> E | str:
    """Return ``enum_cls(value)``, or ``value`` unchanged when the enum has no such member."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


class DatasetStatus(enum.StrEnum):
    """V3 dataset status (API doc §2.4): UNINITIALISED → PROCESSING → READY | ERROR."""

    UNINITIALISED = "UNINITIALISED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    ERROR = "ERROR"

    @property
    def is_terminal(self) -> bool:
        """True for READY and ERROR: the status will not change by itself any more."""
        return self in (DatasetStatus.READY, DatasetStatus.ERROR)


class BatchStatus(enum.StrEnum):
    """Batch status (API doc §3.1): UNINITIALISED → PROCESSING (setup) → READY | ERROR."""

    UNINITIALISED = "UNINITIALISED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    ERROR = "ERROR"

    @property
    def is_terminal(self) -> bool:
        """True for READY and ERROR: the status will not change by itself any more."""
        return self in (BatchStatus.READY, BatchStatus.ERROR)


class StudyStatus(enum.StrEnum):
    """Study status (API doc §6.3; ``AWAITING REVIEW`` with a space)."""

    UNPUBLISHED = "UNPUBLISHED"
    SCHEDULED = "SCHEDULED"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    AWAITING_REVIEW = "AWAITING REVIEW"
    COMPLETED = "COMPLETED"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED only (AWAITING REVIEW still has submissions to review)."""
        return self is StudyStatus.COMPLETED

    @property
    def is_collection_finished(self) -> bool:
        """True for AWAITING REVIEW and COMPLETED: participants no longer take part, the report is final
        apart from reviews."""
        return self in (StudyStatus.AWAITING_REVIEW, StudyStatus.COMPLETED)


class SubmissionStatus(enum.StrEnum):
    """Submission status (API doc §6.4; ``TIMED-OUT`` with a hyphen, ``AWAITING REVIEW`` with a space)."""

    ACTIVE = "ACTIVE"
    RESERVED = "RESERVED"
    AWAITING_REVIEW = "AWAITING REVIEW"
    APPROVED = "APPROVED"
    PARTIALLY_APPROVED = "PARTIALLY APPROVED"
    REJECTED = "REJECTED"
    RETURNED = "RETURNED"
    TIMED_OUT = "TIMED-OUT"
    SCREENED_OUT = "SCREENED OUT"

    @property
    def is_terminal(self) -> bool:
        """True when the submission will not change without a researcher action: APPROVED, PARTIALLY
        APPROVED, REJECTED, RETURNED, TIMED-OUT, SCREENED OUT."""
        return self not in (SubmissionStatus.ACTIVE, SubmissionStatus.RESERVED, SubmissionStatus.AWAITING_REVIEW)

    @property
    def is_completed(self) -> bool:
        """True when the participant finished the task (AWAITING REVIEW, APPROVED, PARTIALLY APPROVED,
        REJECTED): such submissions appear in the batch report; RETURNED/TIMED-OUT do not."""
        return self in (
            SubmissionStatus.AWAITING_REVIEW,
            SubmissionStatus.APPROVED,
            SubmissionStatus.PARTIALLY_APPROVED,
            SubmissionStatus.REJECTED,
        )


class StudyAction(enum.StrEnum):
    """Study transition actions (API doc §6.3, ``POST /api/v1/studies/{id}/transition/``)."""

    PUBLISH = "PUBLISH"
    PAUSE = "PAUSE"
    START = "START"
    STOP = "STOP"


DatasetStatusField = Annotated[DatasetStatus | str, Field(union_mode="left_to_right")]
BatchStatusField = Annotated[BatchStatus | str, Field(union_mode="left_to_right")]
StudyStatusField = Annotated[StudyStatus | str, Field(union_mode="left_to_right")]
SubmissionStatusField = Annotated[SubmissionStatus | str, Field(union_mode="left_to_right")]


class ProlificModel(BaseModel):
    """Base of all resource models: unknown fields kept, inputs hidden from validation errors."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    @property
    def error_reason(self) -> str | None:
        """The server's explanation of an ERROR status (datasets, batches), if it sent one. The field
        name is not documented (API doc §10); the first non-empty of ``reason``, ``error``,
        ``error_message``, ``status_reason``, ``failure_reason`` among the received fields is used [G]."""
        extra = self.model_extra or {}
        for name in ("reason", "error", "error_message", "status_reason", "failure_reason"):
            if extra.get(name):
                return str(extra[name])
        return None


class User(ProlificModel):
    """``GET /api/v1/users/me/`` (API doc §7). ``balance``/``available_balance`` in minor units."""

    id: str
    name: str | None = None
    email: str | None = None
    currency_code: str | None = None
    balance: int | None = None
    available_balance: int | None = None


class Workspace(ProlificModel):
    """An item of ``GET /api/v1/workspaces/`` (API doc §7)."""

    id: str
    title: str | None = None
    description: str | None = None


class WorkspaceBalance(ProlificModel):
    """``GET /api/v1/workspaces/{id}/balance/`` (API doc §7); amounts are integers in minor units
    (pence/cents); breakdowns are ``{"rewards", "fees", "vat"}``."""

    currency_code: str | None = None
    total_balance: int | None = None
    available_balance: int | None = None
    balance_breakdown: dict[str, int] | None = None
    available_balance_breakdown: dict[str, int] | None = None


class Project(ProlificModel):
    """An item of ``GET /api/v1/workspaces/{id}/projects/`` (API doc §7)."""

    id: str
    title: str | None = None
    description: str | None = None
    workspace: str | None = None


class Dataset(ProlificModel):
    """A dataset (API doc §2.2–§2.4). ``status`` is absent for V4 datasets; ``total_datapoint_count``
    is the number of datapoints (CSV rows) after processing."""

    id: str
    name: str | None = None
    status: DatasetStatusField | None = None
    total_datapoint_count: int | None = None
    workspace_id: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    filename: str | None = None
    has_predetermined_grouping_id: bool | None = None



class UploadURL(ProlificModel):
    """``GET /api/v1/data-collection/datasets/{id}/upload-url/{filename}`` (API doc §2.5).

    ``upload_url`` is a presigned S3 URL whose query string is a credential: ``repr()``/``str()`` show it
    redacted; use the attribute only to upload. ``http_method`` is ``"PUT"``. V4 adds ``import_id``,
    ``content_type``, ``file_key`` (kept as extra fields).
    """

    upload_url: str
    expires_at: datetime | None = None
    http_method: str = "PUT"
    dataset_id: str | None = None

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "upload_url" else value


class Batch(ProlificModel):
    """A batch (API doc §3.1). ``total_task_count``/``total_task_groups`` are set after setup;
    ``datasets`` holds the attached dataset(s); ``batch_items`` is the page layout of §12 or ``None``
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
    """A legacy instruction (API doc §4): loose on purpose, the type-specific fields (``options``,
    ``answer_limit``, ``unit_options``…) are kept as they come."""

    id: str | None = None
    type: str
    description: str | None = None
    order: int | None = None
    batch_id: str | None = None
    created_by: str | None = None


class Study(ProlificModel):
    """A study (API doc §6.1). ``reward`` is an integer in minor units (cents/pence) per place;
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


class Submission(ProlificModel):
    """A submission (API doc §6.4). ``time_taken`` in seconds [G]; ``reward`` in minor units."""

    id: str
    participant_id: str | None = None
    status: SubmissionStatusField | None = None
    study_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    is_complete: bool | None = None
    time_taken: int | None = None
    reward: int | None = None


class ReportLocation(ProlificModel):
    """Where a batch report is (``GET /api/v1/data-collection/batches/{id}/report/``, API doc §5.1).

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
    """A workspace's webhook signing secret (``/api/v1/hooks/secrets/``, API doc §8). ``value`` is the
    HMAC-SHA256 key of the deliveries' ``X-Prolific-Request-Signature``: a ``SecretStr``."""

    id: str
    value: SecretStr
    workspace_id: str | None = None


class HookSubscription(ProlificModel):
    """A webhook subscription (``/api/v1/hooks/subscriptions/``, API doc §8). ``hook_secret`` is the
    one-time ``X-Hook-Secret`` handshake value of the creation answer (``None`` elsewhere); post it back
    with :meth:`taskbuilder.client.ProlificClient.confirm_hook_subscription` to enable the subscription."""

    id: str
    event_type: str | None = None
    target_url: str | None = None
    is_enabled: bool | None = None
    workspace_id: str | None = None
    hook_secret: SecretStr | None = None
