"""Sending: accept a message into the durable queue (with idempotency), and read or cancel it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import msgspec

from js2mail import mail
from js2mail.errors import BadRequest, Conflict, NotFound, QueueFull, TooLarge, ValidationError
from js2mail.models import MESSAGE_STATUSES, Principal, Scope, iso, new_sorted_id
from js2mail.providers.registry import spec_of
from js2mail.service import Context
from js2mail.service.catalog import catalog_of
from js2mail.store import mailboxes as mailbox_rows
from js2mail.store import messages as rows


@dataclass(frozen=True)
class SendOutcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def idempotency_key(payload: object, header: str | None) -> str | None:
    body_key = payload.get("idempotencyKey") if isinstance(payload, dict) else None
    for value in (body_key, header):
        if value is None:
            continue
        if not isinstance(value, str) or not 1 <= len(value) <= 255 or not all(" " <= c <= "~" for c in value):
            raise BadRequest("idempotency key must be 1-255 printable ASCII characters", code="invalid_idempotency_key")
    if body_key is not None and header is not None and body_key != header:
        raise BadRequest("Idempotency-Key header and body idempotencyKey differ", code="idempotency_key_mismatch")
    return body_key if body_key is not None else header


def fingerprint(payload: dict[str, Any]) -> bytes:
    """SHA-256 of the request in canonical JSON (sorted keys), without the idempotency key itself."""
    canonical = msgspec.json.encode({k: v for k, v in payload.items() if k != "idempotencyKey"}, order="sorted")
    return hashlib.sha256(canonical).digest()


def resolve_mailbox(conn: sqlite3.Connection, workspace_id: str, app_id: str, address: str | None) -> sqlite3.Row:
    """The mailbox a send goes out through: the one with the `from` address, or the default."""
    if address:
        row = mailbox_rows.by_address(conn, workspace_id, address)
        if row is None:
            raise ValidationError(f"from address {address} is not a mailbox connected in this workspace",
                                  code="from_not_connected", details=[{"field": "from", "code": "from_not_connected",
                                                                      "message": "not a mailbox connected in this workspace"}])
    else:
        row = mailbox_rows.default_for(conn, app_id)
        if row is None:
            candidates = mailbox_rows.in_workspace(conn, workspace_id)
            if len(candidates) != 1:
                raise _no_default(conn, app_id, [c["address"] for c in candidates])
            row = candidates[0]
    if row["status"] != "active":
        raise ValidationError(f"mailbox {row['address']} needs to be reconnected", code="mailbox_needs_reconnect")
    return row


def _no_default(conn: sqlite3.Connection, app_id: str, addresses: list[str]) -> ValidationError:
    """The error for a send with no `from` in an application without a default mailbox, with the
    exact command that fixes it."""
    from js2mail.store import tenancy

    app = tenancy.application_by_id(conn, app_id)
    scope = f"--workspace {app['workspace_slug']} --app {app['slug']}" if app else "--workspace W --app A"
    if not addresses:
        return ValidationError("the workspace has no mailbox to send from", code="no_default_mailbox",
                               hint=f"connect one: js2mail mailboxes add smtp {scope} --address ADDRESS …")
    return ValidationError(
        f"no from given and the application has no default mailbox (the workspace has {len(addresses)}: "
        f"{', '.join(addresses[:5])})", code="no_default_mailbox",
        hint=f"js2mail mailboxes set-default {addresses[0]} {scope}, or give \"from\" in the request")


def from_header(req: mail.MailRequest, mailbox: sqlite3.Row) -> str:
    name = mail.parse_mailbox(req.from_)[0] if req.from_ else (mailbox["display_name"] or "")
    return mail.format_address(name, mailbox["address"])


def dry_run_flag(payload: object) -> bool:
    value = payload.get("dryRun", False) if isinstance(payload, dict) else False
    if not isinstance(value, bool):
        raise ValidationError("dryRun must be true or false", code="invalid_dry_run",
                              details=[{"field": "dryRun", "code": "invalid_type", "message": "expected a boolean"}])
    return value


async def send(ctx: Context, principal: Principal | Scope, payload: object, idempotency_header: str | None = None,
               *, source: str = "api") -> SendOutcome:
    key = idempotency_key(payload, idempotency_header)
    dry_run = dry_run_flag(payload)
    req = mail.parse_send_request(
        {k: v for k, v in payload.items() if k not in ("idempotencyKey", "dryRun")} if isinstance(payload, dict)
        else payload,
        max_recipients=ctx.settings.dispatch.max_recipients, now=ctx.clock.now(),
        max_schedule_ahead=ctx.settings.dispatch.max_schedule_days * 86400,
    )
    address = mail.parse_mailbox(req.from_)[1] if req.from_ else None
    cache_key = (principal.application_id, address and address.lower())  # display names vary; addresses don't
    catalog = catalog_of(ctx).fresh()
    mailbox = catalog.mailboxes.get(cache_key)
    if mailbox is None:
        mailbox = ctx.store.read(resolve_mailbox, principal.workspace_id, principal.application_id, address)
        catalog.remember(catalog.mailboxes, cache_key, mailbox)
    return await enqueue_request(ctx, principal.workspace_id, principal.application_id, req, mailbox,
                                 key=key, fp=fingerprint(payload) if key and isinstance(payload, dict) else None,
                                 source=source, dry_run=dry_run)


async def enqueue_request(
    ctx: Context,
    workspace_id: str,
    app_id: str,
    req: mail.MailRequest,
    mailbox: sqlite3.Row,
    *,
    key: str | None = None,
    fp: bytes | None = None,
    source: str = "api",
    extra_event: tuple[str, dict[str, Any]] | None = None,
    dry_run: bool = False,
) -> SendOutcome:
    """Validated request → queue: the body is sealed, then the idempotency record, the message and
    its events are written in one transaction, so a key is never held by a message not queued.
    A dry run builds the MIME message as the dispatcher would, checks its real size, previews the
    mailbox's daily quota (reserving nothing) and records the message as `dry_run`: no body is
    kept and no provider is ever called."""
    eai = mail.eai_addresses(req, mailbox["address"])
    refusal = eai and mail.eai_refusal(eai, spec_of(mailbox["provider"]).eai,
                                       json.loads(mailbox["settings"]).get("smtputf8"), mailbox["address"])
    if refusal:
        raise ValidationError(refusal[1], code=refusal[0], details=[{"field": "to", "code": refusal[0],
                                                                     "message": refusal[1]}])
    size = mail.estimated_size(req)
    spec = spec_of(mailbox["provider"])
    limit = spec.max_message_bytes
    if size > limit:
        raise TooLarge(f"message is about {size} bytes; {mailbox['provider']} mailboxes accept at most {limit}",
                       code="message_too_large")
    limits = ctx.settings.limits
    caps = rows.QueueCaps(limits.max_queued_messages, limits.max_queued_bytes)
    if key is None and rows.over_caps(ctx.store.read(rows.queue_usage, app_id), size, caps):
        raise QueueFull.for_caps(caps)  # before sealing; a replay (with a key) is decided in the write
    now = ctx.clock.now()
    msg_id = new_sorted_id("msg", now)
    body: dict[str, Any] = {"id": msg_id, "status": "queued"}
    if dry_run:
        size = built_size(req, mailbox, msg_id, now, limit)
        body = {"id": msg_id, "status": "dry_run", "dryRun": {"size": size, "quota": quota_preview(ctx, mailbox, now)}}
    sealed = b"" if dry_run else ctx.sealer.seal(mail.serialize(req), table="message_bodies", column="payload",
                                                  row_id=msg_id)
    new = rows.NewMessage(
        id=msg_id, workspace_id=workspace_id, application_id=app_id, mailbox_id=mailbox["id"], source=source,
        scheduled_at=req.scheduled_at, recipient_domains=mail.recipient_domains(req), metadata=dict(req.metadata),
        size=size, payload=sealed, dry_run=dry_run,
    )
    record = rows.IdempotencyRecord(key, fp, 202, msgspec.json.encode(body).decode()) if key is not None and fp is not None else None
    event = (extra_event[0], {**extra_event[1], "messageId": msg_id}) if extra_event else None
    outcome = await ctx.store.write(rows.enqueue, new, now, record, event, caps)
    if outcome.state == "replay":
        return SendOutcome(outcome.response_status or 202, json.loads(outcome.response_body or "{}"), replayed=True)
    if outcome.state == "mismatch":
        raise ValidationError("this idempotency key was used with a different request body",
                              code="idempotency_key_reused")
    if ctx.on_enqueued is not None and not dry_run and (req.scheduled_at is None or req.scheduled_at <= now):
        ctx.on_enqueued()
    return SendOutcome(202, body)


def built_size(req: mail.MailRequest, mailbox: sqlite3.Row, msg_id: str, now: float, limit: int) -> int:
    """The size of the RFC 5322 bytes the dispatcher would hand the provider (the same builder)."""
    try:
        domain = mail.ascii_domain(mailbox["address"].rsplit("@", 1)[1])  # as the dispatcher builds it
        raw = mail.flatten(mail.build_email(req, from_header=from_header(req, mailbox), message_id=f"<{msg_id}@{domain}>",
                                            date=now), drop_bcc=spec_of(mailbox["provider"]).drops_bcc)
    except Exception as exc:  # noqa: BLE001 - what the dispatcher could not build either: refuse it now (422)
        raise ValidationError(f"the message cannot be built: {type(exc).__name__}: {exc}"[:300],
                              code="message_unbuildable") from None
    if len(raw) > limit:
        raise TooLarge(f"message is {len(raw)} bytes; {mailbox['provider']} mailboxes accept at most {limit}",
                       code="message_too_large")
    return len(raw)


def quota_preview(ctx: Context, mailbox: sqlite3.Row, now: float) -> dict[str, Any] | None:
    """What the mailbox's daily quota would say to this send now, without taking from it."""
    from js2mail.retry import utc_day

    quota = mailbox["daily_quota"]
    if not quota:
        return None
    used = ctx.store.read(rows.usage_today, mailbox["id"], utc_day(now))
    return {"daily": quota, "usedToday": used, "remaining": max(0, quota - used), "wouldSendToday": used < quota}


