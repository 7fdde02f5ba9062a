"""The pilot round of a job (issue 19): its sample, its report and the decision to go on.

The pilot is round 1 (under the job key) on a sample of the rows (:func:`taskbuilder.pilot.sample_rows`), with
the job's layout and ``pilot.annotators_per_task``. After it: its report (:class:`taskbuilder.pilot.PilotReport`,
also a markdown artifact ``pilot-report``), then ``then``: ``auto`` goes on when the thresholds hold, ``stop``
ends, ``approval`` asks a reviewer in Prefect with the report. Going on, the main round asks the other rows,
and the pilot's rows only for the answers they lack (a round of their own, keeping the pilot's participants out).
"""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment

from taskbuilder.cost import counted, money, task_group_count
from taskbuilder.pilot import PilotReport, figure, pilot_timing, reward_for_rate, sample_rows, thresholds_met
from taskbuilder.report import CHOICE_TYPES
from taskbuilder.rounds import write_subset

from flows.approval import mark_awaiting_review
from flows.job_round import JobRun, RoundPlan
from tasks.logs import run_logger
from tasks.pilot_figures import price_places, reward_recommendation
from tasks.records import load_job_record, now_iso, update_job_record
from tasks.results import instruction_payloads
from tasks.studies import list_submissions

PILOT_KEY = "pilot-report"


class PilotApproval(RunInput):
    """The reviewer's answer after the pilot: go on with the rest of the job or not."""

    approve: bool
    reviewer: str = "unknown"
    comment: str = ""


def pilot_plan(run: JobRun, upload_path: Any) -> RoundPlan:
    """Round 1 of a job with a pilot: the sampled rows (their records as uploaded), ``pilot.annotators_per_task``."""
    job = run.job
    ids = sample_rows(upload_path, job.dataset.id_column, job.dataset.gold_column, job.pilot.datapoints, run.job_key)
    path = run.work_dir / "round-1" / upload_path.name
    rows = write_subset(upload_path, job.dataset.id_column, ids, path)
    return RoundPlan(run.job_key, 1, "pilot", path, rows, job.pilot.annotators_per_task)


def main_annotators(run: JobRun) -> int:
    """Answers per datapoint the main round asks (``adaptive.start_annotators``, else ``annotators_per_task``)."""
    return run.job.adaptive.start_annotators if run.job.adaptive else run.job.study.annotators_per_task


def pilot_report(run: JobRun, plan: RoundPlan, study_id: str, result: Any, currency_code: str) -> PilotReport:
    """The pilot's figures (see :mod:`taskbuilder.pilot`) from its aggregation ``result`` and its submissions;
    money shown in ``currency_code`` (the account's, from the round's price)."""
    job, pilot = run.job, run.job.pilot
    alphas = {ins["description"]: stats.get("krippendorff_alpha")
              for ins, stats in zip((i for i in instruction_payloads(job) if i["type"] in CHOICE_TYPES), result.summary["instructions"])}
    minutes = pilot_timing(list_submissions(run.connection, study_id))
    estimated = float(job.study.estimated_completion_time)
    ratio = minutes / estimated if minutes is not None else None
    rates = reward_recommendation(run.connection, run.workspace_id)
    reward_then = reward_for_rate(rates["recommended"] if rates else None, minutes)
    places = task_group_count(run.report.rows, job.batch.tasks_per_group) * main_annotators(run)
    return PilotReport(
        datapoints=plan.rows, annotators_per_task=plan.annotators_per_task, krippendorff_alpha=alphas,
        min_agreement=pilot.min_agreement, median_minutes=minutes, estimated_minutes=estimated, time_ratio=ratio,
        max_time_ratio=pilot.max_time_ratio, reward_cents=job.study.reward,
        hourly_reward_cents=job.study.reward / minutes * 60 if minutes else None,
        recommended_hourly_cents=rates["recommended"] if rates else None, min_hourly_cents=rates["min"] if rates else None,
        reward_at_pilot_timing_cents=reward_then, full_job_places=places,
        full_job_cost_cents=price_places(run.connection, reward_then, places) if reward_then else None,
        passed=thresholds_met(alphas, pilot.min_agreement, ratio, pilot.max_time_ratio), currency_code=currency_code,
    )


def go_on(run: JobRun, report: PilotReport) -> bool:
    """Decide after the pilot (``pilot.then``), once per job: the decision is written into ``report.decision`` and
    stored in the job record (``pilot_decision``: ``{go_on, decision, at}``), where a re-run or the next collect
    finds it (a reviewer is asked once). With ``approval`` the job record says that this flow run waits for the
    reviewer (``awaiting_review``) while it does."""
    job_key, base_url = run.job_key, run.connection.base_url
    stored = (load_job_record(job_key, base_url) or {}).get("pilot_decision")
    if stored:
        report.decision = stored["decision"]
        return bool(stored["go_on"])
    then = run.job.pilot.then
    if then == "stop":
        report.decision = "then: stop, the job ends after the pilot"
    elif then == "auto":
        report.decision = "then: auto, " + ("going on" if report.passed else "the job ends after the pilot")
    create_markdown_artifact(key=PILOT_KEY, markdown=f"# Pilot of job {job_key}\n\n{report.to_markdown()}", description="The pilot's report")
    going = then == "auto" and report.passed
    if then == "approval":
        wanted = PilotApproval.with_initial_data(description=f"Go on after the pilot?\n\n{report.to_markdown()}", approve=False)
        mark_awaiting_review(job_key, base_url, "the pilot's report (go on after the pilot?)")
        if deployment.id:
            answer = suspend_flow_run(wait_for_input=wanted, timeout=7 * 24 * 3600, key=PILOT_KEY)
        else:
            answer = pause_flow_run(wait_for_input=wanted, timeout=7 * 24 * 3600, poll_interval=2, key=PILOT_KEY)
        report.decision = f"then: approval, {answer.reviewer} {'approved' if answer.approve else 'declined'}: {answer.comment}"
        going = bool(answer.approve)
    update_job_record(job_key, base_url, pilot_decision={"go_on": going, "decision": report.decision, "at": now_iso()},
                      awaiting_review=None)
    run_logger().info("%s", pilot_sentence(report))
    return going


