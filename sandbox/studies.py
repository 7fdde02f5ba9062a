"""Studies (API doc §6.1-6.3): create against a READY batch, get, list, transition, export.

Only ``data_collection_method: AI_TASK_BUILDER_BATCH`` studies are simulated. Places default to
``total_task_groups × annotators_per_task``. A study is done when all places hold completed
submissions (or it was stopped) and none is still ACTIVE; it then waits in AWAITING REVIEW until no
submission awaits review, and turns COMPLETED.
"""

from __future__ import annotations

import csv
import io
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox import participant_groups
from sandbox.costs import parts_cents
from sandbox.ids import default_id, iso, object_id
from sandbox.state import State
from sandbox.web import ApiError, Request, Response, bad_request, json_response, not_found, paginate, validate


STATUSES = ("UNPUBLISHED", "SCHEDULED", "ACTIVE", "PAUSED", "AWAITING REVIEW", "COMPLETED")
# Submission statuses that hold a place and count as done (API doc §6.4; RETURNED/TIMED-OUT free their place).
DONE_SUBMISSION_STATUSES = ("AWAITING REVIEW", "APPROVED", "REJECTED", "PARTIALLY APPROVED")
PRIVATE_FIELDS = ("stopped", "workspace_id", "cost_parts")


class CompletionAction(BaseModel):
    """One action of a completion code, e.g. ``{"action": "AUTOMATICALLY_APPROVE"}``; other keys kept."""

    model_config = ConfigDict(strict=True, extra="allow")
    action: str = Field(min_length=1)


class CompletionCode(BaseModel):
    """One entry of ``completion_codes`` (API doc §6.1)."""

    model_config = ConfigDict(strict=True)
    code: str = Field(min_length=1)
    code_type: str = Field(min_length=1)
    actions: list[CompletionAction] = []


class DataCollectionMetadata(BaseModel):
    """``data_collection_metadata`` (seed "Publishing a batch"): annotators per task, default 1."""

    model_config = ConfigDict(strict=True)
    annotators_per_task: int = Field(1, ge=1)


class SubmissionsConfig(BaseModel):
    """``submissions_config`` (API doc §6.1); -1 = unlimited."""

    model_config = ConfigDict(strict=True)
    max_submissions_per_participant: int = -1
    max_concurrent_submissions: int = -1
    auto_rejection_categories: list[str] = []


class StudyCreate(BaseModel):
    """Body of ``POST /api/v1/studies/`` (API doc §6.1, seed "Publishing a batch"); unknown fields ignored."""

    model_config = ConfigDict(strict=True)
    name: str = Field(min_length=1)
    internal_name: str | None = None
    description: str = ""
    external_study_url: str | None = None
    prolific_id_option: Literal["question", "url_parameters", "not_required"] | None = None
    completion_option: Literal["url", "code"] | None = None
    completion_code: str | None = None
    completion_codes: list[CompletionCode] | None = None
    total_available_places: int | None = Field(None, ge=1)
    estimated_completion_time: int = Field(ge=1)
    maximum_allowed_time: int | None = Field(None, ge=1)
    reward: int = Field(ge=1)
    device_compatibility: list[Literal["desktop", "tablet", "mobile"]] = ["desktop", "tablet", "mobile"]
    peripheral_requirements: list[Literal["audio", "camera", "download", "microphone"]] = []
    study_type: Literal["SINGLE", "QUOTA"] = "SINGLE"
    study_labels: list[str] = []
    filters: list[dict] = []
    filter_set_id: str | None = None
    project: str | None = None
    submissions_config: SubmissionsConfig = SubmissionsConfig()
    data_collection_method: Literal["AI_TASK_BUILDER_BATCH"]
    data_collection_id: str = Field(min_length=1)
    data_collection_metadata: DataCollectionMetadata = DataCollectionMetadata()


class StudyUpdate(BaseModel):
    """Body of ``PATCH /api/v1/studies/{id}/`` (API doc §6.2); after publishing only
    ``total_available_places`` and ``data_collection_metadata.annotators_per_task`` may change, upwards."""

    model_config = ConfigDict(strict=True)
    name: str | None = Field(None, min_length=1)
    internal_name: str | None = None
    description: str | None = None
    reward: int | None = Field(None, ge=1)
    estimated_completion_time: int | None = Field(None, ge=1)
    maximum_allowed_time: int | None = Field(None, ge=1)
    total_available_places: int | None = Field(None, ge=1)
    completion_codes: list[CompletionCode] | None = None
    data_collection_metadata: DataCollectionMetadata | None = None