def message_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "createdAt": iso(row["created_at"]),
        "sentAt": iso(row["sent_at"]),
        "nextAttemptAt": iso(row["next_attempt_at"]) if row["status"] in ("queued", "retrying") else None,
        "scheduledAt": iso(row["scheduled_at"]),
        "lastError": row["last_error"],
        "recipientDomains": json.loads(row["recipient_domains"]),
        "refusedRecipients": row["refused_recipients"],
        "refusedDomains": json.loads(row["refused_domains"]),
        "metadata": json.loads(row["metadata"]),
        "source": row["source"],
    }


def get_message(ctx: Context, app_id: str | None, message_id: str) -> dict[str, Any]:
    row = ctx.store.read(rows.get, app_id, message_id)
    if row is None:
        raise NotFound(f"no message {message_id!r}", code="message_not_found")
    return message_view(row)


def encode_cursor(created_at: float, message_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{message_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, message_id = raw.split("|", 1)
        return float(created), message_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API returned", code="invalid_cursor") from None


def list_messages(ctx: Context, app_id: str | None, *, status: str | None = None, limit: int = 20,
                  cursor: str | None = None, workspace_id: str | None = None) -> dict[str, Any]:
    if status is not None and status not in MESSAGE_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(MESSAGE_STATUSES)}", code="invalid_status")
    if not 1 <= limit <= 100:
        raise ValidationError("limit must be between 1 and 100", code="invalid_limit")
    before = decode_cursor(cursor) if cursor else None
    found = ctx.store.read(rows.listing, app_id, status, limit + 1, before, workspace_id)
    page = found[:limit]
    more = len(found) > limit
    return {
        "data": [message_view(r) for r in page],
        "nextCursor": encode_cursor(page[-1]["created_at"], page[-1]["id"]) if more and page else None,
    }


@dataclass(frozen=True)
class LogScope:
    """Which messages an operator's listing covers: one application, one workspace, or all."""

    workspace_id: str | None = None
    application_id: str | None = None


def log_scope(ctx: Context, workspace: str | None, application: str | None) -> LogScope:
    """`--workspace` and `--app` compose: either alone, both, or neither (everything). An app slug
    alone must name one application across workspaces."""
    from js2mail.store import tenancy

    ws = None
    if workspace:
        ws = ctx.store.read(tenancy.workspace_by_slug, workspace)
        if ws is None:
            raise NotFound(f"no workspace {workspace!r}", code="workspace_not_found")
    if not application:
        return LogScope(ws["id"] if ws else None)
    if ws is not None:
        app = ctx.store.read(tenancy.application, ws["id"], application)
        if app is None:
            raise NotFound(f"no application {workspace}/{application}", code="application_not_found")
        return LogScope(ws["id"], app["id"])
    found = ctx.store.read(tenancy.applications_by_slug, application)
    if not found:
        raise NotFound(f"no application {application!r}", code="application_not_found")
    if len(found) > 1:
        raise ValidationError(f"{len(found)} workspaces have an application {application!r}",
                              code="ambiguous_application", hint="add --workspace WORKSPACE")
    return LogScope(found[0]["workspace_id"], found[0]["id"])


def changes_since(ctx: Context, scope: LogScope, since: float, after_id: str = "",
                  limit: int = 500) -> tuple[list[dict[str, Any]], float, str]:
    """Messages that changed since `since`, oldest change first, and the cursor to continue from."""
    found = ctx.store.read(rows.changed_since, since, after_id, scope.application_id, scope.workspace_id, limit)
    if found:
        since, after_id = found[-1]["updated_at"], found[-1]["id"]
    return [message_view(r) for r in found], since, after_id


async def cancel_message(ctx: Context, app_id: str | None, message_id: str) -> dict[str, Any]:
    def run(conn: sqlite3.Connection) -> tuple[str, bool] | None:
        owner = app_id
        if owner is None:
            row = rows.get(conn, None, message_id)
            if row is None:
                return None
            owner = row["application_id"]
        return rows.cancel(conn, owner, message_id, ctx.clock.now())

    outcome = await ctx.store.write(run)
    if outcome is None:
        raise NotFound(f"no message {message_id!r}", code="message_not_found")
    status, changed = outcome
    if not changed:
        raise Conflict(f"message {message_id} is already {status} and cannot be cancelled", code="not_cancellable")
    return get_message(ctx, app_id, message_id)