def pilot_sentence(report: PilotReport) -> str:
    """The pilot's figures and decision as one plain sentence (the run's log): α per choice instruction, the
    median minutes against the estimate, the hourly reward at that timing, the full job's price at the pilot's
    timing, which threshold failed (if one did) and the decision. Money in the account's currency (cents in a
    report stored before it kept the currency)."""
    alphas = ", ".join(f"α of {name!r} {'undefined' if alpha is None else figure(alpha)}"
                       for name, alpha in report.krippendorff_alpha.items())
    hourly, price = report.amount(report.hourly_reward_cents, " an hour"), report.amount(report.full_job_cost_cents)
    unmet = report.unmet()
    verdict = "thresholds met" if not unmet else "thresholds not met: " + "; ".join(unmet)
    return (f"Pilot (round 1): {report.datapoints:,} datapoints × {report.annotators_per_task} answers; {alphas} "
            f"(goes on at ≥ {report.min_agreement}); median {figure(report.median_minutes)} minutes per submission "
            f"against {report.estimated_minutes} estimated, a time ratio of {figure(report.time_ratio)} (goes on at ≤ "
            f"{report.max_time_ratio}); hourly reward {hourly}; the full job ({report.full_job_places} places) at the "
            f"pilot's timing {price}; {verdict}; {report.decision}.")


def pilot_stop(then: str, report: PilotReport, not_asked: int) -> str:
    """Why the job ended after its pilot (the summary's ``stopped``): the spec's ``then: stop``, the thresholds
    missed (``auto``) or the reviewer's answer (``approval``), and how many datapoints were never asked."""
    if then == "stop":
        why = "ended by the spec (pilot.then: stop)"
    elif then == "auto":
        why = "thresholds not met (" + "; ".join(report.unmet()) + ")"
    else:
        why = f"the reviewer did not approve ({report.decision})"
    asked = f"; {counted(not_asked, 'datapoint')} not asked" if not_asked else ""
    return f"ended after the pilot: {why}{asked}"


def after_pilot(run: JobRun, upload_path: Any, pilot: RoundPlan, pilot_study_id: str, pilot_ids: list[str]) -> list[RoundPlan]:
    """The main round (the other rows, :func:`main_annotators` each) and, when the pilot asked fewer, a round
    of the pilot's rows for the answers they lack, keeping the pilot's participants out."""
    job, wanted = run.job, main_annotators(run)
    rest = [row for row in sample_rows(upload_path, job.dataset.id_column, None, run.report.rows, run.job_key) if row not in set(pilot_ids)]
    plans = []
    number = pilot.number + 1
    if rest:
        path = run.work_dir / f"round-{number}" / upload_path.name
        plans.append(RoundPlan(run.job_key, number, "main", path, write_subset(upload_path, job.dataset.id_column, rest, path), wanted))
        number += 1
    if wanted > pilot.annotators_per_task:
        path = run.work_dir / f"round-{number}" / upload_path.name
        rows = write_subset(upload_path, job.dataset.id_column, pilot_ids, path)
        plans.append(RoundPlan(run.job_key, number, "main", path, rows, wanted - pilot.annotators_per_task, (pilot_study_id,)))
    return plans


def pilot_cost_warning(run: JobRun, pilot: RoundPlan, currency_code: str) -> str | None:
    """A warning, before anything is created, when the pilot's rounds (the pilot, the other rows, the pilot rows'
    top-up) need more places than the job without a pilot (task groups split badly: a last, smaller group costs
    full places, twice over with the top-up), with both figures priced by the account's calculator
    (``POST /api/v1/study-cost-calculator/``, §5.6); None when they need no more."""
    job, size = run.job, run.job.batch.tasks_per_group
    wanted, rest = main_annotators(run), run.report.rows - pilot.rows
    pilot_groups = task_group_count(pilot.rows, size)
    with_pilot = (pilot_groups * pilot.annotators_per_task + task_group_count(rest, size) * wanted
                  + pilot_groups * max(0, wanted - pilot.annotators_per_task))
    plain = task_group_count(run.report.rows, size) * wanted
    if with_pilot <= plain:
        return None
    reward = job.study.reward
    cost_with, cost_plain = price_places(run.connection, reward, with_pilot), price_places(run.connection, reward, plain)
    warning = (f"the pilot makes the job cost more: with it the pilot, main and top-up rounds need {with_pilot} places "
               f"({money(cost_with, currency_code)}), without it the job needs {plain} places ({money(cost_plain, currency_code)}): "
               f"the pilot's {pilot.rows} datapoints and the {rest} others fill task groups of {size} (tasks_per_group) "
               "less well, and a smaller last group costs full places, in the pilot and again in its top-up. Pick "
               f"pilot.datapoints a multiple of {size} to pay no more.")
    run_logger().warning("%s", warning)
    return warning
