"""A job in rounds (issue 19): adaptive overlap, and a pilot before it, each round an ordinary exactly-once
part of the job (:mod:`flows.job_round`).

Adaptive overlap (``adaptive``): round 1 asks ``start_annotators`` per datapoint; after each round every
answer so far is aggregated (:mod:`tasks.round_results`) and the datapoints below ``target_confidence``
(:mod:`taskbuilder.rounds`) that have fewer than ``max_annotators`` answers go into a follow-up round asking
one more annotator each. A follow-up round has its own dataset of those rows (the rows' bytes as uploaded),
batch and study; its study keeps out the participants of every earlier round (``previous_studies_blocklist``,
§12), and it is priced by the account's calculator first against what is left of ``max_budget``: a round that
would pass it is not launched (the summary lists the datapoints that stayed below the target).

A re-run finds each round's resources under its round key and publishes nothing twice; the rounds that are
done are collected again (their reports are read again), so a crash between rounds resumes at the next one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskbuilder.aggregate import select_submissions_to_approve
from taskbuilder.cost import BalanceTooLow, BudgetExceeded, JobPrice, counted, money
from taskbuilder.pilot import sample_rows
from taskbuilder.report import CHOICE_TYPES
from taskbuilder.rounds import below_target, confidence_rule, label_confidence, write_subset

from flows.job_finish import base_summary, finish_job
from flows.pilot import after_pilot, go_on, pilot_cost_warning, pilot_plan, pilot_report, pilot_stop
from flows.job_round import (JobRun, PublishRejected, RoundPlan, collect_round, draft_round, price_round, publish_gate,
                             published_before)
from tasks.job_spending import read_rounds_spending
from tasks.payments import read_spending
from tasks.logs import run_logger
from tasks.quality import update_blocklist_group
from tasks.records import load_job_record, update_job_record
from tasks.results import instruction_payloads, write_results
from tasks.round_results import aggregate_rounds, read_round_report
from tasks.studies import STUDY_DONE, approve_submissions, list_submissions, read_study_status


def run_rounds(run: JobRun, upload_path: Path, wait: bool, first_published_before: bool, advance: bool = False) -> dict[str, Any]:
    """Run the job's rounds and write the merged outputs; return the run summary (as
    :func:`flows.annotation_batch.annotation_batch`, its ids those of round 1) with ``rounds``: a list of
    ``{kind, number, study_id, datapoints, annotators_per_task, cost_cents}``, ``total_cost_cents``,
    ``below_target`` (row ids whose label stayed below ``target_confidence``), ``stopped`` (why the job ended before
    its last round: the pilot's decision, or a round refused for budget or by its reviewer; None when it ran to the
    end), ``payments.spent`` (added over every round's study) and, with a pilot, ``pilot`` (its report).

    ``wait`` false (a launch that does not wait): round 1 is published and the run ends. ``advance`` (the collect
    path, :mod:`flows.rounds_collect`): the rounds are walked without waiting; each finished round is collected,
    the next one decided, priced, made and published, and the run ends at the first round still running
    (``waiting_for_round``: its number) or, after the last, with the job's outputs. The round being run is the
    job record's ``current_round`` (what the study monitor watches). Raises as the single round does
    (``CostRefused`` for round 1, ``PublishRejected``, typed API errors, ``ReportNotParsed``); a later round that
    its cost check or its reviewer refuses ends the job with the earlier rounds' outputs."""
    job, connection = run.job, run.connection
    if job.pilot is not None:
        plan = pilot_plan(run, upload_path)
    else:
        plan = RoundPlan(run.job_key, 1, "main", upload_path, run.report.rows, job.adaptive.start_annotators)
    price = price_round(run, plan, job.max_budget, first_published_before)
    run_logger().info("%s", round_sentence(job, plan, price, job.max_budget))
    warning = pilot_cost_warning(run, plan, price.currency_code) if plan.kind == "pilot" else None  # before any create
    draft = draft_round(run, plan)
    summary = base_summary(run.job_key, run.version, draft, price)
    summary["notes"] = [warning] if warning else []

    def refuse(note: str) -> None:
        summary["notes"] = [*summary.get("notes", []), note]
        finish_job(summary, run.job_key, connection, run.destination, run.work_dir)

    if not publish_gate(run, plan, draft, price, summary, refuse):
        return finish_job(summary, run.job_key, connection, run.destination, run.work_dir)
    summary["published"] = True
    watch_round(run, plan, draft, [])
    if not wait and not advance:
        run_logger().info("Study %s published; not waiting (wait_for_completion is false): collect-report collects each "
                          "round when the study monitor or a webhook sees it finish, and launches the next", draft.study_id)
        return finish_job(summary, run.job_key, connection, run.destination, run.work_dir)

    rounds: list[dict[str, Any]] = []
    parsed: list[tuple[int, Any]] = []
    batches: list[tuple[int, str]] = []
    costs: dict[str, Any] = summary
    queue: list[RoundPlan] = []
    stay: list[str] = []
    stopped = None
    while True:
        if advance and read_study_status(connection, draft.study_id) not in STUDY_DONE:
            summary.update(rounds=rounds, waiting_for_round=plan.number)
            run_logger().info("Round %d (study %s) is running: collect-report goes on when it finishes", plan.number, draft.study_id)
            return finish_job(summary, run.job_key, connection, run.destination, run.work_dir)
        report_path, kept_at = collect_round(run, plan, draft, list(parsed))
        summary["outputs"][plan.report_name] = kept_at
        parsed.append((plan.number, read_round_report(job, report_path, kept_at, list(run.report.columns))))
        batches.append((plan.number, draft.batch_id))
        rounds.append(_round_entry(plan, draft.study_id, costs, price))
        update_job_record(run.job_key, connection.base_url, rounds=rounds)
        responses, result = aggregate_rounds(job, parsed, kept_at)
        if plan.kind == "pilot":
            report = pilot_report(run, plan, draft.study_id, result, price.currency_code)
            going_on = go_on(run, report)
            summary["pilot"] = report.model_dump()
            if not going_on:
                stopped = pilot_stop(job.pilot.then, report, run.report.rows - plan.rows)
                run_logger().warning("The job ends: %s", stopped)
                summary["notes"].append(stopped)
                break
            pilot_ids = parsed[0][1].datapoints[_id_column(job, parsed[0][1])].astype(str).tolist()
            queue = after_pilot(run, upload_path, plan, draft.study_id, pilot_ids)
        if not queue and job.adaptive is not None:
            again, stay = _below_target(job, responses, result)
            if again:
                queue = [_next_plan(run, upload_path, plan.number + 1, again, tuple(entry["study_id"] for entry in rounds))]
            else:
                run_logger().info("%s", last_round_sentence(job, plan.number, len(stay)))
        if not queue:
            break
        plan = queue.pop(0)
        left = job.max_budget - read_rounds_spending(connection, rounds)  # places added by add-places count too
        try:
            published = published_before(plan.key, connection)
            price = price_round(run, plan, left, True)  # priced only: the round's own check, against what is left, follows
            if not published:
                refuse_round_over_budget(plan, price, job.max_budget, left)
            run_logger().info("%s", round_sentence(job, plan, price, left))
            draft = draft_round(run, plan)
            costs = {"cost": {"quote": price.model_dump()}}
            publish_gate(run, plan, draft, price, costs, lambda note: None)
        except (BudgetExceeded, BalanceTooLow, PublishRejected) as refusal:
            stopped = f"round {plan.number} ({plan.kind}, {plan.rows} datapoints) was not launched: {refusal}"
            run_logger().warning("The job ends with the rounds it has: %s", stopped)
            summary["notes"].append(stopped)
            stay = stay + _row_ids(plan, job)
            break
        watch_round(run, plan, draft, batches)

    update_blocklist_group(connection, run.job_key, run.workspace_id, job.quality, result.participants)  # live
    submissions = _approve_and_list(run, [entry["study_id"] for entry in rounds], result)
    total = sum(entry["cost_cents"] for entry in rounds)
    extra: dict[str, Any] = {"rounds": rounds, "total_cost_cents": total, "below_target": sorted(set(stay)), "stopped": stopped}
    if "pilot" in summary:
        extra["pilot"] = summary["pilot"]
    result.summary.update(extra)
    summary["outputs"].update(write_results(responses, result, submissions, run.destination, job, summary["cost"]))
    summary.update(extra)
    summary["payments"] = {"bonus": None, "rejected_submissions": [],
                           "spent": rounds_spent(connection, [entry["study_id"] for entry in rounds], run.workspace_id)}
    return finish_job(summary, run.job_key, connection, run.destination, run.work_dir)


def round_sentence(job: Any, plan: RoundPlan, price: JobPrice, left_cents: int) -> str:
    """The round about to be made, as one plain sentence for the run's log: which datapoints get how many
    answers, the account's price, and what is left of ``max_budget`` after it."""
    answers = plan.annotators_per_task
    each = f"{counted(answers, 'answer')} each"
    if plan.kind == "followup":
        what = f"{plan.rows:,} datapoints below {job.adaptive.target_confidence} get {counted(answers, 'more answer')} each"
    elif plan.kind == "main" and plan.blocked_study_ids:
        what = f"the pilot's {plan.rows:,} datapoints get the {each} they lack (the pilot's participants kept out)"
    elif plan.kind == "main" and plan.number > 1:
        what = f"the {plan.rows:,} datapoints not in the pilot get {each}"
    else:
        what = f"{plan.rows:,} datapoints get {each} ({plan.kind})"
    quote = price.quote_cents
    return (f"Round {plan.number}: {what}; priced {money(quote, price.currency_code)}, "
            f"{money(left_cents - quote, price.currency_code)} left of max_budget")


def refuse_round_over_budget(plan: RoundPlan, price: JobPrice, max_budget_cents: int, left_cents: int) -> None:
    """Raise :class:`BudgetExceeded` when round ``plan`` (a follow-up or main round after round 1) costs more
    than what is left of ``max_budget``, saying the round's price, what is left, the spec's ``max_budget`` and
    what the earlier rounds spent."""
    if price.quote_cents <= left_cents:
        return
    unit = price.currency_code
    places = counted(price.places, "place")
    raise BudgetExceeded(
        f"round {plan.number} costs {money(price.quote_cents, unit)} ({places}, fees and VAT included); "
        f"{money(left_cents, unit)} of max_budget {money(max_budget_cents, unit)} is left "
        f"({money(max_budget_cents - left_cents, unit)} spent by earlier rounds): nothing of round {plan.number} was "
        "created. Raise max_budget in the job spec and run the job again to launch it.")


def last_round_sentence(job: Any, number: int, staying: int) -> str:
    """The adaptive decision that ends the rounds, for the run's log: no datapoint to ask again."""
    target, most = job.adaptive.target_confidence, job.adaptive.max_annotators
    if not staying:
        return f"Round {number}: no datapoint below {target} with fewer than {most} answers; done"
    return (f"Round {number}: {staying:,} datapoint{'s stay' if staying != 1 else ' stays'} below {target} with "
            f"{most} answers (max_annotators); no datapoint to ask again; done")


def rounds_spent(connection: Any, study_ids: list[str], workspace_id: str) -> dict[str, Any]:
    """What the job's rounds spent, added over their studies as the account reports each (``GET
    /api/v1/studies/{id}/cost/``, §5.5, via :func:`tasks.payments.read_spending`): ``{rewards_cents, fees_cents,
    tax_cents, bonuses_cents, currency}``, the run summary's ``payments.spent``."""
    names = ("rewards_cents", "fees_cents", "tax_cents", "bonuses_cents")
    spent: dict[str, Any] = dict.fromkeys(names, 0)
    for study_id in study_ids:
        figures = read_spending(connection, study_id, workspace_id)
        spent = {**{name: spent[name] + int(figures[name] or 0) for name in names}, "currency": figures["currency"]}
    return spent


def watch_round(run: JobRun, plan: RoundPlan, draft: Any, collected: list[tuple[int, str]]) -> None:
    """Make round ``plan`` the job record's ``current_round`` (``{number, key, kind, study_id, batch_id,
    earlier_batches}``: the study the monitor watches, and the batches of the rounds before it, for partial
    results), unless the record is at that round or a later one already (a re-run walking the rounds)."""
    current = (load_job_record(run.job_key, run.connection.base_url) or {}).get("current_round") or {}
    if current.get("number", 0) > plan.number or current.get("study_id") == draft.study_id:
        return
    update_job_record(run.job_key, run.connection.base_url, current_round={
        "number": plan.number, "key": plan.key, "kind": plan.kind, "study_id": draft.study_id, "batch_id": draft.batch_id,
        "earlier_batches": [[number, batch_id] for number, batch_id in collected]})


def _id_column(job: Any, parsed: Any) -> str:
    """The id column's name in a parsed report (the outputs may rename it)."""
    return parsed.column_names.get(job.dataset.id_column, job.dataset.id_column)


def _row_ids(plan: RoundPlan, job: Any) -> list[str]:
    """The row ids in a round's file."""
    return sample_rows(plan.upload_path, job.dataset.id_column, None, plan.rows, "all")


def _round_entry(plan: RoundPlan, study_id: str, costs: dict[str, Any], price: JobPrice) -> dict[str, Any]:
    """The summary's entry of a collected round; ``cost_cents`` is the checked cost before PUBLISH, or the
    account's quote when the study was published by an earlier run."""
    checked = (costs.get("cost") or {}).get("checked")
    return {"kind": plan.kind, "number": plan.number, "study_id": study_id, "datapoints": plan.rows,
            "annotators_per_task": plan.annotators_per_task,
            "cost_cents": int(checked["checked_cents"]) if checked else int(price.quote_cents)}


def _below_target(job: Any, responses: Any, result: Any) -> tuple[list[str], list[str]]:
    """``(ask_again, stay_below)`` as row ids (``dataset.id_column``): the datapoints whose label of the first
    choice instruction is below ``adaptive.target_confidence``, with fewer / with ``max_annotators`` answers."""
    description = next(ins["description"] for ins in instruction_payloads(job) if ins["type"] in CHOICE_TYPES)
    confidence = label_confidence(result.labels, description, confidence_rule(responses, description), responses)
    again, stay = below_target(confidence, job.adaptive.target_confidence, job.adaptive.max_annotators)
    labels, id_column = result.labels, job.dataset.id_column
    column = id_column if id_column in labels.columns else f"{id_column}_original"
    row_of = dict(zip(labels["datapoint_id"].astype(str), labels[column].astype(str)))
    return [row_of[d] for d in again], [row_of[d] for d in stay]


def _next_plan(run: JobRun, upload_path: Path, number: int, row_ids: list[str], blocked: tuple[str, ...]) -> RoundPlan:
    """Follow-up round ``number``: the rows ``row_ids`` of the job's upload file (their records' bytes as
    uploaded), one annotator each, the participants of the studies ``blocked`` kept out."""
    path = run.work_dir / f"round-{number}" / upload_path.name
    rows = write_subset(upload_path, run.job.dataset.id_column, row_ids, path)
    return RoundPlan(run.job_key, number, "followup", path, rows, 1, blocked)


def _approve_and_list(run: JobRun, study_ids: list[str], result: Any) -> list[dict[str, Any]]:
    """Every round's submissions (approving, when the spec says so, those the aggregation does not flag)."""
    submissions = []
    for study_id in study_ids:
        listed = list_submissions(run.connection, study_id)
        if run.job.approve_submissions:
            approve_submissions(run.connection, study_id, select_submissions_to_approve(listed, result.participants))
            listed = list_submissions(run.connection, study_id)
        submissions += listed
    return submissions
