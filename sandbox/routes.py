"""The sandbox's route table, in one place: every ``/api/v1/`` endpoint and every ``/_sandbox/`` control
endpoint, with the handler that answers it.

A handler is ``handler(state, request) -> Response``. Patterns are regular expressions with named
groups for path ids, written without a trailing slash (the router accepts both forms). Order
matters where two patterns could match the same path: the first one listed wins.
"""

from __future__ import annotations

from sandbox import (accounts, batches, bonuses, control_endpoints, costs, datasets, imports, legacy_instructions,
                     participant_groups, previews, report, studies, submissions, syncs, webhooks)
from sandbox.web import Router

API = "/api/v1"
ID = r"[^/]+"
DATASETS = f"{API}/data-collection/datasets"
DATASET = f"{DATASETS}/(?P<dataset_id>{ID})"
BATCHES = f"{API}/data-collection/batches"
BATCH = f"{BATCHES}/(?P<batch_id>{ID})"
STUDIES = f"{API}/studies"
STUDY = f"{STUDIES}/(?P<study_id>{ID})"
SUBMISSION = f"{API}/submissions/(?P<submission_id>{ID})"
WORKSPACE = f"{API}/workspaces/(?P<workspace_id>{ID})"
PROJECT = f"{API}/projects/(?P<project_id>{ID})"
GROUPS = f"{API}/participant-groups"
GROUP = f"{GROUPS}/(?P<group_id>{ID})"
HOOKS = f"{API}/hooks"
HOOK = f"{HOOKS}/subscriptions/(?P<hook_id>{ID})"

API_ROUTES = [
    # accounts (API doc §7)
    ("GET", f"{API}/users/me", accounts.me),
    ("GET", f"{API}/workspaces", accounts.list_workspaces),
    ("POST", f"{API}/workspaces", accounts.create_workspace),
    ("GET", WORKSPACE, accounts.get_workspace),
    ("GET", f"{WORKSPACE}/balance", accounts.balance),
    ("GET", f"{WORKSPACE}/projects", accounts.list_projects),
    ("POST", f"{WORKSPACE}/projects", accounts.create_project),
    ("GET", PROJECT, accounts.get_project),
    # datasets
    ("POST", DATASETS, datasets.create),
    ("GET", DATASET, datasets.get),
    ("PATCH", DATASET, imports.update_schema),
    ("GET", f"{DATASET}/status", datasets.status),
    ("GET", f"{DATASET}/upload-url/(?P<filename>{ID})", imports.upload_url),
    ("GET", f"{DATASET}/imports/(?P<import_id>{ID})", imports.get_import),
    ("POST", f"{DATASET}/datapoints", imports.append_datapoints),
    ("GET", f"{DATASET}/schema-migrations/(?P<job_id>{ID})", imports.migration_status),
    # batches and their layout
    ("POST", BATCHES, batches.create),
    ("GET", BATCHES, batches.list_batches),
    ("GET", BATCH, batches.get),
    ("PATCH", BATCH, batches.update),
    ("GET", f"{BATCH}/status", batches.status),
    ("POST", f"{BATCH}/setup", batches.setup),
    ("GET", f"{BATCH}/instructions", legacy_instructions.get_instructions),
    ("POST", f"{BATCH}/instructions", legacy_instructions.post_instructions),
    ("PUT", f"{BATCH}/instructions", legacy_instructions.put_instructions),
    ("GET", f"{BATCH}/task-groups", batches.task_groups),
    ("POST", f"{BATCH}/duplicate", batches.duplicate),
    ("POST", f"{BATCH}/sync", syncs.sync),
    ("GET", f"{BATCH}/syncs/(?P<sync_id>{ID})", syncs.sync_status),
    # batch results
    ("GET", f"{BATCH}/report", report.report),
    ("GET", f"{BATCH}/responses", report.responses),
    # studies
    ("POST", STUDIES, studies.create),
    ("GET", STUDIES, studies.list_studies),
    ("GET", STUDY, studies.get),
    ("PATCH", STUDY, studies.update),
    ("DELETE", STUDY, studies.delete),
    ("POST", f"{STUDY}/transition", studies.transition),
    ("GET", f"{STUDY}/export", studies.export),
    ("GET", f"{PROJECT}/studies", studies.project_studies),
    ("GET", f"{STUDY}/cost", costs.study_cost),
    ("POST", f"{STUDY}/test-study", previews.test_study),
    ("GET", f"{previews.PREVIEW_PATH}(?P<test_study_id>{ID})", previews.page),
    ("POST", f"{API}/study-cost-calculator", costs.calculate),
    ("GET", f"{API}/reward-recommendations", costs.reward_recommendations),
    # submissions
    ("GET", f"{STUDY}/submissions", submissions.list_for_study),
    ("GET", f"{STUDY}/submissions/counts", submissions.counts),
    ("POST", f"{API}/submissions/bulk-approve", submissions.bulk_approve),
    ("POST", f"{API}/submissions/bonus-payments", bonuses.create),  # before SUBMISSION (same shape)
    ("GET", SUBMISSION, submissions.get),
    ("POST", f"{SUBMISSION}/transition", submissions.transition),
    ("POST", f"{API}/bulk-bonus-payments/(?P<bonus_payment_id>{ID})/pay", bonuses.pay),
    # participant groups
    ("GET", GROUPS, participant_groups.list_groups),
    ("POST", GROUPS, participant_groups.create),
    ("GET", GROUP, participant_groups.get),
    ("GET", f"{GROUP}/participants", participant_groups.list_members),
    ("POST", f"{GROUP}/participants", participant_groups.add),
    ("DELETE", f"{GROUP}/participants", participant_groups.remove),
    # webhooks
    ("GET", f"{HOOKS}/event-types", webhooks.event_types),
    ("GET", f"{HOOKS}/secrets", webhooks.list_secrets),
    ("POST", f"{HOOKS}/secrets", webhooks.create_secret),
    ("POST", f"{HOOKS}/subscriptions", webhooks.subscribe),
    ("GET", f"{HOOKS}/subscriptions", webhooks.list_hooks),
    ("GET", HOOK, webhooks.get),
    ("POST", HOOK, webhooks.confirm),
    ("PATCH", HOOK, webhooks.update),
    ("DELETE", HOOK, webhooks.delete),
    ("GET", f"{HOOK}/events", webhooks.events),
]

CONTROL_ROUTES = [
    ("GET", "/_sandbox/requests", control_endpoints.requests),
    ("GET", "/_sandbox/faults", control_endpoints.get_faults),
    ("POST", "/_sandbox/faults", control_endpoints.set_faults),
    ("DELETE", "/_sandbox/faults", control_endpoints.clear_faults),
    ("GET", "/_sandbox/settings", control_endpoints.get_settings),
    ("POST", "/_sandbox/settings", control_endpoints.update_settings),
    ("POST", "/_sandbox/reset", control_endpoints.reset),
    ("GET", "/_sandbox/bonus-ledger", bonuses.ledger),
]


def router(routes: list[tuple]) -> Router:
    """A ``Router`` holding ``routes`` (``(method, pattern, handler)`` triples) in order."""
    table = Router()
    for method, pattern, handler in routes:
        table.add(method, pattern, handler)
    return table
