"""Paying people right: the spec's `bonus` and `reject` fields (issue 21), checked before anything is created.

```yaml
bonus:                                  # either a rule ...
  per_submission_cents: 50              # cents per submission of a participant who qualifies
  when: {min_agreement: 0.8, min_gold_accuracy: 0.9}
bonus:                                  # ... or a file of your own
  csv: bonuses.csv                      # header participant_id,bonus_cents; one participant a line
reject:
  below_agreement: 0.3                  # any rule given rejects: agreement below this share,
  below_gold_accuracy: 0.5              # gold accuracy below this share,
  failed_attention_checks: 1            # or this many attention-check rows answered wrong (or more)
  category: FAILED_CHECK                # §5.7's rejection_category
  message: ...                          # shown to the participant; at least 100 characters (§5.7)
```

Bonuses are paid in the study's currency through §7 of ../shared/docs/prolific-api-current.md (amounts there are
decimals in major units; the spec's cents convert exactly, `50` → `0.50`, no rounding). Rejections use the
submission transition `REJECT` (§5.7) with `message` and `category` sent as written. Both are run control
(`PAYMENT_FIELDS`): they stay out of the job key, so a finished job can be re-run with a bonus added.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from taskbuilder.jobspec.base import SpecModel, fail, positive_whole_number, resolve_path
from taskbuilder.jobspec.hints import closest

REJECTION_CATEGORIES = ("TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK",
                        "LOW_EFFORT", "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_DEVICE", "OTHER")
"""``rejection_category`` values (§5.7, the CLI's list); the client's request model uses the same."""
REJECTION_MESSAGE_MIN_CHARS = 100
"""A REJECT's ``message`` is "at least 100 chars long" (§5.7)."""
PAYMENT_FIELDS = frozenset({"bonus", "reject"})
"""The spec's top-level fields of this module (run control: kept out of the job key)."""
BONUS_CSV_COLUMNS = ("participant_id", "bonus_cents")
"""The header of a `bonus.csv` file."""
_CENTS = re.compile(r"[0-9]+")
"""A bonus amount in the file: ASCII digits only (no sign, decimals, or other scripts' digits)."""
_OUTSIDE_ID = re.compile(r"^\s|\s$|[,\"\r\n]")
"""What a participant id may not hold: space at either end (Prolific would read ``p1`` and `` p1`` as one
participant, paid twice), or the comma, quote and line breaks of §7's ``csv_bonuses`` lines."""


class BonusCsvError(ValueError):
    """A `bonus.csv` file that cannot be paid from; the message names the file, line and column and what to do."""


def read_bonus_csv(path: str | Path) -> list[tuple[str, int]]:
    """`(participant_id, bonus_cents)` of each line of a bonus file (UTF-8 CSV, header `participant_id,bonus_cents`;
    cents whole and above 0; a participant once). Raises :class:`BonusCsvError` listing every bad line."""
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise BonusCsvError(f"{where}: cannot be read as a UTF-8 CSV ({error}); give bonus.csv as a file of lines "
                            "participant_id,bonus_cents") from None
    if not rows or [cell.strip() for cell in rows[0]] != list(BONUS_CSV_COLUMNS):
        raise BonusCsvError(f"{where}: line 1: the header must be {','.join(BONUS_CSV_COLUMNS)} (amounts in whole cents "
                            "of the study's currency), got {!r}; fix the file's first line".format(",".join(rows[0]) if rows else ""))
    lines, problems, seen = [], [], {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            problems.append(f"line {number}: {len(row)} columns, expected 2 ({','.join(BONUS_CSV_COLUMNS)})")
            continue
        participant, amount = row[0], row[1].strip()
        if not participant.strip():
            problems.append(f"line {number}, column participant_id: empty; write the participant's Prolific id")
        elif _OUTSIDE_ID.search(participant):
            problems.append(f"line {number}, column participant_id: {participant!r} has spaces at an end, a comma, a "
                            "quote or a line break; write the participant's Prolific id alone")
            continue
        elif participant in seen:
            problems.append(f"line {number}, column participant_id: {participant!r} is also on line {seen[participant]}; "
                            "give each participant one line with the whole amount")
        whole = bool(_CENTS.fullmatch(amount)) and int(amount) >= 1
        if not whole:
            problems.append(f"line {number}, column bonus_cents: {amount!r} is not a whole number of cents above 0 "
                            "(write 150 for 1.50)")
        if participant.strip() and participant not in seen and whole:
            seen[participant] = number
            lines.append((participant, int(amount)))
    if problems:
        raise BonusCsvError(f"{where}: " + "; ".join(problems))
    if not lines:
        raise BonusCsvError(f"{where}: no bonus lines after the header; add participant_id,bonus_cents lines or remove bonus")
    return lines


class BonusWhen(SpecModel):
    """Who qualifies for `per_submission_cents`: every threshold given must be met (a participant without a
    figure, e.g. no gold rows answered, does not meet it)."""

    min_agreement: float | None = Field(default=None, ge=0, le=1, description="Agreement with the majority, at least this share.")
    min_gold_accuracy: float | None = Field(default=None, ge=0, le=1, description="Accuracy on gold rows, at least this share.")


class BonusSpec(SpecModel):
    """`bonus`: `per_submission_cents` (with `when`) or `csv` (a file of participant ids and cents), not both."""

    per_submission_cents: int | None = Field(
        default=None, ge=1, description="Bonus in cents for each submission (not rejected, not returned) of a participant who qualifies.")
    when: BonusWhen | None = Field(default=None, description="Thresholds a participant must meet; none given = everyone.")
    csv: str | None = Field(
        default=None, description="A CSV file (relative to the spec) with header participant_id,bonus_cents: exactly these are paid.")

    @field_validator("per_submission_cents", mode="before")
    @classmethod
    def _whole_cents(cls, value: Any) -> Any:
        return value if value is None else positive_whole_number(
            value, "per_submission_cents", "write the bonus in whole cents, e.g. 50 for 0.50", "give 1 cent or more, or remove bonus")

    @field_validator("csv", mode="after")
    @classmethod
    def _resolve_and_read(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if value.startswith("s3://"):  # an s3:// spec's relative bonus file points here too (launch-from-spec)
            raise fail([("", f"{value}: a bonus file is read from the disk of the machine that runs the job, not from S3",
                         "give bonus.csv as an absolute path on that machine, or use per_submission_cents")])
        value = resolve_path(value, info)
        if info.context is not None:  # a spec being loaded from a file: its bonus file is read now
            try:
                read_bonus_csv(value)
            except BonusCsvError as error:
                raise fail([("", str(error), "fix the bonus file, or remove bonus.csv")]) from None
        return value

    @model_validator(mode="after")
    def _one_form(self) -> "BonusSpec":
        if (self.per_submission_cents is None) == (self.csv is None):
            raise fail([("", "give per_submission_cents (with when) or csv, exactly one",
                         "write bonus: {per_submission_cents: 50, when: {min_agreement: 0.8}} or bonus: {csv: bonuses.csv}")])
        if self.csv is not None and self.when is not None:
            raise fail([("when", "when applies to per_submission_cents; a csv names who is paid", "remove when, or csv")])
        return self


class RejectSpec(SpecModel):
    """`reject`: the rules that reject a participant's submissions awaiting review (any rule given), and the
    reason Prolific requires (§5.7): `category` and a `message` of at least 100 characters."""

    below_agreement: float | None = Field(default=None, ge=0, le=1, description="Reject agreement below this share.")
    below_gold_accuracy: float | None = Field(default=None, ge=0, le=1, description="Reject gold accuracy below this share.")
    failed_attention_checks: int | None = Field(
        default=None, ge=1, description="Reject this many attention-check rows answered wrong, or more.")
    category: str = Field(description=f"The rejection_category (§5.7): one of {', '.join(REJECTION_CATEGORIES)}.")
    message: str = Field(description=f"Shown to the participant, as written; at least {REJECTION_MESSAGE_MIN_CHARS} characters.")

    @field_validator("failed_attention_checks", mode="before")
    @classmethod
    def _whole_count(cls, value: Any) -> Any:
        return value if value is None else positive_whole_number(
            value, "failed_attention_checks", "write a number of rows, e.g. 1", "give 1 or more, or remove the rule")

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in REJECTION_CATEGORIES:
            near = closest(value, list(REJECTION_CATEGORIES))
            raise fail([("", f"category {value!r} is not a rejection category Prolific documents",
                         f"write {near}" if near else f"write one of {', '.join(REJECTION_CATEGORIES)}")])
        return value

    @field_validator("message")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value.strip()) < REJECTION_MESSAGE_MIN_CHARS:
            raise fail([("", f"the message has {len(value.strip())} characters; Prolific requires at least "
                             f"{REJECTION_MESSAGE_MIN_CHARS} for a rejection (§5.7)",
                         "tell the participant what was wrong and why, in at least 100 characters")])
        return value

    @model_validator(mode="after")
    def _some_rule(self) -> "RejectSpec":
        if self.below_agreement is None and self.below_gold_accuracy is None and self.failed_attention_checks is None:
            raise fail([("", "no rule: nobody would be rejected",
                         "give below_agreement, below_gold_accuracy or failed_attention_checks, or remove reject")])
        return self


def bonus_field() -> Any:
    """The `bonus` field of the job spec (see the module docstring)."""
    return Field(default=None, description="Bonuses: {per_submission_cents, when: {min_agreement, min_gold_accuracy}} or {csv}.")


def reject_field() -> Any:
    """The `reject` field of the job spec (see the module docstring)."""
    return Field(default=None, description="Reject flagged submissions: rules, category and a message of 100+ characters.")
