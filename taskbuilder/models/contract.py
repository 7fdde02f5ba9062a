"""The API contract the client relies on: one :class:`Endpoint` per endpoint it calls, with the request
model, the response model and the success status codes from ``../shared/docs/prolific-api-current.md``.

The response models here are stricter than the client's (:mod:`taskbuilder.models.resources`): they
require what the facts mark required (unknown fields still allowed), and statuses must be one of the
documented values. :func:`check_exchange` validates one recorded request/response pair; the contract
test runs a whole job against the sandbox and checks every exchange in its request log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taskbuilder.models import requests as rq
from taskbuilder.models import resources as rs
from taskbuilder.models.statuses import BatchStatus, DatasetStatus, ImportStatus, StudyStatus


class DatasetContract(rs.Dataset):
    """A dataset as §1.1/§1.2 require: id, name, created_at, created_by, workspace_id, total_datapoint_count."""

    name: str
    workspace_id: str
    created_at: datetime
    created_by: str
    total_datapoint_count: int = Field(ge=0)
    status: DatasetStatus | None = None


class StatusContract(BaseModel):
    """``{"status": …}`` of the V3 dataset status (§1.3) or the batch status (§2.5)."""

    model_config = ConfigDict(extra="allow")
    status: DatasetStatus | BatchStatus


class UploadURLContract(rs.UploadURL):
    """§1.4: ``upload_url`` and ``http_method`` PUT; ``expires_at`` when sent is a datetime."""

    http_method: str = Field(pattern="^PUT$")


class ImportJobContract(rs.ImportJob):
    """§1.6: the documented statuses, and each terminal status with the fields it populates."""

    dataset_id: str
    status: ImportStatus

    @model_validator(mode="after")
    def _populated(self) -> ImportJobContract:
        needs = {
            ImportStatus.COMPLETE: ("accepted_count",),
            ImportStatus.PARTIAL: ("accepted_count", "rejected_count", "errors"),
            ImportStatus.FAILED: ("reason",),
        }.get(self.status, ())
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"an import job that is {self.status} must carry {', '.join(missing)}")
        return self


class BatchContract(rs.Batch):
    """§2.1: id, created_at, created_by, datasets, name, status (one of the four)."""

    name: str
    created_at: datetime
    created_by: str
    datasets: list[Any]
    status: BatchStatus


class StudyContract(rs.Study):
    """§5.1/§5.2: a study with a documented status."""

    status: StudyStatus


class ResultsContract(BaseModel):
    """A Task Builder or classic list answer (§8 "Pagination shapes"): ``results`` (a list)."""

    model_config = ConfigDict(extra="allow")
    results: list[Any]


class CalculatedCostContract(rs.CalculatedCost):
    """§5.6: ``total_cost`` (required) is a number of minor units, not negative."""

    total_cost: float = Field(ge=0)


class StudyCostContract(rs.StudyCost):
    """§5.5: ``rewards`` and ``bonuses`` (each may be null)."""


class BonusPaymentContract(rs.BonusPayment):
    """§7 "Bonus created": ``id`` and ``total_amount`` (minor units, not negative)."""

    total_amount: float = Field(ge=0)


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: ``operation_id`` from §0 (``None`` when §0 lists none), its method and path template,
    the request and response models (``None`` = no body checked), the success codes and the facts' §."""

    operation_id: str | None
    method: str
    template: str
    section: str
    statuses: frozenset[int]
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    list_of: type[BaseModel] | None = None
    pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(self.template.rstrip("/")))
        object.__setattr__(self, "pattern", re.compile(f"^{regex}/?$"))


def _ep(op: str | None, method: str, template: str, section: str, statuses: set[int], **models: Any) -> Endpoint:
    return Endpoint(op, method, template, section, frozenset(statuses), **models)


