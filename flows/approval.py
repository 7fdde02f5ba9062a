"""Human approval before publishing: the flow run waits for a reviewer's decision in Prefect.

From a deployment the run is *suspended* (``suspend_flow_run``): the worker is freed, and on resume
the flow runs again from the top, earlier steps coming back from their cache and state checks
(``prefect-notes.md`` §3). Run locally (no deployment) it *pauses* (``pause_flow_run``) and the
process waits. Resume from the Prefect UI form, ``prefect.flow_runs.resume_flow_run(id,
run_input={"approve": true, "reviewer": "..."})`` or ``POST /api/flow_runs/{id}/resume``.
"""

from __future__ import annotations

import os

from typing import Any

from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.input.actions import read_flow_run_input
from prefect.runtime import deployment, flow_run

from taskbuilder.cost import PublishCost

from tasks.records import now_iso, update_job_record

APPROVAL_KEY = "publish-approval"
APPROVAL_TIMEOUT_SECONDS = int(os.environ.get("TASKBUILDER_APPROVAL_TIMEOUT_SECONDS", str(7 * 24 * 3600)))


class PublishApproval(RunInput):
    """The reviewer's answer: publish the study or not."""

    approve: bool
    reviewer: str = "unknown"
    comment: str = ""


def request_publish_approval(study_id: str, cost: PublishCost) -> PublishApproval:
    """Wait for a reviewer to approve or reject publishing ``study_id``; return their answer.

    The account's figures (the calculator's quote, the draft study's own cost, the largest of them checked
    against ``max_budget``, and the balance that pays; :class:`taskbuilder.cost.PublishCost`) are shown in a
    markdown artifact (key ``publish-approval``) and in the form's description. A suspended run resumed by
    the reviewer runs again from the top: the answer already given is read back (no second "Waiting" artifact,
    no "Suspending flow run" log). Raises Prefect's pause-timeout error when nobody answers within
    ``TASKBUILDER_APPROVAL_TIMEOUT_SECONDS`` (default 7 days).
    """
    given = _answer_given()
    if given is not None:
        return given
    description = f"Publish study {study_id}?\n\n{cost.to_markdown()}"
    create_markdown_artifact(key=APPROVAL_KEY, markdown=f"# Approval needed\n\n{description}", description="Waiting for a reviewer")
    wanted = PublishApproval.with_initial_data(description=description, approve=False)
    if deployment.id:
        return suspend_flow_run(wait_for_input=wanted, timeout=APPROVAL_TIMEOUT_SECONDS, key=APPROVAL_KEY)
    return pause_flow_run(wait_for_input=wanted, timeout=APPROVAL_TIMEOUT_SECONDS, poll_interval=2, key=APPROVAL_KEY)


def _answer_given() -> PublishApproval | None:
    """The reviewer's answer this flow run already holds (a resumed suspension), else None. The input's key
    is Prefect's ``<state name>-<pause key>-response`` (``prefect.input.run_input.keyset_from_paused_state``)."""
    if not (deployment.id and flow_run.id):
        return None
    value = read_flow_run_input(key=f"suspended-{APPROVAL_KEY}-response", flow_run_id=flow_run.id)
    return PublishApproval(**value) if isinstance(value, dict) else None


def record_decision(approval: PublishApproval, study_id: str, cost: PublishCost, job_key: str, base_url: str) -> dict[str, Any]:
    """Write the reviewer's decision where people look: the ``publish-approval`` artifact (a new version saying
    it is decided, by whom, when, with what comment) and the job record (``approval``); return the decision
    dict for ``run.json``: ``{"decision": "approved"|"rejected", "reviewer", "comment", "decided_at", "study_id"}``.
    ``decided_at`` (UTC, ISO 8601) is when this run read the answer, seconds after the reviewer gave it."""
    decision = {"decision": "approved" if approval.approve else "rejected", "reviewer": approval.reviewer,
                "comment": approval.comment, "decided_at": now_iso(), "study_id": study_id}
    outcome = "will be published" if approval.approve else "stays unpublished"
    comment = approval.comment or "(no comment)"
    create_markdown_artifact(
        key=APPROVAL_KEY,
        markdown=f"# Publishing {decision['decision']} by {approval.reviewer}\n\n"
                 f"Decided at {decision['decided_at']} (UTC): study {study_id} {outcome}.\n\n"
                 f"Comment: {comment}\n\n## The figures the reviewer saw\n\n{cost.to_markdown()}",
        description=f"Decided: {decision['decision']} by {approval.reviewer}",
    )
    update_job_record(job_key, base_url, approval=decision)
    return decision


def mark_awaiting_review(job_key: str, base_url: str, what: str | None) -> None:
    """Store in the job record that this flow run waits for a reviewer (``awaiting_review``: ``{flow_run_id,
    what, since}``), or, with ``what`` None, that it does not any more. The study monitor leaves a job that
    waits for a reviewer to that flow run (``flows.monitor_studies``): it never pauses itself."""
    waiting = {"flow_run_id": str(flow_run.id) if flow_run.id else None, "what": what, "since": now_iso()} if what else None
    update_job_record(job_key, base_url, awaiting_review=waiting)


def reviewer_waits_elsewhere(record: dict[str, Any]) -> str | None:
    """The id of another flow run that waits for a reviewer for this job (the record's ``awaiting_review``, that
    run still paused, suspended or running), else None. A run resumed after its suspension is not "another"."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    run_id = (record.get("awaiting_review") or {}).get("flow_run_id")
    if not run_id or run_id == str(flow_run.id or ""):
        return None
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(run_id)).state
    except Exception:  # noqa: BLE001 - a run that cannot be read waits for nobody
        return None
    return run_id if state is not None and state.type.value in ("PAUSED", "RUNNING", "PENDING", "SCHEDULED") else None
