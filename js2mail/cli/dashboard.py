"""`js2mail dashboard link|sessions|revoke`: sign-in links and sessions of the web dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from js2mail.cli import common
from js2mail.cli.common import JsonOpt

app = typer.Typer(help="Sign in to the web dashboard (/dashboard) and manage its sessions.", no_args_is_help=True)


@app.command("link")
def link(
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Limit the session to this workspace.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a one-time sign-in URL, valid for 10 minutes."""
    from js2mail.service import dashboard

    with common.open_context() as ctx:
        created = dashboard.create_link(ctx, workspace)

    def human() -> None:
        typer.echo(created["url"])
        scope = f"workspace {workspace}" if workspace else "every workspace"
        typer.echo(f"Open it within 10 minutes (once); the session it opens sees {scope}.", err=True)

    common.output(created, as_json, human)


@app.command("sessions")
def sessions(as_json: JsonOpt = False) -> None:
    """List live dashboard sessions."""
    from js2mail.service import dashboard

    with common.open_context() as ctx:
        found = dashboard.list_sessions(ctx)
    common.output(found, as_json, lambda: common.table(
        "Dashboard sessions", ["id", "workspace", "created", "last seen", "expires"],
        [[s["id"], s["workspace"] or "all", s["createdAt"], s["lastSeenAt"] or "", s["expiresAt"]] for s in found],
        empty="No dashboard session. Sign in with: js2mail dashboard link"))


@app.command("revoke")
def revoke(session_id: Annotated[str, typer.Argument(help="The session's id (see `dashboard sessions`).")],
           as_json: JsonOpt = False) -> None:
    """End a dashboard session at once."""
    from js2mail.service import dashboard

    with common.open_context() as ctx:
        result = dashboard.revoke_session(ctx, session_id)
    common.output(result, as_json, lambda: typer.echo(f"Revoked dashboard session {session_id}."))
