"""The job spec: one YAML file that describes a whole annotation job (`AnnotationJob`).

Load it with `AnnotationJob.from_yaml(path)` (relative paths are resolved against the spec file's folder,
`s3://` URLs are kept as they are) or `AnnotationJob.from_dict(data, source=...)`. Both raise `SpecError`
with every problem found in one pass, each naming the field path (`batch.instructions[1].options[2].value`,
zero-based list positions), the spec file and what to do. `AnnotationJob.model_validate(data)` is plain
pydantic (raises `pydantic.ValidationError`; Prefect uses it for flow parameters);
`SpecError.from_validation_error(error, root=AnnotationJob)` turns that into a `SpecError`.

The API token is never a field: it comes from `PROLIFIC_API_TOKEN` or the Prefect Secret block named by
`token_secret_block`.

The parts live beside this module: `dataset.py`, `layout.py` (with `instructions.py`), `study.py`,
`run_control.py`; the bodies sent to the API are built in `taskbuilder/payloads.py`.

Sources: the seed ("Working with Batches": task details, instructions, setup, study payload) and
docs/prolific-api.md §2.6 (META_ columns, META_TASK_GROUP_ID), §4 (instruction types and fields),
§6.1 (study fields), §12 (`batch_items` pages → rows → columns → items).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from taskbuilder.jobspec.html_safety import active_content_problems
from taskbuilder.jobspec.base import SpecModel, fail
from taskbuilder.jobspec.dataset import DatasetSpec
from taskbuilder.jobspec.form_schema import accept_hidden_fields
from taskbuilder.jobspec.instructions import CHOICE_TYPES
from taskbuilder.jobspec.layout import BatchSpec, DatasetFieldRef
from taskbuilder.jobspec import live
from taskbuilder.jobspec.loading import load_spec_text, read_spec_file, validate_spec
from taskbuilder.jobspec.payments import BonusSpec, RejectSpec, bonus_field, reject_field
from taskbuilder.jobspec.problems import SpecProblem
from taskbuilder.jobspec.rounds import ROUND_FIELDS, AdaptiveSpec, PilotSpec, round_problems
from taskbuilder.jobspec.run_control import RUN_CONTROL_FIELDS, RunControl
from taskbuilder.jobspec.study import StudySpec, is_study_text_field, known_study_fields


ROUND_KEY_SUFFIX = re.compile(r"-round-(\d+)$")
"""How the key of a later round of a job ends (``taskbuilder.rounds.round_key``: ``<job key>-round-<n>``)."""


class _JobParts(SpecModel):
    """What the job is: its name, where it runs, and the dataset, batch and study parts."""

    name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Job name = job key (letters, digits, . _ -; up to 64). Empty = derived from the spec and the "
                    "CSV bytes.")
    workspace_id: str | None = Field(
        default=None, description="Prolific workspace id; empty = PROLIFIC_WORKSPACE_ID (the sandbox has a default).")
    project_id: str | None = Field(default=None, description="Prolific project id; empty = PROLIFIC_PROJECT_ID, if set.")
    dataset: DatasetSpec = Field(description="The CSV file and its checks.")
    batch: BatchSpec = Field(description="Batch name, task details, instructions or batch_items, tasks_per_group.")
    study: StudySpec = Field(
        description="The study: name, reward (cents), times (minutes), annotators_per_task, extra API fields.")
    adaptive: AdaptiveSpec | None = Field(default=None, description="Adaptive overlap: more annotators only where labels are unsure.")
    pilot: PilotSpec | None = Field(default=None, description="A pilot round on a sample before the rest of the job.")


class AnnotationJob(RunControl, _JobParts):
    """A whole annotation job: dataset CSV, batch, study and the run's limits and switches.

    Shapes and sources: see the module docstring. Money is in cents (minor units); times in minutes.
    Load with `from_yaml(path)` or `from_dict(data)`; both raise `SpecError` listing every problem.
    """

    model_config = ConfigDict(json_schema_extra=accept_hidden_fields)

    # Fields in spec order (Prefect's form, the "allowed here" hints): the parts (`_JobParts`), then money and
    # run control (`RunControl`); pydantic orders fields by the reversed bases, so `RunControl` is named first.
    partial_results_every_seconds: int = live.PARTIAL_RESULTS_FIELD
    alerts: live.AlertSpec | None = live.ALERTS_FIELD
    quality: live.QualitySpec | None = live.QUALITY_FIELD
    bonus: BonusSpec | None = bonus_field()
    reject: RejectSpec | None = reject_field()

    @model_validator(mode="after")
    def _cross_checks(self) -> "AnnotationJob":
        problems = []
        if self.dataset.gold_column is not None and not self.choice_instructions():
            problems.append(("dataset.gold_column", "gold_column is set but the batch has no choice instruction",
                             "add a multiple_choice instruction (gold values are its option values) or remove gold_column"))
        problems += active_content_problems(self.participant_facing_text())
        problems += live.live_problems(self.partial_results_every_seconds, self.alerts)
        if self.dataset.version == 3 and self._field_refs():
            problems.append(("dataset.version", "batch_items with dataset_field items need a V4 dataset (a schema); "
                             "dataset.version 3 makes a V3 one, which Prolific refuses them on",
                             "remove dataset.version: 3 (the default path), or write the seed's batch.instructions"))
        if self.dataset.version == 3 and self.dataset.csv.lower().endswith(".jsonl"):
            problems.append(("dataset.csv", "a V3 dataset takes .csv files only; JSONL needs a V4 dataset",
                             "remove dataset.version: 3 (the default path), or give a CSV file"))
        if self.dataset.version == 3 and self.dataset.column_types:
            problems.append(("dataset.column_types", "column types are part of a V4 dataset's schema",
                             "remove dataset.version: 3, or remove column_types"))
        problems += round_problems(self.adaptive, self.pilot, self.dataset.id_column, self._has_single_choice())
        later_round = ROUND_KEY_SUFFIX.search(self.name or "")
        if later_round:
            problems.append(("name", f"a name ending in -round-<number> is kept for the rounds of a job (round "
                             f"{later_round.group(1)} of job {self.name[:later_round.start()]!r} runs under {self.name!r}, "
                             "with its own record)", "choose a name that does not end in -round-<number>"))
        if (self.adaptive is not None or self.pilot is not None) and (self.bonus is not None or self.reject is not None):
            field = "bonus" if self.bonus is not None else "reject"
            problems.append((field, f"{field} works on a job of one study; adaptive and pilot run several studies",
                             f"remove {field}, or remove adaptive/pilot (pay or reject by hand after a job in rounds)"))
        if problems:
            raise fail(problems)
        return self

    def _has_single_choice(self) -> bool:
        choices = self.choice_instructions()  # the first is the one the rounds judge
        return bool(choices) and (getattr(choices[0], "answer_limit", None) or 1) == 1

    def _field_refs(self) -> set[str]:
        """The columns that `batch_items` show through dataset_field items."""
        return {item.field for page in self.batch.batch_items or [] for _, item in page.items()
                if isinstance(item, DatasetFieldRef)}

    # ---------------------------------------------------------------- loading

    @classmethod
    def from_dict(cls, data: Any, *, source: str | Path | None = None, base_dir: str | Path | None = None) -> "AnnotationJob":
        """Validate a spec mapping; relative paths resolve against `base_dir`. Raises `SpecError` (all problems)."""
        return validate_spec(cls, data, source=source, base_dir=base_dir)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "AnnotationJob":
        """Load a spec file. Paths in it resolve against its folder (s3:// kept). Raises `SpecError`."""
        path = Path(path)
        return cls.from_text(read_spec_file(path), source=path, base_dir=path.resolve().parent)

    @classmethod
    def from_text(cls, text: str, *, source: str | Path | None, base_dir: str | Path | None = None,
                  adjust: Callable[[dict], None] | None = None) -> "AnnotationJob":
        """Load a spec from YAML `text` (the strict reading of `taskbuilder/jobspec/strict_yaml.py`: no repeated
        keys, aliases capped, text as written); `adjust(data)` may change the parsed mapping before validation.
        Raises `SpecError` naming `source`, each problem with its field path and line."""
        return load_spec_text(cls, text, source=source, base_dir=base_dir, adjust=adjust, text_fields=is_study_text_field)

    # ---------------------------------------------------------------- derived values

    def participant_facing_text(self) -> dict[str, str]:
        """Field path → text of every field participants see: the task details, the instructions or
        batch_items (descriptions, options, content blocks), the study's name and description."""
        shown: dict[str, str] = {"study.name": self.study.name, "study.description": self.study.description}
        hidden = {"type", "field", "created_by", "content_format", "value", "display_position"}

        def walk(value: Any, path: str) -> None:
            if isinstance(value, str):
                shown[path] = value
            elif isinstance(value, dict):
                for key, item in value.items():
                    if key not in hidden:
                        walk(item, f"{path}.{key}")
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    walk(item, f"{path}[{i}]")

        batch = self.batch.model_dump(mode="json", exclude_none=True, include={"task_details", "instructions", "batch_items"})
        for key, value in batch.items():
            walk(value, f"batch.{key}")
        return shown

    def warnings(self) -> list[SpecProblem]:
        """Problems that do not stop the job: a reward per hour below `min_hourly_reward_cents`, and study fields
        the API doc does not list (they are sent to Prolific as written; API doc §6.1)."""
        found = []
        per_hour = self.study.reward / self.study.estimated_completion_time * 60
        if per_hour < self.min_hourly_reward_cents:
            found.append(SpecProblem(path="study.reward", message=f"reward per hour is {per_hour:.0f} cents "
                                     f"({self.study.reward} cents for {self.study.estimated_completion_time} min), below "
                                     f"min_hourly_reward_cents {self.min_hourly_reward_cents}",
                                     hint="raise study.reward or lower estimated_completion_time; Prolific flags underpaying studies"))
        found += [SpecProblem(path=name, message=f"{name} is no longer used: the account's cost calculator and the "
                              "draft study's own cost price the job (fees and VAT at the account's rates)",
                              hint=f"remove {name}; max_budget is checked against the account's figures")
                  for name in ("fee_rate", "vat_rate") if getattr(self, name) is not None]
        known = known_study_fields()
        found += [SpecProblem(path=f"study.{key}", message=f"{key} is not a study field the API documents; it is sent "
                              "to Prolific as written", hint="check the name against Prolific's study fields, or remove it")
                  for key in (self.study.model_extra or {}) if key not in known]
        return found

    def work_fingerprint(self, csv_sha256: str) -> str:
        """SHA-256 (hex) of what the job asks participants to do: the spec's work fields and the CSV's bytes.

        Run-control fields (publish, budget, output, thresholds, ...) and the CSV's location are left out:
        changing them keeps the fingerprint, so a job first run with `publish: false` can be published later.
        """
        work = self.model_dump(mode="json", exclude=set(RUN_CONTROL_FIELDS) | live.LIVE_RUN_CONTROL_FIELDS)
        work.update(live.quality_work(self.quality))
        work["dataset"].pop("csv")
        for name in ROUND_FIELDS:  # unset round fields leave the fingerprint (and job key) of older specs as it was
            if work.get(name) is None:
                work.pop(name, None)
        return hashlib.sha256(json.dumps([work, csv_sha256], sort_keys=True).encode()).hexdigest()

    def job_key(self, csv_sha256: str) -> str:
        """The job key: `name`, else `<batch name slug>-<12 hex>` from the spec's work fields and the CSV's SHA-256.

        Run-control fields (publish, budget, output, thresholds, ...) and the CSV's location are left out, so the
        same work on the same bytes keeps its key across runs.
        """
        if self.name:
            return self.name
        digest = self.work_fingerprint(csv_sha256)[:12]
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.batch.name.lower()).strip("-")
        slug = "-".join(part for part in slug.split("-") if part)[:40] or "job"
        return f"{slug}-{digest}"

    def choice_instructions(self) -> list:
        """Choice instructions (multiple_choice, multiple_choice_with_free_text) in order; the first is the gold target."""
        return [ins for ins in self.batch.ordered_instructions() if ins.type in CHOICE_TYPES]

    def required_columns(self) -> set[str]:
        """CSV columns the job needs: dataset_field references, the id, gold and attention-check columns (when set)."""
        columns = self._field_refs()
        columns.update(c for c in (self.dataset.id_column, self.dataset.gold_column,
                                   self.dataset.attention_check_column) if c)
        return columns
