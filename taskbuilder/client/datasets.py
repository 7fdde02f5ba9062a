"""Dataset endpoints (``../shared/docs/prolific-api-current.md`` §1): create (V3, or V4 with a schema),
get, V3 status, upload URL, V4 import job."""

from __future__ import annotations

from typing import Any

from taskbuilder.client.base import ClientBase
from taskbuilder.models import (
    CreateDatasetRequest,
    Dataset,
    DatasetStatus,
    ImportJob,
    UploadURL,
    parse_status,
)


class DatasetEndpoints(ClientBase):
    """``/api/v1/data-collection/datasets…`` (§1)."""

    def create_dataset(self, *, name: str, workspace_id: str, schema: dict[str, Any] | None = None) -> Dataset:
        """``POST /api/v1/data-collection/datasets`` ``{name, workspace_id, schema?}`` (§1.1) → 201, the new
        dataset. With ``schema`` (``{"strict": bool, "fields": {name: {"type", "label"?}}}``) a V4 dataset
        (readiness per import job, §1.6), without it a V3 one (status UNINITIALISED). The body is checked
        against :class:`~taskbuilder.models.CreateDatasetRequest` first (``pydantic.ValidationError``).
        Not idempotent: each call creates a dataset."""
        body = CreateDatasetRequest(name=name, workspace_id=workspace_id, dataset_schema=schema).body()
        return self._call(Dataset, "POST", "/api/v1/data-collection/datasets", json=body)

    def get_dataset(self, dataset_id: str) -> Dataset:
        """``GET /api/v1/data-collection/datasets/{dataset_id}`` (§1.2) → the dataset; V4 with ``schema``
        (as ``dataset_schema``) and ``imports`` (most recent first), V3 with ``status`` (poll read timeout)."""
        return self._call(
            Dataset, "GET", "/api/v1/data-collection/datasets/{dataset_id}",
            path_params={"dataset_id": dataset_id}, read_seconds=self.timeouts.poll_read_seconds,
        )

    def get_dataset_status(self, dataset_id: str) -> DatasetStatus | str:
        """``GET /api/v1/data-collection/datasets/{dataset_id}/status`` (§1.3, the V3 readiness signal) →
        ``{"status": …}`` as a :class:`DatasetStatus` (an unknown value is returned as the raw string)."""
        response = self._request(
            "GET", "/api/v1/data-collection/datasets/{dataset_id}/status",
            path_params={"dataset_id": dataset_id}, read_seconds=self.timeouts.poll_read_seconds,
        )
        return parse_status(DatasetStatus, self._status_of(response))

    def get_dataset_upload_url(self, dataset_id: str, filename: str) -> UploadURL:
        """``GET /api/v1/data-collection/datasets/{dataset_id}/upload-url/{filename}`` (§1.4) → a presigned
        PUT URL with its expiry; for a V4 dataset also ``import_id`` (a new import job per call),
        ``content_type`` (send it on the PUT, §1.5) and ``file_key``. ``filename`` (``.csv``; V4 also
        ``.jsonl``) is sent percent-encoded as one path segment."""
        return self._call(
            UploadURL, "GET", "/api/v1/data-collection/datasets/{dataset_id}/upload-url/{filename}",
            path_params={"dataset_id": dataset_id, "filename": filename},
        )

    def get_import_job(self, dataset_id: str, import_id: str) -> ImportJob:
        """``GET /api/v1/data-collection/datasets/{dataset_id}/imports/{import_id}`` (§1.6) → the import
        job: ``status`` (poll while uninitialised/queued/processing), ``accepted_count``,
        ``rejected_count``, ``errors[{record_index, field, reason}]`` (partial), ``reason`` (failed)."""
        return self._call(
            ImportJob, "GET", "/api/v1/data-collection/datasets/{dataset_id}/imports/{import_id}",
            path_params={"dataset_id": dataset_id, "import_id": import_id}, read_seconds=self.timeouts.poll_read_seconds,
        )