GROWABLE_AFTER_PUBLISH = {"total_available_places", "data_collection_metadata"}


class Transition(BaseModel):
    """Body of ``POST /api/v1/studies/{id}/transition/`` (API doc §6.3)."""

    model_config = ConfigDict(strict=True)
    action: Literal["PUBLISH", "START", "PAUSE", "STOP"]


def public(sb: State, study: dict) -> dict:
    """The study as the API shows it, with ``places_taken`` and ``number_of_submissions`` counted now."""
    shown = {k: v for k, v in study.items() if k not in PRIVATE_FIELDS}
    submissions = sb.store.list("submission", study_id=study["id"])
    shown["places_taken"] = sum(s["status"] in DONE_SUBMISSION_STATUSES + ("ACTIVE",) for s in submissions)
    shown["number_of_submissions"] = len(submissions)
    return shown


def get_study(sb: State, study_id: str) -> dict:
    """The stored study; 404 when unknown."""
    study = sb.store.get("study", study_id)
    if study is None:
        raise not_found("study", study_id)
    return study


def auto_approves(study: dict) -> bool:
    """True when a COMPLETED-type completion code carries the AUTOMATICALLY_APPROVE action."""
    return any(code["code_type"] == "COMPLETED" and any(a["action"] == "AUTOMATICALLY_APPROVE" for a in code["actions"])
               for code in study.get("completion_codes") or [])


def completed_code(study: dict) -> dict | None:
    """The COMPLETED-type entry of ``completion_codes`` (the one simulated participants enter), or None."""
    return next((code for code in study.get("completion_codes") or [] if code["code_type"] == "COMPLETED"), None)


def completion_code(study: dict) -> str | None:
    """The code a participant enters on completion (the COMPLETED-type code, else the legacy code)."""
    code = completed_code(study)
    return code["code"] if code else study.get("completion_code")


def set_status(sb: State, study: dict, status: str) -> None:
    """Change the study status, store it, and emit ``study.status.change`` (API doc §8)."""
    if study["status"] == status:
        return
    study["status"] = status
    sb.store.put("study", study)
    sb.emit(study["workspace_id"], "study.status.change",
            {"resource_id": study["id"], "event_type": "study.status.change", "metadata": {}, "status": status})


def settle(sb: State, study: dict) -> None:
    """Move an ACTIVE/PAUSED/AWAITING REVIEW study on when its submissions allow (caller holds the lock)."""
    if study["status"] not in ("ACTIVE", "PAUSED", "AWAITING REVIEW"):
        return
    submissions = sb.store.list("submission", study_id=study["id"])
    if any(s["status"] == "ACTIVE" for s in submissions):
        return
    done = sum(s["status"] in DONE_SUBMISSION_STATUSES for s in submissions)
    if study["status"] != "AWAITING REVIEW" and done < study["total_available_places"] and not study["stopped"]:
        return
    awaiting = any(s["status"] == "AWAITING REVIEW" for s in submissions)
    set_status(sb, study, "AWAITING REVIEW" if awaiting else "COMPLETED")


