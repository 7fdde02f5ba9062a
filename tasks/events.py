"""The Prefect event a study's status change becomes, emitted by the study monitor and the webhook.

Event ``prolific.study.status-changed``:

- resource ``{"prefect.resource.id": "prolific.study.<study_id>", "prefect.resource.name": <job key>,
  "prolific.study.status": <new status>}``; the status is a resource label too, because Prefect's
  trigger ``match`` filters on resource labels, not on the payload (deployments/prefect.yaml);
- related ``[{"prefect.resource.id": "prolific.batch.<batch_id>", "prefect.resource.role": "batch"}]``;
- payload ``{"status", "previous_status", "job_key", "base_url"}`` (statuses as in API doc §6.3, e.g.
  ``AWAITING REVIEW`` with its space; ``previous_status`` is ``None`` when unknown).
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

STUDY_STATUS_CHANGED = "prolific.study.status-changed"


def study_status_event(
    *, study_id: str, batch_id: str | None, job_key: str, status: str, previous_status: str | None, base_url: str
) -> dict[str, Any]:
    """The keyword arguments of ``emit_event`` for one study status change (see the module docstring)."""
    related = [{"prefect.resource.id": f"prolific.batch.{batch_id}", "prefect.resource.role": "batch"}] if batch_id else []
    return {
        "event": STUDY_STATUS_CHANGED,
        "resource": {
            "prefect.resource.id": f"prolific.study.{study_id}",
            "prefect.resource.name": job_key,
            "prolific.study.status": status,
        },
        "related": related,
        "payload": {"status": status, "previous_status": previous_status, "job_key": job_key, "base_url": base_url},
    }


def emit_study_status_changed(
    *, study_id: str, batch_id: str | None, job_key: str, status: str, previous_status: str | None, base_url: str
) -> str | None:
    """Emit the ``prolific.study.status-changed`` event to the current Prefect server; return its id.

    Needs ``PREFECT_API_URL`` (events are sent over the server's websocket in the background; ``None``
    when events are disabled). Inside a flow run, Prefect adds the run as a related resource.
    """
    event = emit_event(
        **study_status_event(
            study_id=study_id, batch_id=batch_id, job_key=job_key, status=status, previous_status=previous_status, base_url=base_url
        )
    )
    return str(event.id) if event is not None else None


SUBMISSION_STATUS_CHANGED = "prolific.submission.status-changed"


def emit_submission_status_changed(*, submission_id: str, status: str, participant_id: str | None, event_id: str | None) -> str | None:
    """Emit ``prolific.submission.status-changed`` (resource ``prolific.submission.<id>`` with label
    ``prolific.submission.status``; payload ``{"status", "participant_id", "prolific_event_id"}``) from a
    ``submission.status.change`` webhook (§6); return the Prefect event id (``None`` when events are off)."""
    event = emit_event(
        event=SUBMISSION_STATUS_CHANGED,
        resource={"prefect.resource.id": f"prolific.submission.{submission_id}", "prolific.submission.status": status},
        payload={"status": status, "participant_id": participant_id, "prolific_event_id": event_id},
    )
    return str(event.id) if event is not None else None
