"""Participant quality across jobs (issue 20): a workspace participant group of flagged participants, and study
filters that keep a group's members out (or let only them in).

Endpoints (../shared/docs/prolific-api-current.md §8): ``GET /api/v1/participant-groups/?workspace_id=``,
``POST /api/v1/participant-groups/``, ``GET``/``POST /api/v1/participant-groups/{id}/participants/``. Filters
(§8, §12): ``participant_group_allowlist`` (documented) and ``participant_group_blocklist`` (no filter that keeps
a group out was found in any source: this id is the sandbox's assumption, see sandbox/ASSUMPTIONS.md).

A group is found by name in the workspace (the oldest listed first when several share it) and created only when
none has it; a create whose answer was lost is found by the retry's look-up. Members are added once: the
current members are read first and only the others are sent (the API ignores existing members anyway).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from taskbuilder.jobspec.live import QualitySpec

from tasks.connection import ProlificConnection, open_client
from tasks.inputs import InputInvalid
from tasks.logs import run_logger
from tasks.records import update_job_record
from tasks.retry import API_TASK_OPTIONS

ALLOWLIST = "participant_group_allowlist"
BLOCKLIST = "participant_group_blocklist"


def quality_filters(connection: ProlificConnection, workspace_id: str, quality: QualitySpec | None) -> list[dict[str, Any]]:
    """The study filters of ``quality.exclude_groups`` / ``allow_groups``: ``[{"filter_id":
    "participant_group_blocklist" | "participant_group_allowlist", "selected_values": [group ids]}]`` (empty
    without groups, and then no task run and no request). Raises :class:`InputInvalid` naming a group that the
    workspace does not have (before the dataset, batch or study is created)."""
    if quality is None or not (quality.exclude_groups or quality.allow_groups):
        return []
    return _group_filters(connection, workspace_id, quality)


@task(name="resolve-quality-groups", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def _group_filters(connection: ProlificConnection, workspace_id: str, quality: QualitySpec) -> list[dict[str, Any]]:
    with open_client(connection) as client:
        ids = _ids_by_name(client.list_participant_groups(workspace_id))
    missing = [name for name in [*quality.exclude_groups, *quality.allow_groups] if name not in ids]
    if missing:
        raise InputInvalid(
            f"quality: the workspace {workspace_id} has no participant group named {', '.join(repr(m) for m in missing)}. "
            "Run the job whose quality.blocklist_group fills it first, create the group in Prolific, or fix the name "
            "in the job spec. Nothing was created.")
    filters = []
    for filter_id, names in ((BLOCKLIST, quality.exclude_groups), (ALLOWLIST, quality.allow_groups)):
        if names:
            filters.append({"filter_id": filter_id, "selected_values": [ids[name] for name in names]})
    run_logger().info("Study filters from quality: %s", filters)
    return filters


def with_filters(study_payload: dict[str, Any], filters: list[dict[str, Any]]) -> dict[str, Any]:
    """``study_payload`` with ``filters`` appended to its own ``filters`` (the spec's, kept as written); the
    payload given is not changed."""
    if not filters:
        return study_payload
    return {**study_payload, "filters": [*(study_payload.get("filters") or []), *filters]}


def update_blocklist_group(
    connection: ProlificConnection, job_key: str, workspace_id: str, quality: QualitySpec | None, participants: Any,
) -> dict[str, Any] | None:
    """Add the ``flagged`` participants of ``participants`` (the table of :func:`taskbuilder.aggregate.aggregate`:
    below ``min_agreement`` or ``min_gold_accuracy``) to the workspace group ``quality.blocklist_group``, created
    when missing; return ``{"group", "group_id", "flagged", "added", "members"}`` (also in the job record as
    ``blocklist``), or None without ``blocklist_group``."""
    if quality is None or not quality.blocklist_group:
        return None  # no task run, no request
    return _add_flagged(connection, job_key, workspace_id, quality.blocklist_group, participants)


@task(name="update-blocklist-group", **API_TASK_OPTIONS, cache_policy=NO_CACHE)
def _add_flagged(connection: ProlificConnection, job_key: str, workspace_id: str, name: str, participants: Any) -> dict[str, Any]:
    flagged = sorted(set(participants.loc[participants["flagged"].astype(bool), "participant_id"]))
    with open_client(connection) as client:
        group_id = _ids_by_name(client.list_participant_groups(workspace_id)).get(name)
        if group_id is None:
            group_id = client.create_participant_group(
                name=name, workspace_id=workspace_id, description="Participants flagged by taskbuilder jobs (quality.blocklist_group)").id
            run_logger().info("Created participant group %r (%s)", name, group_id)
        members = {m.participant_id for m in client.list_participant_group_members(group_id)}
        added = [pid for pid in flagged if pid not in members]
        if added:
            members |= {m.participant_id for m in client.add_participant_group_members(group_id, added)}
    outcome = {"group": name, "group_id": group_id, "flagged": len(flagged), "added": added, "members": len(members)}
    run_logger().info("Participant group %r: %d flagged, %d added, %d members", name, len(flagged), len(added), len(members))
    update_job_record(job_key, connection.base_url, blocklist=outcome)
    return outcome


def _ids_by_name(groups: list[Any]) -> dict[str, str]:
    """Group name → id, the first listed winning when several share a name; deleted groups left out."""
    ids: dict[str, str] = {}
    for group in groups:
        if group.name and not group.is_deleted:
            ids.setdefault(group.name, group.id)
    return ids