def create(sb: State, req: Request) -> Response:
    """``POST /studies/`` (§5.1) → 201 study (UNPUBLISHED); 400 naming the field at fault."""
    body = validate(StudyCreate, req.json_object())
    batch = sb.store.get("batch", body.data_collection_id)
    if batch is None:
        raise bad_request("data_collection_id", f"no batch with id {body.data_collection_id!r}")
    if batch["status"] != "READY":
        raise bad_request("data_collection_id", f"batch {batch['id']} is {batch['status']}; it must be READY")
    if body.maximum_allowed_time is not None and body.maximum_allowed_time < body.estimated_completion_time:
        raise bad_request("maximum_allowed_time", "must be at least estimated_completion_time")
    participant_groups.check_filters(sb, body.filters)
    participant_groups.check_actions(sb, [code.model_dump() for code in body.completion_codes or []])
    project_id = body.project or default_id("project")
    project = sb.store.get("project", project_id)
    if project is None:
        raise bad_request("project", f"no project with id {project_id!r}")
    annotators = body.data_collection_metadata.annotators_per_task
    capacity = batch["total_task_groups"] * annotators
    places = body.total_available_places or capacity
    if places > capacity:
        raise bad_request("total_available_places",
                          f"at most {capacity} places (total_task_groups {batch['total_task_groups']} × "
                          f"annotators_per_task {annotators})")
    study = {
        "id": object_id(), **body.model_dump(exclude={"total_available_places"}),
        "total_available_places": places, "project": project_id, "status": "UNPUBLISHED",
        "date_created": iso(), "published_at": None, "started_publishing_at": None, "publish_at": None,
        "completed_at": None, "currency_code": sb.settings.currency_code,
        "presentment_currency_code": sb.settings.currency_code,
        "cost_parts": parts_cents(sb.settings, body.reward, places),
        "estimated_reward_per_hour": round(body.reward * 60 / body.estimated_completion_time),
        "is_pilot": False, "access_details": [],
        "researcher": {"id": sb.user_id(), "name": sb.store.get("user", sb.user_id())["name"]},
        "stopped": False, "workspace_id": project["workspace"],
    }
    study["total_cost"] = study["cost_parts"]["total"]
    study["average_reward_per_hour"] = study["estimated_reward_per_hour"]
    study["is_underpaying"] = study["estimated_reward_per_hour"] < sb.settings.min_reward_per_hour_cents
    study["data_collection_metadata"]["total_task_groups"] = batch["total_task_groups"]
    sb.store.put("study", study)
    return json_response(201, public(sb, study))


def list_studies(sb: State, req: Request, project_id: str | None = None) -> Response:
    """``GET /studies/`` (paginated ``limit``/``offset``), optionally of one project."""
    status = req.query_value("status")
    status = status.upper() if status is not None else None  # the CLI filters by lower-case names (API doc §5.2)
    if status is not None and status not in STATUSES:
        raise bad_request("status", f"must be one of {', '.join(STATUSES)}")
    studies = [s for s in sb.store.list("study") if (status is None or s["status"] == status)
               and (project_id is None or s["project"] == project_id)]
    return json_response(200, paginate(req, [public(sb, s) for s in studies]))


def project_studies(sb: State, req: Request) -> Response:
    """``GET /projects/{id}/studies/``; 404 for an unknown project."""
    if sb.store.get("project", req.params["project_id"]) is None:
        raise not_found("project", req.params["project_id"])
    return list_studies(sb, req, req.params["project_id"])


def get(sb: State, req: Request) -> Response:
    """``GET /studies/{id}/`` (§5.2); 404 when unknown."""
    return json_response(200, public(sb, get_study(sb, req.params["study_id"])))


def transition(sb: State, req: Request) -> Response:
    """``POST /studies/{id}/transition/`` ``{action: PUBLISH|START|PAUSE|STOP}`` (§5.4) → 200 study."""
    study = get_study(sb, req.params["study_id"])
    action = validate(Transition, req.json_object()).action
    allowed = {"PUBLISH": ("UNPUBLISHED",), "PAUSE": ("ACTIVE",), "START": ("PAUSED",),
               "STOP": ("ACTIVE", "PAUSED")}[action]
    if study["status"] not in allowed:
        raise ApiError(400, {"action": [f"cannot {action} a study that is {study['status']}; "
                                        f"allowed from {' or '.join(allowed)}"]})
    if action == "PUBLISH":
        _publish(sb, study)
    elif action == "PAUSE":
        set_status(sb, study, "PAUSED")
    elif action == "START":
        set_status(sb, study, "ACTIVE")
    else:
        study["stopped"] = True
        set_status(sb, study, "AWAITING REVIEW")
        settle(sb, study)
    sb.store.put("study", study)
    return json_response(200, public(sb, study))


