"""Batch endpoints (``../shared/docs/prolific-api-current.md`` §2, §4): create, get, status, list, update,
the legacy instructions, setup, report, responses."""

from __future__ import annotations

from typing import Any

import httpx

from taskbuilder.client.base import ClientBase
from taskbuilder.errors import UnexpectedResponse
from taskbuilder.models import (
    Batch,
    BatchStatus,
    CreateBatchRequest,
    InstructionsRequest,
    Instruction,
    ReportLocation,
    SetupBatchRequest,
    UpdateBatchRequest,
    parse_status,
)


class BatchEndpoints(ClientBase):
    """``/api/v1/data-collection/batches…`` (§2, §4)."""

    def create_batch(
        self,
        *,
        name: str,
        workspace_id: str,
        dataset_id: str | None = None,
        task_details: dict[str, Any] | None = None,
        batch_items: list[Any] | None = None,
    ) -> Batch:
        """``POST /api/v1/data-collection/batches`` (§2.2) → 201, a new batch (UNINITIALISED). Optional fields are
        sent only when given; ``task_details`` = ``{task_name, task_introduction, task_steps}``;
        ``batch_items`` = pages (§3; a ``dataset_field`` item needs a V4 dataset, else 422). The body is
        checked against :class:`~taskbuilder.models.CreateBatchRequest`. Not idempotent: each call creates
        a batch."""
        body = CreateBatchRequest(
            name=name, workspace_id=workspace_id, dataset_id=dataset_id, task_details=task_details, batch_items=batch_items
        ).body()
        return self._call(Batch, "POST", "/api/v1/data-collection/batches", json=body)

    def get_batch(self, batch_id: str) -> Batch:
        """``GET /api/v1/data-collection/batches/{batch_id}`` (§2.1) → the batch (poll read timeout)."""
        return self._call(
            Batch, "GET", "/api/v1/data-collection/batches/{batch_id}",
            path_params={"batch_id": batch_id}, read_seconds=self.timeouts.poll_read_seconds,
        )

    def get_batch_status(self, batch_id: str) -> BatchStatus | str:
        """``GET /api/v1/data-collection/batches/{batch_id}/status`` (§2.5) → :class:`BatchStatus` (unknown
        values as the raw string)."""
        response = self._request(
            "GET", "/api/v1/data-collection/batches/{batch_id}/status",
            path_params={"batch_id": batch_id}, read_seconds=self.timeouts.poll_read_seconds,
        )
        return parse_status(BatchStatus, self._status_of(response))

    def list_batches(self, workspace_id: str) -> list[Batch]:
        """``GET /api/v1/data-collection/batches?workspace_id=…`` (§2.3; following links if any) → batches."""
        return self._list(Batch, "/api/v1/data-collection/batches", params={"workspace_id": workspace_id})

    def update_batch(self, batch_id: str, **fields: Any) -> Batch:
        """``PATCH /api/v1/data-collection/batches/{batch_id}`` with ``fields`` as given (``name``,
        ``task_details``, ``dataset_id``, ``batch_items`` — ``batch_items=None`` clears it; §2.4) → 200, the
        batch. ``fields`` are checked against :class:`~taskbuilder.models.UpdateBatchRequest` first."""
        UpdateBatchRequest.model_validate(fields)
        return self._call(
            Batch, "PATCH", "/api/v1/data-collection/batches/{batch_id}",
            path_params={"batch_id": batch_id}, json=fields,
        )

    def get_instructions(self, batch_id: str) -> list[Instruction]:
        """``GET /api/v1/data-collection/batches/{batch_id}/instructions`` → the legacy instructions
        (§4; deprecated endpoint). Raises :class:`~taskbuilder.errors.UnprocessableEntity` for
        a batch_items batch, :class:`~taskbuilder.errors.Gone` once retired."""
        return self._list(
            Instruction, "/api/v1/data-collection/batches/{batch_id}/instructions", path_params={"batch_id": batch_id}
        )

    def create_instructions(self, batch_id: str, instructions: list[dict[str, Any]]) -> list[Instruction]:
        """``POST /api/v1/data-collection/batches/{batch_id}/instructions`` ``{"instructions": [...]}``
        → the created instructions with ids (§4; deprecated). Whether a second call appends
        is undocumented: callers check :meth:`get_instructions` first."""
        return self._instruction_list(
            self._request(
                "POST", "/api/v1/data-collection/batches/{batch_id}/instructions",
                path_params={"batch_id": batch_id}, json=InstructionsRequest(instructions=instructions).body(),
            )
        )

    def replace_instructions(self, batch_id: str, instructions: list[dict[str, Any]]) -> list[Instruction]:
        """``PUT /api/v1/data-collection/batches/{batch_id}/instructions`` ``{"instructions": [...]}``:
        full replacement (§4; items with ``id`` kept/updated, without created, omitted removed) → the list."""
        return self._instruction_list(
            self._request(
                "PUT", "/api/v1/data-collection/batches/{batch_id}/instructions",
                path_params={"batch_id": batch_id}, json=InstructionsRequest(instructions=instructions).body(),
            )
        )

    def setup_batch(self, batch_id: str, *, dataset_id: str | None = None, tasks_per_group: int | None = None) -> None:
        """``POST /api/v1/data-collection/batches/{batch_id}/setup`` ``{dataset_id?, tasks_per_group?}`` →
        (§2.6) → 202: task generation starts (batch PROCESSING, then READY or ERROR; poll
        :meth:`get_batch_status`). Raises :class:`~taskbuilder.errors.BadRequest` if the dataset is not ready (V3 READY, V4 one complete import)."""
        body = SetupBatchRequest(dataset_id=dataset_id, tasks_per_group=tasks_per_group).body()
        self._request("POST", "/api/v1/data-collection/batches/{batch_id}/setup", path_params={"batch_id": batch_id}, json=body)

    def get_batch_report(self, batch_id: str) -> ReportLocation:
        """``GET /api/v1/data-collection/batches/{batch_id}/report/`` → where the report CSV is (§2.7).

        A JSON answer ``{"url", "expires_at", "http_method"}`` gives a presigned URL (download it with
        :func:`taskbuilder.upload.download_to_file`); a ``text/csv`` answer is the CSV itself, returned
        as ``csv_text`` (decoded with the response charset, default UTF-8).
        """
        response = self._request(
            "GET", "/api/v1/data-collection/batches/{batch_id}/report/", path_params={"batch_id": batch_id}
        )
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "text/csv":
            text = response.content.decode(response.charset_encoding or "utf-8")
            return ReportLocation(csv_text=text)
        return self._parse(ReportLocation, self._json(response), response)

    def get_batch_responses(self, batch_id: str) -> list[dict[str, Any]]:
        """``GET /api/v1/data-collection/batches/{batch_id}/responses`` (all pages) → one dict per
        (participant, task, instruction) answer, as sent (§2.8)."""
        return self._collect("/api/v1/data-collection/batches/{batch_id}/responses", path_params={"batch_id": batch_id})

    def _instruction_list(self, response: httpx.Response) -> list[Instruction]:
        """Instructions from a JSON array or ``{"results": [...]}`` answer."""
        body = self._json(response)
        items = body.get("results") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise UnexpectedResponse(
                method=response.request.method, path=response.request.url.path,
                status_code=response.status_code, reason="expected a list of instructions",
            )
        return [self._parse(Instruction, item, response) for item in items]