_DS = "/api/v1/data-collection/datasets/{dataset_id}"
_B = "/api/v1/data-collection/batches/{batch_id}"
_S = "/api/v1/studies/{study_id}"
ENDPOINTS: tuple[Endpoint, ...] = (
    _ep("create-task-builder-dataset", "POST", "/api/v1/data-collection/datasets", "§1.1", {201},
        request=rq.CreateDatasetRequest, response=DatasetContract),
    _ep("get-task-builder-dataset", "GET", _DS, "§1.2", {200}, response=DatasetContract),
    _ep("get-task-builder-dataset-status", "GET", _DS + "/status", "§1.3", {200}, response=StatusContract),
    _ep("get-dataset-upload-url", "GET", _DS + "/upload-url/{filename}", "§1.4", {200, 201}, response=UploadURLContract),
    _ep("get-dataset-import-status", "GET", _DS + "/imports/{import_id}", "§1.6", {200}, response=ImportJobContract),
    _ep("get-task-builder-batches", "GET", "/api/v1/data-collection/batches", "§2.3", {200},
        response=ResultsContract, list_of=BatchContract),
    _ep("create-task-builder-batch", "POST", "/api/v1/data-collection/batches", "§2.2", {201},
        request=rq.CreateBatchRequest, response=BatchContract),
    _ep("get-task-builder-batch", "GET", _B, "§2.1", {200}, response=BatchContract),
    _ep("update-task-builder-batch", "PATCH", _B, "§2.4", {200}, request=rq.UpdateBatchRequest, response=BatchContract),
    _ep("get-task-builder-batch-status", "GET", _B + "/status", "§2.5", {200}, response=StatusContract),
    _ep("setup-task-builder-batch", "POST", _B + "/setup", "§2.6", {202}, request=rq.SetupBatchRequest),
    _ep("get-task-builder-batch-report", "GET", _B + "/report/", "§2.7", {200}),
    _ep("get-task-builder-batch-task-responses", "GET", _B + "/responses", "§2.8", {200}, response=ResultsContract),
    _ep("get-task-builder-instructions", "GET", _B + "/instructions", "§4", {200}),
    _ep("create-task-builder-instructions", "POST", _B + "/instructions", "§4", {201}, request=rq.InstructionsRequest),
    _ep("update-task-builder-instructions", "PUT", _B + "/instructions", "§4", {200}, request=rq.InstructionsRequest),
    _ep("create-study", "POST", "/api/v1/studies/", "§5.1", {201}, request=rq.CreateStudyRequest, response=StudyContract),
    _ep(None, "GET", "/api/v1/studies/", "§8", {200}, response=ResultsContract, list_of=StudyContract),
    _ep("get-study", "GET", _S + "/", "§5.2", {200}, response=StudyContract),
    _ep("update-study", "PATCH", _S + "/", "§5.3", {200}, response=StudyContract),
    _ep(None, "DELETE", _S + "/", "prolific-api.md §6.2", {204}),
    _ep("publish-study", "POST", _S + "/transition/", "§5.4", {200}, request=rq.TransitionStudyRequest),
    _ep("create-test-study", "POST", _S + "/test-study", "§5.9", {200, 201}, response=rs.TestStudy),
    _ep("get-study-cost", "GET", _S + "/cost/", "§5.5", {200}, response=StudyCostContract),
    _ep("calculate-study-cost", "POST", "/api/v1/study-cost-calculator/", "§5.6", {200},
        request=rq.StudyCostRequest, response=CalculatedCostContract),
    _ep("get-study-submissions", "GET", _S + "/submissions/", "§5.7", {200}, response=ResultsContract),
    _ep("count-study-submissions-by-status", "GET", _S + "/submissions/counts/", "§5.7", {200}),
    _ep("bulk-approve-submissions", "POST", "/api/v1/submissions/bulk-approve/", "§5.7", {200},
        request=rq.BulkApproveRequest),
    _ep("transition-submission", "POST", "/api/v1/submissions/{submission_id}/transition/", "§5.7", {200},
        request=rq.TransitionSubmissionRequest),
    _ep("create-bonus-payments", "POST", "/api/v1/submissions/bonus-payments/", "§7", {201},
        request=rq.CreateBonusPaymentsRequest, response=BonusPaymentContract),
    _ep("pay-bonus-payments", "POST", "/api/v1/bulk-bonus-payments/{bonus_payment_id}/pay/", "§7", {202}),
    _ep(None, "GET", "/api/v1/reward-recommendations/", "§12", {200}),
    _ep(None, "GET", "/api/v1/users/me/", "prolific-api.md §7", {200}, response=rs.User),
    _ep(None, "GET", "/api/v1/workspaces/", "prolific-api.md §7", {200}, response=ResultsContract),
    _ep(None, "GET", "/api/v1/workspaces/{workspace_id}/balance/", "prolific-api.md §7", {200}, response=rs.WorkspaceBalance),
    _ep(None, "GET", "/api/v1/workspaces/{workspace_id}/projects/", "prolific-api.md §7", {200}, response=ResultsContract),
    _ep("get-event-types", "GET", "/api/v1/hooks/event-types/", "§6", {200}),
    _ep("get-secrets", "GET", "/api/v1/hooks/secrets/", "§6", {200}),
    _ep("create-secret", "POST", "/api/v1/hooks/secrets/", "§6", {201}, request=rq.CreateHookSecretRequest),
    _ep("create-subscription", "POST", "/api/v1/hooks/subscriptions/", "§6", {201}, request=rq.CreateSubscriptionRequest),
    _ep("confirm-subscription", "POST", "/api/v1/hooks/subscriptions/{subscription_id}/", "§6", {200},
        request=rq.ConfirmSubscriptionRequest),
    _ep(None, "GET", "/api/v1/hooks/subscriptions/", "§6", {200}),
    _ep("delete-subscription", "DELETE", "/api/v1/hooks/subscriptions/{subscription_id}/", "§6", {204}),
)
"""Every endpoint the client calls (the webhook ones are used by the deployments' receiver)."""


