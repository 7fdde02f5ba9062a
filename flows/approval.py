"""Human approval before publishing: the flow run waits for a reviewer's decision in Prefect.

From a deployment the run is *suspended* (``suspend_flow_run``): the worker is freed, and on resume
the flow runs again from the top, earlier steps coming back from their cache and state checks
(``prefect-notes.md`` §3). Run locally (no deployment) it *pauses* (``pause_flow_run``) and the
process waits. Resume from the Prefect UI form, ``prefect.flow_runs.resume_flow_run(id,
run_input={"approve": true, "reviewer": "..."})`` or ``POST /api/flow_runs/{id}/resume``.
"""

from __future__ import annotations

import os

from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment

from taskbuilder.cost import PublishCost

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
    markdown artifact (key ``publish-approval``) and in the form's description. Raises Prefect's pause-timeout error when nobody answers within
    ``TASKBUILDER_APPROVAL_TIMEOUT_SECONDS`` (default 7 days).
    """
    description = f"Publish study {study_id}?\n\n{cost.to_markdown()}"
    create_markdown_artifact(key=APPROVAL_KEY, markdown=f"# Approval needed\n\n{description}", description="Waiting for a reviewer")
    wanted = PublishApproval.with_initial_data(description=description, approve=False)
    if deployment.id:
        return suspend_flow_run(wait_for_input=wanted, timeout=APPROVAL_TIMEOUT_SECONDS, key=APPROVAL_KEY)
    return pause_flow_run(wait_for_input=wanted, timeout=APPROVAL_TIMEOUT_SECONDS, poll_interval=2, key=APPROVAL_KEY)
