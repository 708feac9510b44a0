"""`js2mail mailboxes add smtp|gmail|microsoft, list, test, remove, set-default`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from js2mail.cli import common
from js2mail.cli.common import JsonOpt, WorkspaceFilter, WorkspaceOpt
from js2mail.limits import MAX_DAILY_QUOTA

app = typer.Typer(help="Connect and manage the mailboxes mail is sent through.", no_args_is_help=True)
add_app = typer.Typer(help="Connect a mailbox.", no_args_is_help=True)
app.add_typer(add_app, name="add")

AddressArg = Annotated[str, typer.Argument(help="The mailbox's email address.")]
AppOption = Annotated[str | None, typer.Option("--app", "-a", help="Make it this application's default mailbox.")]
QuotaOpt = Annotated[int | None, typer.Option("--daily-quota", help="Sends per UTC day before deferring.",
                                              callback=common.in_range("--daily-quota", 1, MAX_DAILY_QUOTA))]


def _show(info: dict[str, object], as_json: bool, verb: str, sender: str | None = None) -> None:
    def human() -> None:
        typer.echo(f"{verb} {info['provider']} mailbox {info['address']}.")
        if sender:
            typer.echo(sender)

    common.output(info, as_json, human)


def _sender(ctx: object, workspace: str, application: str | None) -> str:
    from js2mail.service import mailboxes

    return mailboxes.sender_of(ctx, workspace, application or "default")  # type: ignore[arg-type]


def _read_password(prompt: str) -> str:
    """A hidden prompt on a terminal; without one, a clear error instead of getpass's warning and echo."""
    if not sys.stdin.isatty():
        from js2mail.errors import ValidationError

        raise ValidationError("no terminal to ask for the password on", code="password_required",
                              hint="pipe it in with --password-stdin, or use --no-auth for a relay without login")
    return str(typer.prompt(prompt, hide_input=True))


