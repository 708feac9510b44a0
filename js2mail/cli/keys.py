"""`js2mail keys create|list|revoke|rotate`."""

from __future__ import annotations

from typing import Annotated

import typer

from js2mail.cli import common
from js2mail.cli.common import AppFilter, AppOpt, JsonOpt, WorkspaceFilter, WorkspaceOpt

app = typer.Typer(help="Create, list, revoke and rotate API keys.", no_args_is_help=True)


@app.command("create")
def create(
    workspace: WorkspaceOpt,
    application: AppOpt,
    name: Annotated[str | None, typer.Option("--name", help="A label for the key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key (shown once, never again)."""
    from js2mail.service import keys
    from js2mail.service.mailboxes import sender_of

    with common.open_context() as ctx:
        created = keys.create_key(ctx, workspace, application, name)
        sender = sender_of(ctx, workspace, application)

    def human() -> None:
        typer.echo(created.key)
        typer.echo(
            f"API key for {workspace}/{application} (prefix {created.info['prefix']}). "
            "Copy it now: it will not be shown again.",
            err=True,
        )
        typer.echo(sender, err=True)

    common.output({"key": created.key, **created.info}, as_json, human)


@app.command("list")
def list_(
    workspace: WorkspaceFilter = None,
    application: AppFilter = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys: prefix, scope, created, last used, revoked. Never the secret."""
    from js2mail.service import keys

    with common.open_context() as ctx:
        rows = keys.list_keys(ctx, workspace, application)
    common.output(
        rows,
        as_json,
        lambda: common.table(
            "API keys",
            ["prefix", "workspace", "app", "name", "created", "last used", "revoked"],
            [
                [r["prefix"], r["workspace"], r["application"], r["name"], r["createdAt"], r["lastUsedAt"] or "never",
                 r["revokedAt"] or (f"at {r['revokesAt']}" if r["revokesAt"] else "no")]
                for r in rows
            ],
            empty="No API keys yet. Create one with: js2mail keys create --workspace WORKSPACE --app APP",
        ),
    )


@app.command("revoke")
def revoke(prefix: Annotated[str, typer.Argument(help="The key's 8-character prefix.")], as_json: JsonOpt = False) -> None:
    """Revoke a key at once."""
    from js2mail.service import keys

    with common.open_context() as ctx:
        info = keys.revoke_key(ctx, prefix)
    common.output(info, as_json, lambda: typer.echo(f"Revoked {info['prefix']}."))


@app.command("rotate")
def rotate(
    prefix: Annotated[str, typer.Argument(help="The key's 8-character prefix.")],
    grace: Annotated[str, typer.Option("--grace", help="Keep the old key working this long, e.g. 24h.")] = "0",
    as_json: JsonOpt = False,
) -> None:
    """Issue a new key with the same scope and revoke the old one (now, or after --grace)."""
    from js2mail.service import keys

    seconds = keys.parse_duration(grace)
    with common.open_context() as ctx:
        created = keys.rotate_key(ctx, prefix, seconds)

    def human() -> None:
        typer.echo(created.key)
        when = f"in {grace}" if seconds else "now"
        typer.echo(f"New key {created.info['prefix']}; the old key {prefix} is revoked {when}.", err=True)

    common.output({"key": created.key, **created.info, "replaces": prefix, "graceSeconds": seconds}, as_json, human)
