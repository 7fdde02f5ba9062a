"""Completion codes of a study, checked to the documented shape before anything is created.

Shape (§5.1 of ../shared/docs/prolific-api-current.md, ``POST /api/v1/studies/``):
``completion_codes: [{code, code_type, actions: [{action, ...}]}]``; ``code_type`` is one of
:data:`CODE_TYPES` (from the API's OpenAPI excerpt); an AI Task Builder study "must include exactly one
code with code_type of COMPLETED and an action of MANUALLY_REVIEW or AUTOMATICALLY_APPROVE". Actions seen
in the docs are :data:`ACTIONS`; a name close to one of them is a misspelling (an error); any other
passes through, since the docs' list may be incomplete. Codes are text and must be distinct.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskbuilder.jobspec.base import fail
from taskbuilder.jobspec.hints import closest

CODE_TYPES = ("COMPLETED", "FAILED_ATTENTION_CHECK", "FOLLOW_UP_STUDY", "GIVE_BONUS", "INCOMPATIBLE_DEVICE",
              "NO_CONSENT", "OTHER", "FIXED_SCREENOUT")
ACTIONS = ("AUTOMATICALLY_APPROVE", "MANUALLY_REVIEW", "ADD_TO_PARTICIPANT_GROUP", "REMOVE_FROM_PARTICIPANT_GROUP",
           "DYNAMIC_PAYMENT")
REVIEW_ACTIONS = ("AUTOMATICALLY_APPROVE", "MANUALLY_REVIEW")
GROUP_ACTIONS = ("ADD_TO_PARTICIPANT_GROUP", "REMOVE_FROM_PARTICIPANT_GROUP")


def _action_form_schema(schema: dict[str, Any]) -> None:
    """The form's fields of an action: the documented actions to pick from, and ``participant_group`` (the
    group actions'); the model itself lets other keys pass through (kept out of its dump when not given)."""
    schema["properties"]["action"]["enum"] = list(ACTIONS)
    schema["properties"]["participant_group"] = {
        "type": "string", "title": "Participant Group",
        "description": "The participant group's id (ADD_TO_PARTICIPANT_GROUP, REMOVE_FROM_PARTICIPANT_GROUP only)."}
    schema["additionalProperties"] = False


class CompletionAction(BaseModel):
    """One action of a completion code, e.g. ``{"action": "AUTOMATICALLY_APPROVE"}``; other keys
    (``participant_group`` for the group actions) pass through."""

    model_config = ConfigDict(extra="allow", title="Completion action", json_schema_extra=_action_form_schema)

    action: str = Field(description="What Prolific does when a participant submits this code, e.g. AUTOMATICALLY_APPROVE.")

    @field_validator("action")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ACTIONS:
            near = closest(value, list(ACTIONS))
            if near is not None:
                raise fail([("", f"action {value!r} is not an action Prolific documents; did you mean {near}?",
                             f"write {near} (actions: {', '.join(ACTIONS)})")])
        return value


class CompletionCode(BaseModel):
    """One completion code: the text participants' submissions carry, its type and its actions."""

    model_config = ConfigDict(extra="forbid", title="Completion code")

    code: str = Field(description="The code itself (text, e.g. 'C1A2B3'); quote it when it looks like a number.")
    code_type: str = Field(description=f"One of {', '.join(CODE_TYPES)}.", json_schema_extra={"enum": list(CODE_TYPES)})
    actions: list[CompletionAction] | None = Field(
        default=None, description="Actions, e.g. [{action: AUTOMATICALLY_APPROVE}]; left out when not given.")

    @field_validator("code")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise fail([("", "the code is empty", "write the code's text")])
        return value

    @field_validator("code_type")
    @classmethod
    def _code_type(cls, value: str) -> str:
        if value not in CODE_TYPES:
            near = closest(value, list(CODE_TYPES))
            raise fail([("", f"code_type {value!r} is not one of Prolific's code types"
                          + (f"; did you mean {near}?" if near else ""), f"use one of {', '.join(CODE_TYPES)}")])
        return value

    def check_actions(self) -> list[tuple[str, str, str]]:
        """(sub-path, message, hint) for group actions without the group they name."""
        return [(f"actions[{i}].participant_group", f"{a.action} needs participant_group",
                 "add participant_group: the participant group's id")
                for i, a in enumerate(self.actions or [])
                if a.action in GROUP_ACTIONS and not (a.model_extra or {}).get("participant_group")]


def check_completion_codes(codes: list[CompletionCode]) -> list[tuple[str, str, str]]:
    """(sub-path under completion_codes, message, hint) for the list as a whole: distinct codes, and exactly
    one COMPLETED code with a review action (AUTOMATICALLY_APPROVE or MANUALLY_REVIEW)."""
    problems: list[tuple[str, str, str]] = []
    first: dict[str, int] = {}
    for i, code in enumerate(codes):
        problems += [(f"[{i}].{sub}", message, hint) for sub, message, hint in code.check_actions()]
        if code.code in first:
            problems.append((f"[{i}].code", f"code {code.code!r} is also completion_codes[{first[code.code]}]",
                             "give every completion code a distinct code"))
        first.setdefault(code.code, i)
    completed = [i for i, code in enumerate(codes) if code.code_type == "COMPLETED"]
    if len(completed) != 1:
        problems.append(("", f"{len(completed)} codes have code_type COMPLETED; an AI Task Builder study needs exactly one",
                         "keep one COMPLETED code (with action AUTOMATICALLY_APPROVE or MANUALLY_REVIEW), or leave "
                         "completion_codes out for Prolific's default (COMPLETED, MANUALLY_REVIEW)"))
    elif not any(a.action in REVIEW_ACTIONS for a in codes[completed[0]].actions or []):
        problems.append((f"[{completed[0]}].actions", "the COMPLETED code has no AUTOMATICALLY_APPROVE or MANUALLY_REVIEW action",
                         "add actions: [{action: AUTOMATICALLY_APPROVE}] (or MANUALLY_REVIEW to review submissions yourself)"))
    return problems


READ_ONLY_STUDY_FIELDS = frozenset({"id", "status", "date_created", "published_at", "places_taken",
                                    "number_of_submissions", "total_cost", "is_underpaying", "study_code"})
"""Fields Prolific sets on a study (§5.2 ``GET /api/v1/studies/{id}/``: ``status`` and the counters): never
sent on create; a study is published only through the transition endpoint (§5.4)."""


def read_only_problems(study: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, message, hint) for each read-only field in a raw study mapping."""
    hints = {"status": "remove it: the study is created UNPUBLISHED and published only when publish: true and the cost "
                       "is within max_budget"}
    return [(key, f"{key} is set by Prolific, not by the study's creator",
             hints.get(key, "remove it")) for key in study if key in READ_ONLY_STUDY_FIELDS]
