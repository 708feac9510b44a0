"""Operations commands: `doctor`, `dns check` (its work in cli/dns.py), `crypto rotate`, `data export|delete`."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from js2mail.cli import common
from js2mail.cli.common import JsonOpt

dns_app = typer.Typer(help="Check a sending domain's SPF, DKIM and DMARC.", no_args_is_help=True)
crypto_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
data_app = typer.Typer(help="Export or delete a workspace's data.", no_args_is_help=True)
KEY_MAX_AGE_DAYS = 90


@dns_app.command("check")
def dns_check(
    domain: Annotated[str, typer.Argument(help="The domain you send from.")],
    provider: Annotated[str | None, typer.Option("--provider", help="gmail, microsoft or smtp.")] = None,
    selector: Annotated[list[str] | None, typer.Option("--selector", help="DKIM selector (repeatable).")] = None,
    nameserver: Annotated[str | None, typer.Option("--nameserver", help="Ask this server (IPv4[:port]).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds for the whole check.")] = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Show what receivers will see, and the records to publish when something is missing.

    Exit code: 0 all good, 1 problems found, 2 could not check (bad input, DNS unreachable or timed out)."""
    from js2mail.cli.dns import run_check

    raise typer.Exit(run_check(domain, provider=provider, selectors=selector, nameserver=nameserver,
                               timeout=timeout, as_json=as_json))


@crypto_app.command("rotate")
def crypto_rotate(as_json: JsonOpt = False) -> None:
    """Add a new data key and re-encrypt every stored secret with it."""
    from js2mail.service import ops

    with common.open_context() as ctx:
        result = ops.rotate_data_key(ctx)
    common.output(result, as_json, lambda: typer.echo(
        f"New data key {result['activeKeyId']}; re-encrypted {result['resealed']} value(s)."))


@data_app.command("export")
def data_export(workspace: common.ExistingWorkspaceOpt) -> None:
    """Print everything kept about a workspace as JSON (secrets excluded)."""
    from js2mail.service import ops

    with common.open_context() as ctx:
        common.print_json(ops.export_workspace(ctx, workspace))


@data_app.command("delete")
def data_delete(
    workspace: common.ExistingWorkspaceOpt,
    yes: Annotated[str | None, typer.Option("--yes", help="Repeat the workspace name to confirm.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a workspace and everything in it: apps, keys, mailboxes, forms, webhooks, messages."""
    from js2mail.service import ops

    with common.open_context() as ctx:
        result = ops.delete_workspace(ctx, workspace, yes)
    common.output(result, as_json, lambda: typer.echo(
        f"Deleted workspace {workspace}: {common.cell(result['deleted']) or 'nothing else was in it'}."))


def doctor(
    dns: Annotated[bool, typer.Option("--dns/--no-dns", help="Also check each mailbox domain's DNS.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check config, database, master key, mailboxes, queue and (with --dns) DNS."""
    from js2mail.service import doctor as svc

    checks: list[dict[str, Any]] = svc.run_checks(common.settings(), dns=dns, now=time.time(),
                                                  key_max_age_days=KEY_MAX_AGE_DAYS)

    def human() -> None:
        for c in checks:
            typer.echo(f"{c['status']:5} {c['check']}: {c['detail']}")

    common.output(checks, as_json, human)
    if any(c["status"] == "fail" for c in checks):
        raise typer.Exit(1)


def mcp(
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="JS2MAIL_API_KEY",
                                                help="Scope the tools to this key's application.")] = None,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None,
    application: Annotated[str | None, typer.Option("--app", "-a")] = None,
) -> None:
    """Run the MCP server over stdio (tools: sendEmail, getMessageStatus, createFormEndpoint, listFormEndpoints)."""
    import anyio

    from js2mail import mcp as mcp_server

    with common.open_context() as ctx:
        scope = mcp_server.resolve_scope(ctx, api_key, workspace, application)
        server = mcp_server.build_server(ctx, scope)
        anyio.run(server.run_stdio_async)
