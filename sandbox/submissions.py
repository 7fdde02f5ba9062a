"""Submissions (API doc §6.4): list and counts per study, get, transition (APPROVE/REJECT), bulk approve.

Submissions are created by the simulated participants (``participants.py``); reviewing them here
lets a study waiting in AWAITING REVIEW move on to COMPLETED.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox import studies
from sandbox.ids import iso
from sandbox.state import State
from sandbox.web import Request, Response, bad_request, json_response, not_found, paginate, validate


STATUSES = ("ACTIVE", "APPROVED", "AWAITING REVIEW", "REJECTED", "RESERVED", "RETURNED", "TIMED-OUT",
            "PARTIALLY APPROVED", "SCREENED OUT")
PUBLIC_FIELDS = ("id", "study_id", "participant_id", "task_group_id", "started_at", "completed_at", "reviewed_at",
                 "is_complete", "time_taken", "reward", "status", "strata", "study_code", "star_awarded",
                 "bonus_payments")
REJECTION_CATEGORIES = ("TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK",
                        "LOW_EFFORT", "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_DEVICE", "OTHER")


class SubmissionTransition(BaseModel):
    """Body of ``POST /api/v1/submissions/{id}/transition/`` (API doc §6.4); the sandbox reviews only."""

    model_config = ConfigDict(strict=True)
    action: Literal["APPROVE", "REJECT"]
    message: str | None = None
    rejection_category: Literal[REJECTION_CATEGORIES] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> "SubmissionTransition":
        if self.action == "REJECT" and (self.message is None or len(self.message) < 100 or self.rejection_category is None):
            raise ValueError("REJECT needs a message of at least 100 characters and a rejection_category")
        return self


class BulkApprove(BaseModel):
    """Body of ``POST /api/v1/submissions/bulk-approve/``: submission ids, or a study id and participant ids."""

    model_config = ConfigDict(strict=True)
    submission_ids: list[str] | None = Field(None, min_length=1)
    study_id: str | None = None
    participant_ids: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_form(self) -> "BulkApprove":
        if (self.submission_ids is None) == (self.study_id is None or self.participant_ids is None):
            raise ValueError("give submission_ids, or study_id with participant_ids")
        return self


def public(submission: dict) -> dict:
    """The submission as the API shows it (API doc §6.4 plus ``study_id``, ``task_group_id``, ``reviewed_at``)."""
    return {name: submission.get(name) for name in PUBLIC_FIELDS}


def set_status(sb: State, submission: dict, status: str) -> None:
    """Change a submission's status, store it, emit ``submission.status.change`` (API doc §8)."""
    submission["status"] = status
    sb.store.put("submission", submission)
    study = sb.store.get("study", submission["study_id"])
    sb.emit(study["workspace_id"], "submission.status.change",
            {"resource_id": submission["id"], "event_type": "submission.status.change",
             "participant_id": submission["participant_id"], "status": status})


def _review(sb: State, submissions: list[dict], status: str) -> None:
    touched = {}
    for submission in submissions:
        submission["reviewed_at"] = iso()
        set_status(sb, submission, status)
        touched[submission["study_id"]] = True
    for study_id in touched:
        studies.settle(sb, sb.store.get("study", study_id))


def _awaiting(submission: dict, field: str) -> None:
    if submission["status"] != "AWAITING REVIEW":
        raise bad_request(field, f"submission {submission['id']} is {submission['status']}; only AWAITING REVIEW "
                                 "submissions can be reviewed")


def list_for_study(sb: State, req: Request) -> Response:
    """``GET /studies/{id}/submissions/`` (§5.7, paginated; ``status`` filter)."""
    study = studies.get_study(sb, req.params["study_id"])
    status = req.query_value("status")
    if status is not None and status not in STATUSES:
        raise bad_request("status", f"must be one of {', '.join(STATUSES)}")
    items = [public(s) for s in sb.store.list("submission", study_id=study["id"])
             if status is None or s["status"] == status]
    return json_response(200, paginate(req, items))


def counts(sb: State, req: Request) -> Response:
    """``GET /studies/{id}/submissions/counts/`` (§5.7) → counts by status and ``TOTAL``."""
    study = studies.get_study(sb, req.params["study_id"])
    result = dict.fromkeys(STATUSES, 0)
    for submission in sb.store.list("submission", study_id=study["id"]):
        result[submission["status"]] += 1
    result["TOTAL"] = sum(result.values())
    return json_response(200, result)


def get(sb: State, req: Request) -> Response:
    """``GET /submissions/{id}/``; 404 when unknown."""
    return json_response(200, public(_get(sb, req.params["submission_id"])))


def _get(sb: State, submission_id: str) -> dict:
    submission = sb.store.get("submission", submission_id)
    if submission is None:
        raise not_found("submission", submission_id)
    return submission


def transition(sb: State, req: Request) -> Response:
    """``POST /submissions/{id}/transition/`` ``{action: APPROVE|REJECT, ...}`` (§5.7). "Idempotent": a second
    request for the status the submission already has is ignored (200, nothing changes); a REJECT keeps its
    ``message`` and ``rejection_category`` on the submission (not shown by the API)."""
    submission = _get(sb, req.params["submission_id"])
    body = validate(SubmissionTransition, req.json_object())
    target = "APPROVED" if body.action == "APPROVE" else "REJECTED"
    if submission["status"] != target:
        _awaiting(submission, "action")
        if body.action == "REJECT":
            submission["rejection"] = {"message": body.message, "rejection_category": body.rejection_category}
        _review(sb, [submission], target)
    return json_response(200, {"id": submission["id"], "completed_at": submission["completed_at"],
                               "entered_code": submission["study_code"], "participant": submission["participant_id"],
                               "started_at": submission["started_at"], "status": submission["status"],
                               "study_id": submission["study_id"]})


def bulk_approve(sb: State, req: Request) -> Response:
    """``POST /submissions/bulk-approve/`` (§5.7) → ``{approved_submission_ids}``."""
    body = validate(BulkApprove, req.json_object())
    chosen = []
    if body.submission_ids is not None:
        for i, submission_id in enumerate(body.submission_ids):
            submission = sb.store.get("submission", submission_id)
            if submission is None:
                raise bad_request(f"submission_ids[{i}]", f"no submission with id {submission_id!r}")
            chosen.append(submission)
    else:
        study = sb.store.get("study", body.study_id)
        if study is None:
            raise bad_request("study_id", f"no study with id {body.study_id!r}")
        by_participant: dict[str, list[dict]] = {}
        for submission in sb.store.list("submission", study_id=study["id"]):
            if submission["status"] == "AWAITING REVIEW":
                by_participant.setdefault(submission["participant_id"], []).append(submission)
        for i, participant_id in enumerate(body.participant_ids):
            if participant_id not in by_participant:
                raise bad_request(f"participant_ids[{i}]",
                                  f"participant {participant_id!r} has no submission awaiting review in this study")
            chosen.extend(by_participant[participant_id])
    for i, submission in enumerate(chosen):
        _awaiting(submission, f"submission_ids[{i}]" if body.submission_ids is not None else f"participant_ids[{i}]")
    _review(sb, chosen, "APPROVED")
    return json_response(200, {"approved_submission_ids": [s["id"] for s in chosen]})

