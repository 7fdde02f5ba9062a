"""Pydantic models of Prolific's API (``../shared/docs/prolific-api-current.md``): statuses
(:mod:`.statuses`), the resources the API returns (:mod:`.resources`), the request bodies the client
sends (:mod:`.requests`) and the endpoint table with its stricter response models (:mod:`.contract`).
Import from here: ``from taskbuilder.models import Dataset, ImportStatus``.
"""

from taskbuilder.models.requests import (
    DISPLAYED_FIELD_TYPES,
    REJECTION_CATEGORIES,
    REJECTION_MESSAGE_MIN_CHARS,
    BulkApproveRequest,
    CreateBonusPaymentsRequest,
    ConfirmSubscriptionRequest,
    CreateBatchRequest,
    CreateDatasetRequest,
    CreateHookSecretRequest,
    CreateStudyRequest,
    CreateSubscriptionRequest,
    DatasetSchemaRequest,
    InstructionsRequest,
    SchemaFieldRequest,
    SetupBatchRequest,
    StudyCostRequest,
    TransitionStudyRequest,
    TransitionSubmissionRequest,
    UpdateBatchRequest,
)
from taskbuilder.models.resources import (
    Batch,
    BonusPayment,
    CalculatedCost,
    CostBreakdown,
    Dataset,
    DatasetSchema,
    HookSecret,
    HookSubscription,
    ImportJob,
    ImportRecordError,
    Instruction,
    Money,
    Project,
    ProlificModel,
    ReportLocation,
    RewardRecommendation,
    SchemaField,
    Study,
    StudyCost,
    Submission,
    TestStudy,
    UploadURL,
    User,
    Workspace,
    WorkspaceBalance,
)
from taskbuilder.models.statuses import (
    BatchStatus,
    DatasetStatus,
    ImportStatus,
    StudyAction,
    StudyStatus,
    SubmissionStatus,
    parse_status,
)

__all__ = [name for name in dir() if not name.startswith("_")]