def update(sb: State, req: Request) -> Response:
    """``PATCH /studies/{id}/`` (§5.3); after publishing only places and annotators may grow."""
    study = get_study(sb, req.params["study_id"])
    body = validate(StudyUpdate, req.json_object())
    given = {name for name in body.model_fields_set if getattr(body, name) is not None}
    participant_groups.check_actions(sb, [code.model_dump() for code in body.completion_codes or []])
    published = study["status"] != "UNPUBLISHED"
    if published:
        if study["status"] not in ("ACTIVE", "PAUSED"):
            raise ApiError(400, f"a study that is {study['status']} cannot change")
        refused = sorted(given - GROWABLE_AFTER_PUBLISH)
        if refused:
            raise bad_request(refused[0], "cannot change after publishing; only total_available_places and "
                                          "annotators_per_task may grow")
    changes = body.model_dump(include=given)
    old_annotators = study["data_collection_metadata"]["annotators_per_task"]
    annotators = changes.get("data_collection_metadata", {}).get("annotators_per_task", old_annotators)
    groups = study["data_collection_metadata"]["total_task_groups"]
    places = changes.get("total_available_places",
                         groups * annotators if annotators != old_annotators else study["total_available_places"])
    if published and (annotators < old_annotators or places < study["total_available_places"]):
        raise bad_request("total_available_places" if places < study["total_available_places"]
                          else "data_collection_metadata.annotators_per_task", "may only grow after publishing")
    if places > groups * annotators:
        raise bad_request("total_available_places", f"at most {groups * annotators} places (total_task_groups "
                                                    f"{groups} × annotators_per_task {annotators})")
    maximum = changes.get("maximum_allowed_time", study["maximum_allowed_time"])
    estimated = changes.get("estimated_completion_time", study["estimated_completion_time"])
    if maximum is not None and maximum < estimated:
        raise bad_request("maximum_allowed_time", "must be at least estimated_completion_time")
    reward = changes.get("reward", study["reward"])
    parts = parts_cents(sb.settings, reward, places)
    cost = parts["total"]
    if published and cost > study["total_cost"]:
        _debit(sb, study, cost - study["total_cost"])
    changes.pop("data_collection_metadata", None)
    study.update(changes, total_available_places=places, total_cost=cost, cost_parts=parts,
                 estimated_reward_per_hour=round(reward * 60 / estimated))
    study["data_collection_metadata"]["annotators_per_task"] = annotators
    study["average_reward_per_hour"] = study["estimated_reward_per_hour"]
    study["is_underpaying"] = study["estimated_reward_per_hour"] < sb.settings.min_reward_per_hour_cents
    sb.store.put("study", study)
    return json_response(200, public(sb, study))


def delete(sb: State, req: Request) -> Response:
    """``DELETE /studies/{id}/`` → 204 (UNPUBLISHED only)."""
    study = get_study(sb, req.params["study_id"])
    if study["status"] != "UNPUBLISHED":
        raise ApiError(400, f"only an UNPUBLISHED study can be deleted; this one is {study['status']}")
    sb.store.delete("study", study["id"])
    return Response(204)


def export(sb: State, req: Request) -> Response:
    """``GET /studies/{id}/export/`` (§5.8) → CSV of the submissions."""
    study = get_study(sb, req.params["study_id"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Submission id", "Participant id", "Status", "Started at", "Completed at", "Reviewed at",
                     "Time taken", "Completion code", "Task group id"])
    for s in sb.store.list("submission", study_id=study["id"]):
        writer.writerow([s["id"], s["participant_id"], s["status"], s["started_at"], s["completed_at"] or "",
                         s["reviewed_at"] or "", s["time_taken"] if s["time_taken"] is not None else "",
                         s["study_code"] or "", s["task_group_id"]])
    return Response(200, out.getvalue().encode(), {"Content-Type": "text/csv; charset=utf-8"})



def _publish(sb: State, study: dict) -> None:
    """PUBLISH: check the batch is READY and the balance covers ``total_cost``, debit it, go ACTIVE."""
    batch = sb.store.get("batch", study["data_collection_id"])
    if batch is None or batch["status"] != "READY":
        raise ApiError(400, {"data_collection_id": [f"batch {study['data_collection_id']} is not READY"]})
    _debit(sb, study, study["total_cost"])
    now = iso()
    study.update(published_at=now, started_publishing_at=now)
    set_status(sb, study, "ACTIVE")


def _debit(sb: State, study: dict, cost_cents: int) -> None:
    """Take ``cost_cents`` from the balance; 400 naming ``total_cost`` when the balance is short."""
    balance = sb.settings.account_balance_cents
    if balance < cost_cents:
        raise ApiError(400, {"total_cost": [f"insufficient balance: {cost_cents} {study['currency_code']} minor "
                                            f"units needed, the balance is {balance}"]})
    sb.settings.account_balance_cents = balance - cost_cents
