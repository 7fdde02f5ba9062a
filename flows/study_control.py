"""Small flows for a hand on a job's study from the Prefect UI (and ``taskbuilder study ...``): pause, resume,
stop, add places. Each acts once, through the documented transitions (:mod:`tasks.study_control`).

The job is found by its key: its record (:mod:`tasks.records`) names the study and the spec (token block,
``max_budget``); without a record (a job run on another Prefect server) the study is looked up on the API by
the job key of the tagged ``internal_name`` the caller passes (``"<internal_name> [job:<key>]"``; a study's tag
may also carry a work tag, :func:`taskbuilder.jobkey.tag_name`).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from taskbuilder.client import normalise_base_url
from taskbuilder.jobkey import job_key_of

from tasks.connection import ProlificConnection, open_client
from tasks.records import load_job_record
from tasks.study_control import StudyControlRefused, add_places, control_study

__all__ = ["StudyControlRefused", "add_study_places", "pause_study", "resume_study", "stop_study"]


def _job(job_key: str, base_url: str, internal_name: str | None) -> tuple[ProlificConnection, str, dict[str, Any]]:
    """The connection, the study id and the record (``{}`` when none) of the job."""
    record = load_job_record(job_key, normalise_base_url(base_url)) or load_job_record(job_key, base_url) or {}
    spec = record.get("spec") or {}
    connection = ProlificConnection(base_url=record.get("base_url") or base_url, token_secret_block=spec.get("token_secret_block"))
    study_id = record.get("study_id")
    if not study_id and internal_name:
        with open_client(connection) as client:
            found = sorted(_of_job(client.list_studies(), internal_name), key=lambda s: str(s.published_at or ""))
        study_id = found[0].id if found else None
    if not study_id:
        raise StudyControlRefused(f"job {job_key!r} has no study on {base_url} (no job record names one"
                                  + (f", and no study is named {internal_name!r}" if internal_name else "") + "): nothing to do.")
    return connection, study_id, record


def _of_job(studies: list[Any], internal_name: str) -> list[Any]:
    """The ``studies`` under the job key of ``internal_name`` (whatever their work tag), else those of that exact name."""
    key = job_key_of(internal_name)
    return [s for s in studies if (job_key_of(s.internal_name) == key if key else s.internal_name == internal_name)]


@flow(name="pause-study", log_prints=False)
def pause_study(job_key: str, base_url: str, internal_name: str | None = None) -> dict[str, Any]:
    """Pause the job's study (§5.4 PAUSE, from ACTIVE); an already paused study is left as it is.
    Returns :meth:`tasks.study_control.ControlOutcome.as_dict`; raises :class:`StudyControlRefused`.

    Parameters:
        job_key: the job key (the spec's name, or the derived key) as in the job record.
        base_url: API root the job ran on, e.g. https://api.prolific.com.
        internal_name: the study's tagged internal_name, to find it on the API when there is no job record.
    """
    connection, study_id, _ = _job(job_key, base_url, internal_name)
    return control_study(connection, job_key, study_id, "pause").as_dict()


@flow(name="resume-study", log_prints=False)
def resume_study(job_key: str, base_url: str, internal_name: str | None = None) -> dict[str, Any]:
    """Resume the job's paused study (§5.4 START, from PAUSED); an active one is left as it is. A run waiting
    for the study goes on waiting where it was. Returns the outcome dict; raises :class:`StudyControlRefused`.

    Parameters:
        job_key: the job key (the spec's name, or the derived key) as in the job record.
        base_url: API root the job ran on, e.g. https://api.prolific.com.
        internal_name: the study's tagged internal_name, to find it on the API when there is no job record.
    """
    connection, study_id, _ = _job(job_key, base_url, internal_name)
    return control_study(connection, job_key, study_id, "resume").as_dict()


@flow(name="stop-study", log_prints=False)
def stop_study(job_key: str, base_url: str, internal_name: str | None = None) -> dict[str, Any]:
    """Stop the job's study (§5.4 STOP, from ACTIVE or PAUSED): no new participants; it goes to AWAITING REVIEW
    and a waiting run collects what came in. A stopped or finished study is left as it is.

    Parameters:
        job_key: the job key (the spec's name, or the derived key) as in the job record.
        base_url: API root the job ran on, e.g. https://api.prolific.com.
        internal_name: the study's tagged internal_name, to find it on the API when there is no job record.
    """
    connection, study_id, _ = _job(job_key, base_url, internal_name)
    return control_study(connection, job_key, study_id, "stop").as_dict()


@flow(name="add-study-places", log_prints=False)
def add_study_places(
    job_key: str, base_url: str, places: int, again: bool = False, internal_name: str | None = None,
    max_budget_cents: int | None = None,
) -> dict[str, Any]:
    """Add ``places`` places to the job's ACTIVE or PAUSED study, once (§5.3 PATCH, priced with §5.6 and refused
    over ``max_budget_cents``, the spec as written now, else the record's spec's ``max_budget``); the same request again does nothing unless
    ``again``. Returns the outcome dict; raises :class:`StudyControlRefused`.

    Parameters:
        job_key: the job key (the spec's name, or the derived key) as in the job record.
        base_url: API root the job ran on, e.g. https://api.prolific.com.
        internal_name: the study's tagged internal_name, to find it on the API when there is no job record.
        places: how many places to add (1 or more).
        again: add them even when the last addition was the same number (else that repeat does nothing).
        max_budget_cents: the largest total cost in cents; empty = the job record's spec's max_budget.
    """
    connection, study_id, record = _job(job_key, base_url, internal_name)
    budget = max_budget_cents if max_budget_cents is not None else (record.get("spec") or {}).get("max_budget")
    if budget is None:
        raise StudyControlRefused(f"job {job_key!r}: no max_budget known (no job record): give max_budget_cents")
    return add_places(connection, job_key, study_id, places, int(budget), again).as_dict()
