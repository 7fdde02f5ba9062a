"""Status enums of Prolific's resources (``../shared/docs/prolific-api-current.md`` §1.3, §1.6, §2.5, §5.2,
§5.7) and :func:`parse_status`.

Statuses are ``enum.StrEnum``s (members compare equal to the server's strings). A status string the
enum does not know is kept as a plain ``str`` instead of failing validation (fields typed
``XStatus | str``, tried left to right); code that needs an enum helper such as ``is_terminal`` should
check ``isinstance(status, XStatus)`` first, or use :func:`parse_status`.
"""

from __future__ import annotations

import enum
from typing import Annotated, TypeVar

from pydantic import Field

E = TypeVar("E", bound=enum.StrEnum)


def parse_status(enum_cls: type[E], value: str) -> E | str:
    """Return ``enum_cls(value)``, or ``value`` unchanged when the enum has no such member."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


class DatasetStatus(enum.StrEnum):
    """V3 dataset status (§1.3): UNINITIALISED → PROCESSING → READY | ERROR."""

    UNINITIALISED = "UNINITIALISED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    ERROR = "ERROR"

    @property
    def is_terminal(self) -> bool:
        """True for READY and ERROR: the status will not change by itself any more."""
        return self in (DatasetStatus.READY, DatasetStatus.ERROR)


class BatchStatus(enum.StrEnum):
    """Batch status (§2.5): UNINITIALISED → PROCESSING (setup) → READY | ERROR."""

    UNINITIALISED = "UNINITIALISED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    ERROR = "ERROR"

    @property
    def is_terminal(self) -> bool:
        """True for READY and ERROR: the status will not change by itself any more."""
        return self in (BatchStatus.READY, BatchStatus.ERROR)


class StudyStatus(enum.StrEnum):
    """Study status (§5.2; ``AWAITING REVIEW`` with a space)."""

    UNPUBLISHED = "UNPUBLISHED"
    PUBLISHING = "PUBLISHING"
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
    """Submission status (§5.7; ``TIMED-OUT`` with a hyphen, ``AWAITING REVIEW`` with a space)."""

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
    """Study transition actions (§5.4, ``POST /api/v1/studies/{id}/transition/``)."""

    PUBLISH = "PUBLISH"
    PAUSE = "PAUSE"
    START = "START"
    STOP = "STOP"


DatasetStatusField = Annotated[DatasetStatus | str, Field(union_mode="left_to_right")]
BatchStatusField = Annotated[BatchStatus | str, Field(union_mode="left_to_right")]
StudyStatusField = Annotated[StudyStatus | str, Field(union_mode="left_to_right")]
SubmissionStatusField = Annotated[SubmissionStatus | str, Field(union_mode="left_to_right")]



class ImportStatus(enum.StrEnum):
    """Status of a V4 dataset's import job (§1.6, lower case): uninitialised / queued / processing, then
    complete, partial, failed or pending_schema."""

    UNINITIALISED = "uninitialised"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"
    PENDING_SCHEMA = "pending_schema"

    @property
    def is_terminal(self) -> bool:
        """True unless the job is still uninitialised, queued or processing ("continue polling while…", §1.6)."""
        return self not in (ImportStatus.UNINITIALISED, ImportStatus.QUEUED, ImportStatus.PROCESSING)


ImportStatusField = Annotated[ImportStatus | str, Field(union_mode="left_to_right")]
