"""``taskbuilder webhooks subscribe``: set up Prolific's webhooks for the receiver (deployments/webhooks.py).

The three steps of ../shared/docs/prolific-api-current.md §6, in order:

1. the workspace secret: the active one (``GET /api/v1/hooks/secrets/?workspace_id=``), or a new one
   (``POST /api/v1/hooks/secrets/``) when there is none or ``--new-secret`` is given (a new secret
   replaces the old one: receivers using the old one refuse deliveries until they read the new one);
   its ``value`` is saved in the Prefect Secret block ``--secret-block`` (the receiver's
   ``--secret-block``), never printed;
2. one subscription per ``--event-type`` to ``--url`` (``POST /api/v1/hooks/subscriptions/``), unless
   an enabled one with that type and URL exists already;
3. its confirmation with the answer's ``X-Hook-Secret`` (``POST /api/v1/hooks/subscriptions/{id}/``).

The API token: ``PROLIFIC_API_TOKEN``; the API root: ``--api-url``, else ``PROLIFIC_API_URL``; the
workspace: ``--workspace-id``, else ``PROLIFIC_WORKSPACE_ID``, else the account's only workspace; the
Prefect server: ``PREFECT_API_URL``. Heavy imports stay inside the command (CLI start-up).
"""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Prolific webhooks for the deployments' receiver.")

DEFAULT_EVENT_TYPES = ["study.status.change", "submission.status.change"]


@app.command()
def subscribe(
    url: Annotated[str, typer.Option(help="The receiver's public https URL, ending in /prolific/webhook.")],
    event_type: Annotated[
        Optional[list[str]], typer.Option(help="Event type to subscribe to (repeatable; default: study.status.change and submission.status.change).")
    ] = None,
    api_url: Annotated[Optional[str], typer.Option(help="API root without /api/v1 (default: PROLIFIC_API_URL).")] = None,
    workspace_id: Annotated[Optional[str], typer.Option(help="Workspace (default: PROLIFIC_WORKSPACE_ID, else the account's only one).")] = None,
    secret_block: Annotated[str, typer.Option(help="Prefect Secret block that receives the workspace secret.")] = "prolific-webhook-secret",
    new_secret: Annotated[bool, typer.Option(help="Create a new workspace secret even when one is active.")] = False,
) -> None:
    """Create (or reuse) the workspace secret, subscribe ``--url`` to each event type and confirm it."""
    from prefect.blocks.system import Secret

    from taskbuilder.errors import ProlificError
    from tasks.connection import ProlificConnection, open_client

    base_url = api_url or os.environ.get("PROLIFIC_API_URL")
    if not base_url:
        typer.echo("No API root: give --api-url or set PROLIFIC_API_URL (e.g. https://api.prolific.com).", err=True)
        raise typer.Exit(2)
    try:
        with open_client(ProlificConnection(base_url=base_url)) as client:
            workspace = workspace_id or os.environ.get("PROLIFIC_WORKSPACE_ID") or _only_workspace(client)
            secrets = [] if new_secret else client.list_hook_secrets(workspace)
            secret = secrets[0] if secrets else client.create_hook_secret(workspace)
            Secret(value=secret.value.get_secret_value()).save(secret_block, overwrite=True)
            typer.echo(f"Workspace {workspace}: {'new' if not secrets else 'active'} secret {secret.id} saved in Prefect Secret block {secret_block!r}")
            existing = {(s.event_type, s.target_url) for s in client.list_hook_subscriptions(workspace, is_enabled=True)}
            for kind in event_type or DEFAULT_EVENT_TYPES:
                if (kind, url) in existing:
                    typer.echo(f"{kind} → {url}: already subscribed and confirmed")
                    continue
                created = client.create_hook_subscription(event_type=kind, target_url=url, workspace_id=workspace)
                if created.hook_secret is None:
                    typer.echo(f"{kind}: the answer had no X-Hook-Secret header; subscription {created.id} stays unconfirmed", err=True)
                    raise typer.Exit(1)
                confirmed = client.confirm_hook_subscription(created.id, created.hook_secret)
                typer.echo(f"{kind} → {url}: subscription {confirmed.id} confirmed (enabled: {confirmed.is_enabled})")
    except (ProlificError, ValueError) as error:
        typer.echo(f"taskbuilder webhooks subscribe failed: {error}", err=True)
        raise typer.Exit(1) from None


def _only_workspace(client) -> str:
    """The account's only workspace id; ``ValueError`` naming the ids when there are several."""
    workspaces = client.list_workspaces()
    if len(workspaces) != 1:
        raise ValueError(f"the account has {len(workspaces)} workspaces: give --workspace-id (ids: {', '.join(w.id for w in workspaces[:10])})")
    return workspaces[0].id