SECTION_0_OPERATION_IDS: tuple[str, ...] = (
    "get-task-builder-batches", "create-task-builder-batch", "get-task-builder-batch", "update-task-builder-batch",
    "get-task-builder-batch-status", "setup-task-builder-batch", "get-task-builder-batch-task-responses",
    "get-task-builder-batch-report", "duplicate-task-builder-batch", "sync-task-builder-batch", "get-batch-sync-status",
    "request-batch-export", "get-batch-export-status",
    "create-task-builder-dataset", "update-task-builder-dataset", "append-dataset-datapoints", "get-dataset-upload-url",
    "get-task-builder-dataset", "get-task-builder-dataset-status", "get-dataset-import-status",
    "get-schema-migration-status",
    "get-task-builder-instructions", "create-task-builder-instructions", "update-task-builder-instructions",
    "create-study", "get-study", "update-study", "publish-study", "create-test-study", "get-study-cost",
    "calculate-study-cost", "get-study-submissions", "count-study-submissions-by-status", "export-study",
    "export-demographic-data", "duplicate-study",
    "transition-submission", "bulk-approve-submissions",
    "create-bonus-payments", "pay-bonus-payments",
    "get-event-types", "get-secrets", "create-secret", "create-subscription", "confirm-subscription",
    "update-subscription", "delete-subscription", "get-events",
    "get-participant-groups", "create-participant-group", "add-to-participant-group",
    "get-participant-group-participants", "remove-from-participant-group",
    "create-test-participant-for-researcher",
)
"""The operation ids of the live spec, as §0 lists them (for the contract test's coverage table)."""


def find_endpoint(method: str, path: str) -> Endpoint | None:
    """The endpoint of ``method path`` (query string ignored, trailing slash optional, §0), or ``None``."""
    bare = path.split("?", 1)[0].rstrip("/")
    for endpoint in ENDPOINTS:
        if endpoint.method == method.upper() and endpoint.pattern.match(bare or "/"):
            return endpoint
    return None


def check_exchange(method: str, path: str, status: int, request_body: Any, response_body: Any) -> list[str]:
    """The contract problems of one request and its answer (empty when it fits): an unknown endpoint, a
    status code outside the endpoint's success codes (4xx/5xx answers are the server's refusals and are not
    checked), a request body or a 2xx response body that does not fit its model."""
    endpoint = find_endpoint(method, path)
    where = f"{method} {path.split('?', 1)[0]}"
    if endpoint is None:
        return [f"{where}: not an endpoint of the contract"]
    if status >= 400:
        return []
    problems: list[str] = []
    if status not in endpoint.statuses:
        problems.append(f"{where}: answered {status}, the contract says {sorted(endpoint.statuses)} ({endpoint.section})")
    if endpoint.request is not None and request_body is not None:
        problems += _fits(endpoint.request, request_body, f"{where} request")
    if endpoint.response is not None and response_body is not None:
        problems += _fits(endpoint.response, response_body, f"{where} response")
        if endpoint.list_of is not None and isinstance(response_body, dict):
            for index, item in enumerate(response_body.get("results") or []):
                problems += _fits(endpoint.list_of, item, f"{where} response results[{index}]")
    return problems


def _fits(model: type[BaseModel], data: Any, what: str) -> list[str]:
    try:
        model.model_validate(data)
    except ValidationError as error:
        return [f"{what}: {'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in error.errors()]
    return []
