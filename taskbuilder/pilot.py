"""The pilot's sample and its report (issue 19). No Prefect; :mod:`flows.pilot` runs the round.

Sample: ``datapoints`` rows, stratified by the gold column when the file has one (each gold value, the empty
one included, gets its share of the sample, largest remainders first), else a random sample; both seeded by
the job key, so a re-run draws the same rows. Report: Krippendorff's α per choice instruction (from the
aggregation), the median minutes per submission against ``estimated_completion_time``, the hourly reward at
that timing, Prolific's recommendation (``GET /reward-recommendations/``, §12 of the current facts), and the
account's price of the full job at the pilot's timing (the reward that pays the recommended hourly rate at
the median minutes). ``auto`` continues only when every α reaches ``min_agreement`` (an undefined α, every
answer the same, counts as agreement) and the time ratio is known and at most ``max_time_ratio``.
"""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from taskbuilder.cost import money
from taskbuilder.jsonl import is_jsonl

DONE_SUBMISSIONS = {"APPROVED", "AWAITING REVIEW"}


def sample_rows(upload_path: Path, id_column: str, gold_column: str | None, size: int, seed: str) -> list[str]:
    """``size`` row ids of the upload file (all when it has fewer), stratified by ``gold_column`` when given."""
    frame = (pd.read_json(upload_path, lines=True, dtype=False) if is_jsonl(upload_path)
             else pd.read_csv(upload_path, dtype=str, keep_default_na=False, encoding="utf-8"))
    ids = frame[id_column].astype(str).tolist()
    rng = random.Random(seed)
    if size >= len(ids):
        return ids
    if not gold_column or gold_column not in frame.columns:
        return sorted(rng.sample(ids, size), key=ids.index)
    strata: dict[str, list[str]] = {}
    for row_id, gold in zip(ids, frame[gold_column].astype(str)):
        strata.setdefault(gold, []).append(row_id)
    exact = {gold: size * len(members) / len(ids) for gold, members in strata.items()}
    share = {gold: int(value) for gold, value in exact.items()}
    for gold in sorted(exact, key=lambda g: (share[g] - exact[g], g))[: size - sum(share.values())]:
        share[gold] += 1
    chosen = {row_id for gold, members in sorted(strata.items()) for row_id in rng.sample(members, share[gold])}
    return [row_id for row_id in ids if row_id in chosen]


class PilotReport(BaseModel):
    """What the pilot measured. Money in cents, times in minutes, rates in cents per hour."""

    datapoints: int
    annotators_per_task: int
    krippendorff_alpha: dict[str, float | None]
    min_agreement: float
    median_minutes: float | None
    estimated_minutes: float
    time_ratio: float | None
    max_time_ratio: float
    reward_cents: int
    hourly_reward_cents: float | None
    recommended_hourly_cents: int | None
    min_hourly_cents: int | None
    reward_at_pilot_timing_cents: int | None
    full_job_places: int
    full_job_cost_cents: int | None
    passed: bool
    decision: str = ""
    currency_code: str = ""
    """The account's currency (the cost calculator's); empty in reports stored before it was kept: cents then."""

    def amount(self, cents: float | int | None, per: str = "") -> str:
        """``cents`` in the account's currency (``"1.20 GBP"``, ``per``: e.g. ``" an hour"``), else in cents;
        ``"unknown"`` for ``None``."""
        if cents is None:
            return "unknown"
        shown = money(round(cents), self.currency_code) if self.currency_code else f"{cents:.0f} cents"
        return shown + per

    def to_markdown(self) -> str:
        def show(value: object, unit: str = "") -> str:
            return "unknown" if value is None else (f"{figure(value)}{unit}" if isinstance(value, float) else f"{value}{unit}")

        lines = [f"- datapoints: {self.datapoints} × {self.annotators_per_task} annotators",
                 *(f"- Krippendorff's α of `{name}`: {show(alpha)} (continue at ≥ {self.min_agreement})"
                   for name, alpha in self.krippendorff_alpha.items()),
                 f"- median minutes per submission: {show(self.median_minutes)} against {self.estimated_minutes} estimated "
                 f"(ratio {show(self.time_ratio)}, continue at ≤ {self.max_time_ratio})",
                 f"- hourly reward at that timing: {self.amount(self.hourly_reward_cents, ' an hour')} (Prolific recommends "
                 f"{self.amount(self.recommended_hourly_cents)}, minimum {self.amount(self.min_hourly_cents)})",
                 f"- reward paying the recommended rate at the pilot's timing: {self.amount(self.reward_at_pilot_timing_cents)}",
                 f"- the full job ({self.full_job_places} places) at that reward: {self.amount(self.full_job_cost_cents)}",
                 f"- thresholds {'met' if self.passed else 'NOT met'}" + (f"; {self.decision}" if self.decision else "")]
        return "\n".join(lines)

    def unmet(self) -> list[str]:
        """The thresholds the pilot missed, each as a phrase with its figures (e.g. ``"time ratio 0.0011 >
        0.0001"``); empty when :func:`thresholds_met` holds."""
        missed = [f"α of {name!r} {figure(alpha)} < {self.min_agreement}"
                  for name, alpha in self.krippendorff_alpha.items() if alpha is not None and alpha < self.min_agreement]
        if self.time_ratio is None:
            missed.append("time ratio unknown (no finished submission reports its time)")
        elif self.time_ratio > self.max_time_ratio:
            missed.append(f"time ratio {figure(self.time_ratio)} > {self.max_time_ratio}")
        return missed


def figure(value: float | None) -> str:
    """A measured figure with the digits that matter: two decimals from 1 up, two significant digits below
    (``0.0011``, not ``0.00``); ``"unknown"`` for None."""
    if value is None:
        return "unknown"
    return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"


def pilot_timing(submissions: list[dict]) -> float | None:
    """Median minutes of the finished submissions' ``time_taken`` (seconds), or None when none has one."""
    taken = [s["time_taken"] for s in submissions if s.get("status") in DONE_SUBMISSIONS and s.get("time_taken") is not None]
    return statistics.median(taken) / 60 if taken else None


def reward_for_rate(rate_cents_per_hour: int | None, minutes: float | None) -> int | None:
    """The reward (whole cents, rounded up) that pays ``rate_cents_per_hour`` for ``minutes``."""
    if rate_cents_per_hour is None or minutes is None:
        return None
    return max(1, math.ceil(rate_cents_per_hour * minutes / 60))


def thresholds_met(alphas: dict[str, float | None], min_agreement: float, time_ratio: float | None, max_time_ratio: float) -> bool:
    """Every defined α ≥ ``min_agreement`` and a known ``time_ratio`` ≤ ``max_time_ratio``."""
    agree = all(alpha is None or alpha >= min_agreement for alpha in alphas.values())
    return agree and time_ratio is not None and time_ratio <= max_time_ratio