@add_app.command("smtp")
def add_smtp(
    workspace: WorkspaceOpt,
    address: Annotated[str, typer.Option("--address", help="The From address of this mailbox.")],
    host: Annotated[str, typer.Option("--host", help="SMTP server host.")],
    port: Annotated[int, typer.Option("--port", help="SMTP server port (587 starttls, 465 tls).",
                                      callback=common.in_range("--port", 1, 65535))] = 587,
    username: Annotated[str | None, typer.Option("--username", help="Login (default: the address).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="The server needs no login.")] = False,
    security: Annotated[str, typer.Option("--security", help="starttls, tls or none (none: a relay on loopback).")
                        ] = "starttls",
    insecure_allow_plaintext: Annotated[bool, typer.Option(
        "--insecure-allow-plaintext",
        help="Allow --security none to a host that is not loopback (mail and password travel unencrypted).")] = False,
    tls_ca: Annotated[str | None, typer.Option("--tls-ca", help="CA file to trust for this server.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name for From.")] = None,
    application: AppOption = None,
    daily_quota: QuotaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Connect an SMTP mailbox. The password is stored encrypted."""
    from js2mail.service import mailboxes

    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_auth:
        password = _read_password(f"Password for {username or address}")
    with common.open_context() as ctx:
        info = mailboxes.add_smtp(ctx, workspace=workspace, address=address, host=host, port=port,
                                  username=None if no_auth else (username or address), password=password,
                                  security=security, tls_ca=tls_ca, display_name=name, daily_quota=daily_quota,
                                  app=application, insecure_allow_plaintext=insecure_allow_plaintext)
        sender = _sender(ctx, workspace, application)
    _show(info, as_json, "Connected", sender)


@add_app.command("gmail")
def add_gmail(
    workspace: WorkspaceOpt,
    client_secrets: Annotated[str, typer.Option("--client-secrets", help="Google OAuth client JSON (Desktop app).")],
    address: Annotated[str | None, typer.Option("--address", help="The Gmail address (asked for when missing).")] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Don't open a browser; print the URL.")] = False,
    port: Annotated[int, typer.Option("--port", help="Loopback port for the redirect (0: any free port).",
                                      callback=common.in_range("--port", 0, 65535))] = 0,
    name: Annotated[str | None, typer.Option("--name", help="Display name for From.")] = None,
    application: AppOption = None,
    daily_quota: QuotaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Connect a Gmail / Google Workspace mailbox (scope gmail.send only)."""
    from js2mail.service import mailboxes, oauth_mailboxes

    mailboxes.check_mailbox_fields(name, daily_quota)  # before the sign-in, not after it
    if not address:
        address = typer.prompt("Gmail address to send as")
    with common.open_context() as ctx:
        info = oauth_mailboxes.connect_gmail(ctx, workspace=workspace, address=address, client_secrets=client_secrets,
                                             port=port, open_browser=not no_browser, display_name=name,
                                             daily_quota=daily_quota, app=application,
                                             echo=lambda s: typer.echo(s, err=True),
                                             prompt=lambda t: typer.prompt(t, default="", show_default=False, err=True))
    _show(info, as_json, "Connected")


@add_app.command("microsoft")
def add_microsoft(
    workspace: WorkspaceOpt,
    client_id: Annotated[str, typer.Option("--client-id", help="Entra app (client) id.")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id or domain.")] = "common",
    device_code: Annotated[bool, typer.Option("--device-code", help="Use the device-code flow (VPS).")] = False,
    address: Annotated[str | None, typer.Option("--address", help="Override the address from the ID token.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name for From.")] = None,
    application: AppOption = None,
    daily_quota: QuotaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Connect a Microsoft 365 mailbox (Mail.Send + offline_access)."""
    from js2mail.service import mailboxes, oauth_mailboxes

    mailboxes.check_mailbox_fields(name, daily_quota)  # before the sign-in, not after it
    with common.open_context() as ctx:
        info = oauth_mailboxes.connect_microsoft(ctx, workspace=workspace, client_id=client_id, tenant=tenant,
                                                 device_code=device_code, address=address, display_name=name,
                                                 daily_quota=daily_quota, app=application,
                                                 echo=lambda s: typer.echo(s, err=True))
    _show(info, as_json, "Connected")


@app.command("list")
def list_(
    workspace: WorkspaceFilter = None, as_json: JsonOpt = False
) -> None:
    """List mailboxes with their status (needs_reconnect shows here)."""
    from js2mail.service import mailboxes

    with common.open_context() as ctx:
        found = mailboxes.list_mailboxes(ctx, workspace)
    common.output(found, as_json, lambda: common.table(
        "Mailboxes", ["workspace", "address", "provider", "status", "default for", "daily quota"],
        [[m["workspace"], m["address"], m["provider"],
          m["status"] + (f" ({m['statusDetail']})" if m["statusDetail"] else ""),
          ", ".join(m["defaultFor"]), m["dailyQuota"] or "-"] for m in found]))


@app.command("test")
def test(
    address: AddressArg,
    to: Annotated[str, typer.Option("--to", help="Where to send the test mail.")],
    workspace: WorkspaceFilter = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a real test mail now and show the server's answer."""
    from js2mail.service import mailboxes

    with common.open_context() as ctx:
        result = common.run_async(mailboxes.send_test(ctx, workspace, address, to))
    common.output(result, as_json, lambda: typer.echo(f"Sent. Server answered: {result['response']}"))


@app.command("remove")
def remove(address: AddressArg, workspace: WorkspaceFilter = None, as_json: JsonOpt = False) -> None:
    """Disconnect a mailbox and forget its secret."""
    from js2mail.service import mailboxes

    with common.open_context() as ctx:
        info = mailboxes.remove(ctx, workspace, address)
    _show(info, as_json, "Removed")


@app.command("set-default")
def set_default(
    address: AddressArg,
    application: Annotated[str, typer.Option("--app", "-a", help="Application slug.")],
    workspace: WorkspaceFilter = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a mailbox the default From of an application."""
    from js2mail.service import mailboxes

    with common.open_context() as ctx:
        info = mailboxes.set_default(ctx, workspace, address, application)
    common.output(info, as_json, lambda: typer.echo(f"{address} is now the default mailbox of {application}."))
