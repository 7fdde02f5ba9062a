"""Study endpoints (``../shared/docs/prolific-api-current.md`` §5): create, get, update, delete, list,
transition, the cost calculator and the study's cost, submissions."""

from __future__ import annotations

from typing import Any

from taskbuilder.client.base import ClientBase
from taskbuilder.client.config import PAGE_SIZE
from taskbuilder.errors import UnexpectedResponse
from taskbuilder.models import (
    BulkApproveRequest,
    CalculatedCost,
    CreateStudyRequest,
    Study,
    StudyAction,
    StudyCost,
    StudyCostRequest,
    Submission,
    TestStudy,
    TransitionStudyRequest,
)


class StudyEndpoints(ClientBase):
    """``/api/v1/studies/…``, ``/api/v1/study-cost-calculator/``, ``/api/v1/submissions/…`` (§5)."""

    def create_study(self, payload: dict[str, Any]) -> Study:
        """``POST /api/v1/studies/`` with ``payload`` (§5.1; for a batch:
        ``data_collection_method="AI_TASK_BUILDER_BATCH"``, ``data_collection_id``,
        ``data_collection_metadata.annotators_per_task``; ``reward`` in minor units) → the draft study
        (UNPUBLISHED). ``payload`` is checked against :class:`~taskbuilder.models.CreateStudyRequest`
        and sent as given (extra fields pass through). Not idempotent: each call creates a study."""
        CreateStudyRequest.model_validate(payload)
        return self._call(Study, "POST", "/api/v1/studies/", json=payload)

    def get_study(self, study_id: str) -> Study:
        """``GET /api/v1/studies/{study_id}/`` (§5.2) → the study (poll read timeout)."""
        return self._call(
            Study, "GET", "/api/v1/studies/{study_id}/",
            path_params={"study_id": study_id}, read_seconds=self.timeouts.poll_read_seconds,
        )

    def calculate_study_cost(self, *, reward_cents: int, places: int) -> CalculatedCost:
        """``POST /api/v1/study-cost-calculator/`` ``{reward, total_available_places}`` (§5.6) → 200,
        ``{total_cost}``: the account's price of ``places`` places at ``reward_cents`` each, fees and VAT
        included at the account's rates, in minor units (cents). Creates nothing."""
        body = StudyCostRequest(reward=reward_cents, total_available_places=places).body()
        return self._call(CalculatedCost, "POST", "/api/v1/study-cost-calculator/", json=body)

    def get_study_cost(self, study_id: str, *, projected: bool = False) -> StudyCost:
        """``GET /api/v1/studies/{study_id}/cost/[?is_projected=true]`` (§5.5) → the study's own cost:
        ``rewards`` and ``bonuses``, each ``{rewards, fees, tax}`` of ``{amount, currency}`` (minor units)
        or ``None``."""
        params = {"is_projected": "true"} if projected else None
        return self._call(StudyCost, "GET", "/api/v1/studies/{study_id}/cost/", path_params={"study_id": study_id}, params=params)

    def create_test_study(self, study_id: str) -> TestStudy:
        """``POST /api/v1/studies/{study_id}/test-study`` ``{}`` (§5.9) → ``{study_id, study_url}`` of a test
        study made from the draft ``study_id`` (shown to the workspace's test participants; nothing is paid).
        The study must be UNPUBLISHED (else 400)."""
        return self._call(TestStudy, "POST", "/api/v1/studies/{study_id}/test-study", path_params={"study_id": study_id}, json={})

    def update_study(self, study_id: str, **fields: Any) -> Study:
        """``PATCH /api/v1/studies/{study_id}/`` (§5.3) with ``fields`` as given → the study."""
        return self._call(
            Study, "PATCH", "/api/v1/studies/{study_id}/", path_params={"study_id": study_id}, json=fields
        )

    def delete_study(self, study_id: str) -> None:
        """``DELETE /api/v1/studies/{study_id}/`` (``prolific-api.md`` §6.2; not in the current facts): removes an UNPUBLISHED study (a
        published one is refused by the server with 4xx)."""
        self._request("DELETE", "/api/v1/studies/{study_id}/", path_params={"study_id": study_id})

    def list_studies(self, *, status: str | None = None) -> list[Study]:
        """``GET /api/v1/studies/`` (all pages, limit/offset or ``_links.next``) → the token's studies.

        ``status`` (e.g. ``"UNPUBLISHED"``) filters here, on the client: the API's own filters
        (``published=0``, ``active=1``…, ``prolific-api.md`` §6.2) do not map one-to-one onto statuses.
        """
        studies = self._list(Study, "/api/v1/studies/", page_size=PAGE_SIZE)
        return [study for study in studies if status is None or study.status == status]

    def list_studies_by_status(self, status: str) -> list[Study]:
        """``GET /api/v1/studies/?status=<status, lower case>`` (all pages) → the studies the API lists for that
        status (§5.2: statuses are filtered by their lower-case names). Each study carries its own ``status``:
        callers use that, not the filter, so an API that ignored the filter would cost pages, not answers."""
        return self._list(Study, "/api/v1/studies/", params={"status": status.lower()}, page_size=PAGE_SIZE)

    def transition_study(self, study_id: str, action: StudyAction) -> Study:
        """``POST /api/v1/studies/{study_id}/transition/`` ``{"action": …}`` (PUBLISH, PAUSE, START,
        STOP; §5.4) → the study. If the answer is empty or not a study object (undocumented), the
        study is read back with :meth:`get_study`. PUBLISH spends money: the caller checks the status first."""
        response = self._request(
            "POST", "/api/v1/studies/{study_id}/transition/",
            path_params={"study_id": study_id}, json=TransitionStudyRequest(action=str(StudyAction(action))).body(),
        )
        body = self._json(response) if response.content else None
        if isinstance(body, dict) and "id" in body:
            return self._parse(Study, body, response)
        return self.get_study(study_id)

    def list_submissions(self, study_id: str) -> list[Submission]:
        """``GET /api/v1/studies/{study_id}/submissions/`` (§5.7; all pages) → the study's submissions."""
        return self._list(
            Submission, "/api/v1/studies/{study_id}/submissions/",
            path_params={"study_id": study_id}, page_size=PAGE_SIZE,
        )

    def get_submission_counts(self, study_id: str) -> dict[str, int]:
        """``GET /api/v1/studies/{study_id}/submissions/counts/`` → ``{status: count}`` with the keys of
        §5.7 (``"AWAITING REVIEW"``, ``"TIMED-OUT"``…, plus ``"TOTAL"``)."""
        response = self._request(
            "GET", "/api/v1/studies/{study_id}/submissions/counts/",
            path_params={"study_id": study_id}, read_seconds=self.timeouts.poll_read_seconds,
        )
        body = self._json(response)
        if not isinstance(body, dict) or not all(isinstance(value, int) for value in body.values()):
            raise UnexpectedResponse(
                method="GET", path=response.request.url.path, status_code=response.status_code,
                reason="expected an object of integer counts",
            )
        return body

    def bulk_approve_submissions(self, submission_ids: list[str]) -> None:
        """``POST /api/v1/submissions/bulk-approve/`` ``{"submission_ids": [...]}`` (§5.7); the
        answer's body is ignored (success = 2xx). Pays the participants: not to be called twice blindly."""
        self._request("POST", "/api/v1/submissions/bulk-approve/", json=BulkApproveRequest(submission_ids=list(submission_ids)).body())
