"""Mailboxes: connect (SMTP here; Gmail and Microsoft through oauth.py), list, test, remove, defaults,
and building the provider that sends through one."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from js2mail.errors import Conflict, NotFound, ValidationError
from js2mail.limits import MAX_DAILY_QUOTA, MAX_DISPLAY_NAME
from js2mail.loopback import resolves_only_to_loopback
from js2mail.mail import has_control
from js2mail.models import iso, new_id
from js2mail.providers.base import Provider
from js2mail.providers.registry import ProviderParts, public_settings, spec_of
from js2mail.service import Context
from js2mail.service.keys import ensure_scope
from js2mail.store import mailboxes as rows
from js2mail.store import tenancy

SECURITY_MODES = ("starttls", "tls", "none")


def _check_address(address: str) -> str:
    from email_validator import EmailNotValidError

    from js2mail.mail import normalize_address

    try:
        return normalize_address(address)
    except EmailNotValidError as exc:
        raise ValidationError(f"{address!r} is not a valid email address: {exc}", code="invalid_address") from None


def check_mailbox_fields(display_name: str | None, daily_quota: int | None) -> None:
    """What every way of connecting a mailbox accepts as its From display name and daily quota."""
    if display_name is not None and (has_control(display_name) or len(display_name) > MAX_DISPLAY_NAME):
        raise ValidationError(f"the display name must be at most {MAX_DISPLAY_NAME} characters without control "
                              "characters (no line breaks)", code="invalid_display_name")
    if daily_quota is not None and (isinstance(daily_quota, bool) or not isinstance(daily_quota, int)
                                    or not 1 <= daily_quota <= MAX_DAILY_QUOTA):
        raise ValidationError(f"the daily quota must be a whole number from 1 to {MAX_DAILY_QUOTA}",
                              code="invalid_daily_quota")


def mailbox_info(row: sqlite3.Row, default_for: list[str] | None = None) -> dict[str, Any]:
    settings = json.loads(row["settings"])
    public = public_settings(row["provider"], settings)
    return {
        "id": row["id"],
        "address": row["address"],
        "provider": row["provider"],
        "displayName": row["display_name"],
        "status": row["status"],
        "statusDetail": row["status_detail"],
        "dailyQuota": row["daily_quota"],
        "settings": public,
        "defaultFor": default_for or [],
        "createdAt": iso(row["created_at"]),
    }


def sender_of(ctx: Context, workspace: str, application: str) -> str:
    """One sentence: which mailbox a send without `from` (or a form) of this application goes out
    through, and the command that changes it — what `mailboxes add`, `keys create` and `forms create`
    tell the person who just ran them."""
    scope = f"{workspace}/{application}"
    fix = f"--workspace {workspace} --app {application}"

    def find(conn: sqlite3.Connection) -> tuple[str | None, list[str]]:
        ws = tenancy.workspace_by_slug(conn, workspace)
        app = tenancy.application(conn, ws["id"], application) if ws else None
        default = rows.default_for(conn, app["id"]) if app else None
        others = [m["address"] for m in rows.in_workspace(conn, ws["id"])] if ws else []
        return (default["address"] if default else None), others

    default, addresses = ctx.store.read(find)
    if default:
        return (f"Application {scope} sends from {default} by default "
                f"(change it: js2mail mailboxes set-default ADDRESS {fix}).")
    if len(addresses) == 1:
        return (f"Application {scope} has no default mailbox; it sends from {addresses[0]}, the workspace's only "
                f"mailbox (make it explicit: js2mail mailboxes set-default {addresses[0]} {fix}).")
    if addresses:
        return (f"Application {scope} has no default mailbox and the workspace has {len(addresses)}: sends without "
                f"\"from\" will be refused (fix: js2mail mailboxes set-default {addresses[0]} {fix}).")
    return (f"Workspace {workspace} has no mailbox yet: connect one with "
            f"js2mail mailboxes add smtp {fix} --address ADDRESS --host HOST.")


def add_mailbox(
    ctx: Context,
    *,
    workspace: str,
    provider: str,
    address: str,
    settings: dict[str, Any],
    secret: bytes | None,
    display_name: str | None = None,
    daily_quota: int | None = None,
    app: str | None = None,
) -> dict[str, Any]:
    """Store a mailbox with its secret sealed; the first mailbox of a workspace becomes the default of `app`."""
    check_mailbox_fields(display_name, daily_quota)
    address = _check_address(address)
    scope_app = app or "default"
    scope = ensure_scope(ctx, workspace, scope_app)
    mailbox_id = new_id("mbx")
    sealed = ctx.sealer.seal(secret, table="mailboxes", column="secret", row_id=mailbox_id) if secret else None
    now = ctx.clock.now()
    quota = daily_quota if daily_quota is not None else spec_of(provider).default_daily_quota

    def run(conn: sqlite3.Connection) -> sqlite3.Row:
        if rows.by_address(conn, scope.workspace_id, address) is not None:
            raise Conflict(f"mailbox {address} is already connected in workspace {workspace}", code="mailbox_exists",
                           hint=f"remove it first: js2mail mailboxes remove {address} --workspace {workspace}")
        rows.insert(conn, mailbox_id=mailbox_id, workspace_id=scope.workspace_id, address=address, provider=provider,
                    display_name=display_name, settings=settings, secret=sealed, daily_quota=quota, now=now)
        app_row = tenancy.application_by_id(conn, scope.application_id)
        if app_row is not None and app_row["default_mailbox_id"] is None:
            tenancy.set_default_mailbox(conn, scope.application_id, mailbox_id)
        row = rows.by_id(conn, mailbox_id)
        assert row is not None
        return row

    return mailbox_info(ctx.store.write_sync(run))


def add_smtp(
    ctx: Context,
    *,
    workspace: str,
    address: str,
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    security: str,
    tls_ca: str | None = None,
    display_name: str | None = None,
    daily_quota: int | None = None,
    app: str | None = None,
    insecure_allow_plaintext: bool = False,
) -> dict[str, Any]:
    """Connect an SMTP mailbox. `security="none"` is for a relay on loopback: any other host needs
    `insecure_allow_plaintext` (stored on the mailbox; `js2mail doctor` warns about it)."""
    if security not in SECURITY_MODES:
        raise ValidationError(f"--security must be one of {', '.join(SECURITY_MODES)}", code="invalid_security")
    if not host or not (0 < port < 65536):
        raise ValidationError("--host and a --port between 1 and 65535 are required", code="invalid_server")
    if username is not None and not password:
        raise ValidationError(f"an empty password for {username} is not accepted", code="password_required",
                              hint="give the mailbox's password, or --no-auth for a server that needs no login")
    check_mailbox_fields(display_name, daily_quota)
    if security == "none" and not insecure_allow_plaintext and not resolves_only_to_loopback(host, port):
        raise ValidationError(
            f"--security none sends mail{' and the password' if username else ''} unencrypted, and {host} is not "
            "(only) a loopback address", code="plaintext_not_loopback",
            hint="use --security starttls or tls; or, on a network you trust, add --insecure-allow-plaintext")
    if tls_ca is not None:
        from pathlib import Path

        ca = Path(tls_ca).expanduser()
        if not ca.is_file():
            raise ValidationError(f"--tls-ca {tls_ca}: no such file", code="invalid_tls_ca")
        tls_ca = str(ca.resolve())
    settings: dict[str, Any] = {"host": host, "port": port, "username": username, "security": security,
                                "tls_ca": tls_ca}
    if security == "none" and insecure_allow_plaintext:
        settings["insecure_allow_plaintext"] = True
    return add_mailbox(ctx, workspace=workspace, provider="smtp", address=address, settings=settings,
                       secret=password.encode() if password else None, display_name=display_name,
                       daily_quota=daily_quota, app=app)


def _workspace_id(ctx: Context, workspace: str) -> str:
    ws = ctx.store.read(tenancy.workspace_by_slug, workspace)
    if ws is None:
        raise NotFound(f"no workspace {workspace!r}", code="workspace_not_found")
    return str(ws["id"])


def find(ctx: Context, workspace: str | None, address: str) -> sqlite3.Row:
    """The mailbox with this address; `workspace` is needed only when several workspaces have it."""
    if workspace:
        row = ctx.store.read(rows.by_address, _workspace_id(ctx, workspace), address)
        if row is None:
            raise NotFound(f"no mailbox {address} in workspace {workspace}", code="mailbox_not_found")
        return row
    found = ctx.store.read(rows.everywhere, address)
    if not found:
        raise NotFound(f"no mailbox {address}", code="mailbox_not_found")
    if len(found) > 1:
        raise ValidationError(f"{address} is connected in several workspaces; add --workspace",
                              code="workspace_required")
    return found[0]


def list_mailboxes(ctx: Context, workspace: str | None = None) -> list[dict[str, Any]]:
    def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        out = []
        for row in rows.listing(conn, workspace):
            apps = conn.execute("SELECT slug FROM applications WHERE default_mailbox_id = ? ORDER BY slug",
                                (row["id"],)).fetchall()
            info = mailbox_info(row, [a["slug"] for a in apps])
            info["workspace"] = row["workspace"]
            out.append(info)
        return out

    return ctx.store.read(run)


def remove(ctx: Context, workspace: str | None, address: str) -> dict[str, Any]:
    row = find(ctx, workspace, address)
    ctx.store.write_sync(rows.delete, row["id"])
    return mailbox_info(row)


def set_default(ctx: Context, workspace: str | None, address: str, app: str) -> dict[str, Any]:
    row = find(ctx, workspace, address)
    ws = ctx.store.read(lambda conn: conn.execute("SELECT slug FROM workspaces WHERE id = ?",
                                                  (row["workspace_id"],)).fetchone()["slug"])
    scope = ensure_scope(ctx, ws, app)
    ctx.store.write_sync(tenancy.set_default_mailbox, scope.application_id, row["id"])
    return mailbox_info(row, [app])


def open_secret(ctx: Context, row: sqlite3.Row) -> bytes | None:
    if row["secret"] is None:
        return None
    return ctx.sealer.open(bytes(row["secret"]), table="mailboxes", column="secret", row_id=row["id"])


async def save_secret(ctx: Context, mailbox_id: str, secret: bytes) -> None:
    sealed = ctx.sealer.seal(secret, table="mailboxes", column="secret", row_id=mailbox_id)
    await ctx.store.write(rows.set_secret, mailbox_id, sealed)


def build_provider(ctx: Context, row: sqlite3.Row) -> Provider:
    """The provider for one mailbox row, with its secret opened, built by its registry entry."""
    mailbox_id = row["id"]

    async def save(blob: bytes) -> None:
        await save_secret(ctx, mailbox_id, blob)

    parts = ProviderParts(mailbox_id=mailbox_id, address=row["address"], settings=json.loads(row["settings"]),
                          secret=open_secret(ctx, row), config=ctx.settings, save_secret=save)
    return spec_of(row["provider"]).build(parts)


async def send_test(ctx: Context, workspace: str | None, address: str, to: str) -> dict[str, Any]:
    """Send one real mail through the mailbox now, bypassing the queue, and report the answer."""
    from js2mail import mail
    from js2mail.providers.base import OutgoingMessage

    row = find(ctx, workspace, address)
    req = mail.parse_send_request({"to": to, "subject": "js2mail test message",
                                   "text": f"This test mail was sent by js2mail through {row['address']}.\n"})
    domain = mail.ascii_domain(row["address"].rsplit("@", 1)[1])
    message_id = new_id("test")
    email = mail.build_email(req, from_header=mail.format_address(row["display_name"] or "", row["address"]),
                             message_id=f"<{message_id}@{domain}>", date=ctx.clock.now())
    provider = build_provider(ctx, row)
    try:
        result = await provider.send(OutgoingMessage(message_id, mail.wire_address(row["address"]),
                                                      mail.envelope_recipients(req), email))
    finally:
        await provider.close()
        await _record_smtputf8(ctx, row, getattr(provider, "smtputf8", None))
    return {"mailbox": row["address"], "to": to, "response": result.response}


async def _record_smtputf8(ctx: Context, row: sqlite3.Row, offered: bool | None) -> None:
    """Keep whether the SMTP server advertises SMTPUTF8 in the mailbox settings: /v1/send reads it
    to accept or refuse internationalized (EAI) addresses."""
    settings = json.loads(row["settings"])
    if offered is None or settings.get("smtputf8") == offered:
        return
    settings["smtputf8"] = offered
    await ctx.store.write(lambda conn: conn.execute("UPDATE mailboxes SET settings = ? WHERE id = ?",
                                                    (json.dumps(settings), row["id"])))
