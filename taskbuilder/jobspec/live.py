"""The spec's fields for a running study (issue 20): partial results, early alerts, participant quality across jobs.

- `partial_results_every_seconds` (default 600; 0 = off): while the study is ACTIVE, the answers so far are read
  this often and written as partial outputs (`tasks/live_results.py`).
- `alerts: {min_agreement, after_answers, pause_on_alert}`: once `after_answers` answers to the first choice
  instruction are in and its Krippendorff's α is below `min_agreement`, the job alerts once (log, artifact,
  Prefect event `prolific.job.alert`); with `pause_on_alert` it also pauses the study (§5.4 PAUSE).
- `quality: {blocklist_group, exclude_groups, allow_groups}`: flagged participants are added to the workspace
  participant group `blocklist_group` (§8); a later job keeps the members of `exclude_groups` out and admits
  only the members of `allow_groups` through the study's `filters` (§8, §12 of
  ../shared/docs/prolific-api-current.md: `participant_group_allowlist` is documented; the blocklist filter id
  `participant_group_blocklist` is not, it is the sandbox's assumption).

`LIVE_RUN_CONTROL_FIELDS` stay out of the job's work fingerprint (they steer the run, not the work), except the
groups that change who may take the study (`quality_work`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from taskbuilder.jobspec.base import NonBlank, SpecModel, fail

DEFAULT_PARTIAL_RESULTS_EVERY_SECONDS = 600


class AlertSpec(SpecModel):
    """`alerts:` — when agreement so far is below `min_agreement` after `after_answers` answers."""

    min_agreement: float = Field(
        ge=-1, le=1, description="Krippendorff's α (nominal) of the first choice instruction below which the job alerts.")
    after_answers: int = Field(
        default=20, ge=1, description="Answers to the first choice instruction needed before agreement is judged.")
    pause_on_alert: bool = Field(default=False, description="Also pause the study (PAUSE transition, once) on the alert.")


class QualitySpec(SpecModel):
    """`quality:` — participant groups of the workspace that carry quality across jobs (§8)."""

    blocklist_group: NonBlank | None = Field(
        default=None, description="Participant group (by name; created if missing) that flagged participants join.")
    exclude_groups: list[NonBlank] = Field(
        default_factory=list, description="Participant groups (by name) whose members may not take this job's study.")
    allow_groups: list[NonBlank] = Field(
        default_factory=list, description="Participant groups (by name): only their members may take this job's study.")

    @model_validator(mode="after")
    def _no_group_both_ways(self) -> "QualitySpec":
        both = sorted(set(self.exclude_groups) & set(self.allow_groups))
        if both:
            raise fail([("exclude_groups", f"{', '.join(both)} is both excluded and allowed",
                         "name a group in exclude_groups or in allow_groups, not both")])
        return self


PARTIAL_RESULTS_FIELD: Any = Field(
    default=DEFAULT_PARTIAL_RESULTS_EVERY_SECONDS, ge=0,
    description="While the study is ACTIVE, write partial responses.csv, labels.csv and summary.json (\"partial\": true) "
                "and a progress artifact this often, in seconds; 0 = off.")
ALERTS_FIELD: Any = Field(
    default=None, description="Early warning: {min_agreement, after_answers, pause_on_alert}; needs "
                              "partial_results_every_seconds above 0.")
QUALITY_FIELD: Any = Field(
    default=None, description="Participant quality across jobs: {blocklist_group, exclude_groups, allow_groups} "
                              "(participant group names of the workspace).")

LIVE_RUN_CONTROL_FIELDS = frozenset({"partial_results_every_seconds", "alerts", "quality"})
"""Spec fields of this module kept out of the work fingerprint (see :func:`quality_work`)."""


def quality_work(quality: QualitySpec | None) -> dict[str, Any]:
    """The part of `quality` that changes the study (who may take it), for the work fingerprint: empty when
    no group is excluded or allowed, so specs without them keep the fingerprint they had before."""
    if quality is None or not (quality.exclude_groups or quality.allow_groups):
        return {}
    return {"quality": {"exclude_groups": sorted(quality.exclude_groups), "allow_groups": sorted(quality.allow_groups)}}


def live_problems(partial_results_every_seconds: int, alerts: AlertSpec | None) -> list[tuple[str, str, str]]:
    """Cross-field problems of this module's fields, as `(path, message, hint)`."""
    if alerts is not None and partial_results_every_seconds == 0:
        return [("alerts", "alerts are judged on the partial results, which partial_results_every_seconds: 0 turns off",
                 "set partial_results_every_seconds above 0 (e.g. 600), or remove alerts")]
    return []
