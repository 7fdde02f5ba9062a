"""The job's rounds (issue 19): adaptive overlap (`adaptive`) and a pilot (`pilot`), both optional.

A job without them is one round, as before. `ROUND_FIELDS` are left out of the work fingerprint while unset,
so the job key and fingerprint of a spec that does not use them stay what they were.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from taskbuilder.jobspec.base import SpecModel, fail

ROUND_FIELDS = ("adaptive", "pilot")


class AdaptiveSpec(SpecModel):
    """Ask more annotators only where the first ones disagree: round 1 asks `start_annotators` per datapoint;
    each follow-up round asks one more for every datapoint whose label is below `target_confidence`, until
    every datapoint is confident or has `max_annotators` answers (and never above `max_budget`)."""

    start_annotators: int = Field(ge=1, le=100, description="Annotators per datapoint in the first round (replaces "
                                  "study.annotators_per_task).")
    max_annotators: int = Field(ge=1, le=100, description="Most answers a datapoint gets over all rounds.")
    target_confidence: float = Field(
        gt=0.5, le=1.0, description="A datapoint is done when its label's confidence reaches this (0.5–1): the "
        "Dawid-Skene posterior of the first choice instruction, or the majority share when participants gave too "
        "few answers each; a tie is never done.")

    @model_validator(mode="after")
    def _order(self) -> "AdaptiveSpec":
        if self.max_annotators < self.start_annotators:
            raise fail([("max_annotators", f"max_annotators ({self.max_annotators}) is below start_annotators "
                         f"({self.start_annotators})", "set max_annotators to start_annotators or more")])
        return self


class PilotSpec(SpecModel):
    """A first round on a sample of the datapoints, with a report, before the rest is launched."""

    datapoints: int = Field(ge=1, description="Datapoints in the pilot (stratified by gold when the CSV has it, "
                            "else a seeded random sample).")
    annotators_per_task: int = Field(ge=1, le=100, description="Annotators per pilot datapoint.")
    min_agreement: float = Field(default=0.0, ge=-1.0, le=1.0,
                                 description="Lowest Krippendorff's α (per choice instruction) to continue.")
    max_time_ratio: float = Field(default=1.5, gt=0, description="Highest median minutes per submission over "
                                  "study.estimated_completion_time to continue.")
    then: Literal["auto", "approval", "stop"] = Field(
        default="approval", description="auto: continue when both thresholds hold; approval: a reviewer decides in "
        "Prefect with the pilot's report; stop: end after the pilot.")


def round_problems(adaptive: AdaptiveSpec | None, pilot: PilotSpec | None, id_column: str | None,
                   has_single_choice: bool) -> list[tuple[str, str, str]]:
    """The spec problems of the round fields with the rest of the spec (field path, message, hint)."""
    problems = []
    for name, value in (("adaptive", adaptive), ("pilot", pilot)):
        if value is None:
            continue
        if id_column is None:
            problems.append((name, f"{name} merges the answers of several rounds by the row id",
                             "set dataset.id_column (a column of unique row ids)"))
        if not has_single_choice:
            problems.append((name, f"{name} needs a single-select choice instruction to judge the labels",
                             "add a multiple_choice instruction with answer_limit: 1"))
    return problems
