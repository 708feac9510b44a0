"""Dashboard sign-in: one-time links (10 minutes), sessions (hashed, expiring, revocable), the CSRF
token bound to a session, and the overview's figures. Pages call the same services as the CLI."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from js2mail.errors import NotFound
from js2mail.models import iso, new_id
from js2mail.service import Context
from js2mail.store import dashboard as rows
from js2mail.store import mailboxes as mailbox_rows
from js2mail.store import tenancy

LINK_SECONDS = 600.0
SESSION_SECONDS = 12 * 3600.0
TOUCH_EVERY = 60.0
CHART_HOURS = 7 * 24
OUTCOMES = ("sent", "failed", "pending", "cancelled")  # pending: queued, sending or retrying
SIGN_IN_PATH = "/dashboard/sign-in"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    id: str
    workspace_id: str | None  # None: every workspace
    workspace: str | None
    csrf: str
    expires_at: float


def create_link(ctx: Context, workspace: str | None = None) -> dict[str, Any]:
    """A one-time sign-in URL, valid `LINK_SECONDS`, limited to `workspace` when given."""
    now = ctx.clock.now()
    token = secrets.token_urlsafe(32)

    def run(conn: sqlite3.Connection) -> None:
        ws_id = None
        if workspace is not None:
            ws = tenancy.workspace_by_slug(conn, workspace)
            if ws is None:
                raise NotFound(f"no workspace {workspace!r}", code="workspace_not_found")
            ws_id = ws["id"]
        rows.insert_link(conn, _hash(token), ws_id, now, now + LINK_SECONDS)

    ctx.store.write_sync(run)
    return {"url": f"{ctx.settings.public_url}{SIGN_IN_PATH}?token={token}", "workspace": workspace,
            "expiresAt": iso(now + LINK_SECONDS)}


def link_is_live(ctx: Context, token: str) -> bool:
    """Whether a sign-in link would work, without using it up."""
    return bool(token) and len(token) <= 200 and ctx.store.read(rows.live_link, _hash(token), ctx.clock.now())


def redeem_link(ctx: Context, token: str) -> str | None:
    """The new session's token for a valid, unused, unexpired link (which is used up); else None."""
    if not token or len(token) > 200:
        return None
    now = ctx.clock.now()
    session_token = secrets.token_urlsafe(32)

    def run(conn: sqlite3.Connection) -> bool:
        link = rows.use_link(conn, _hash(token), now)
        if link is None:
            return False
        rows.insert_session(conn, new_id("dsess"), _hash(session_token), link["workspace_id"], now,
                            now + SESSION_SECONDS)
        return True

    return session_token if ctx.store.write_sync(run) else None


def csrf_for(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"js2mail-dashboard-csrf", hashlib.sha256).hexdigest()


def session_for(ctx: Context, session_token: str | None) -> Session | None:
    if not session_token or len(session_token) > 200:
        return None
    now = ctx.clock.now()
    row = ctx.store.read(rows.live_session, _hash(session_token), now)
    if row is None:
        return None
    if row["last_seen_at"] is None or now - row["last_seen_at"] > TOUCH_EVERY:
        ctx.store.write_nowait(rows.touch_session, row["id"], now)
    return Session(row["id"], row["workspace_id"], row["workspace"], csrf_for(session_token), row["expires_at"])


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")


def list_sessions(ctx: Context) -> list[dict[str, Any]]:
    return [{"id": r["id"], "workspace": r["workspace"], "createdAt": iso(r["created_at"]),
             "lastSeenAt": iso(r["last_seen_at"]), "expiresAt": iso(r["expires_at"])}
            for r in ctx.store.read(rows.sessions, ctx.clock.now())]


def revoke_session(ctx: Context, session_id: str) -> dict[str, Any]:
    if ctx.store.write_sync(rows.revoke_session, session_id, ctx.clock.now()) == 0:
        raise NotFound(f"no dashboard session {session_id!r}", code="session_not_found")
    return {"id": session_id, "revoked": True}


def workspaces(ctx: Context, session: Session) -> list[str]:
    return [r["slug"] for r in ctx.store.read(rows.workspaces, session.workspace_id)]


def applications(ctx: Context, session: Session) -> list[dict[str, str]]:
    return [{"id": r["id"], "workspace": r["workspace"], "application": r["slug"]}
            for r in ctx.store.read(rows.applications, session.workspace_id)]


def check_workspace(ctx: Context, session: Session, workspace: str) -> str:
    """The workspace's id if this session may see it; NotFound (404) otherwise, like the API."""
    ws = ctx.store.read(tenancy.workspace_by_slug, workspace)
    if ws is None or (session.workspace_id is not None and ws["id"] != session.workspace_id):
        raise NotFound(f"no workspace {workspace!r}", code="workspace_not_found")
    return str(ws["id"])


def chart(ctx: Context, session: Session) -> dict[str, Any]:
    """Sends per hour over the last 7 days by outcome: `series[outcome][hour]`, oldest hour first."""
    now = ctx.clock.now()
    since = (now // 3600 + 1) * 3600 - CHART_HOURS * 3600
    series = {o: [0] * CHART_HOURS for o in OUTCOMES}
    for r in ctx.store.read(rows.sends_by_hour, session.workspace_id, since):
        outcome = r["status"] if r["status"] in OUTCOMES else "pending"
        if 0 <= r["hour"] < CHART_HOURS:
            series[outcome][r["hour"]] += r["n"]
    return {"since": since, "hours": CHART_HOURS, "series": series}


def overview(ctx: Context, session: Session) -> dict[str, Any]:
    from js2mail.service import mailboxes

    now = ctx.clock.now()
    counts = ctx.store.read(rows.status_counts, session.workspace_id)
    usage = ctx.store.read(rows.sent_since, now - now % 86400)  # since 00:00 UTC, the day quotas count
    boxes = []
    for ws in workspaces(ctx, session):
        for info in mailboxes.list_mailboxes(ctx, ws):
            boxes.append({**info, "workspace": ws, "sentToday": usage.get(info["id"], 0)})
    return {
        "queued": sum(counts.get(s, 0) for s in ("queued", "retrying", "sending")),
        "failed": counts.get("failed", 0),
        "sent": counts.get("sent", 0),
        "mailboxes": boxes,
        "chart": chart(ctx, session),
    }


def mailbox_in_scope(ctx: Context, session: Session, workspace: str, address: str) -> sqlite3.Row:
    ws_id = check_workspace(ctx, session, workspace)
    row = ctx.store.read(mailbox_rows.by_address, ws_id, address)
    if row is None:
        raise NotFound(f"no mailbox {address!r}", code="mailbox_not_found")
    return row


SINCE_CHOICES = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}


def find_messages(ctx: Context, session: Session, *, app_id: str | None = None, status: str | None = None,
                  domain: str | None = None, since: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The message log as `messages list` shows it (service.messages.message_view), filtered."""
    from js2mail.errors import ValidationError
    from js2mail.models import MESSAGE_STATUSES
    from js2mail.service.messages import message_view

    if status and status not in MESSAGE_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(MESSAGE_STATUSES)}", code="invalid_status")
    if since and since not in SINCE_CHOICES:
        raise ValidationError(f"since must be one of {', '.join(SINCE_CHOICES)}", code="invalid_since")
    if app_id and app_id not in {a["id"] for a in applications(ctx, session)}:
        raise NotFound(f"no application {app_id!r}", code="application_not_found")
    start = ctx.clock.now() - SINCE_CHOICES[since] if since else None
    found = ctx.store.read(rows.messages, workspace_id=session.workspace_id, app_id=app_id or None,
                           status=status or None, domain=(domain or "").strip().lower() or None, since=start,
                           limit=limit)
    return [{**message_view(r), "application": r["application"], "workspace": r["workspace"]} for r in found]


def message_in_scope(ctx: Context, session: Session, message_id: str) -> dict[str, Any]:
    """One message and its application's id, or NotFound when the session may not see it."""
    from js2mail.service.messages import message_view

    row = ctx.store.read(rows.message, message_id)
    if row is None or (session.workspace_id is not None and row["workspace_id"] != session.workspace_id):
        raise NotFound(f"no message {message_id!r}", code="message_not_found")
    return {**message_view(row), "applicationId": row["application_id"],
            "providerResponse": row["provider_response"]}  # redacted where it is stored


def key_in_scope(ctx: Context, session: Session, prefix: str) -> dict[str, Any]:
    from js2mail.service import keys

    for info in keys.list_keys(ctx, session.workspace):
        if info["prefix"] == prefix:
            return info
    raise NotFound(f"no API key with prefix {prefix!r}", code="key_not_found")


def endpoint_in_scope(ctx: Context, session: Session, endpoint_id: str) -> dict[str, Any]:
    """A webhook endpoint (`webhooks list`'s view) and its 20 latest deliveries (`webhooks deliveries`'
    view: outcomes, never payloads), or NotFound when the session may not see it."""
    from js2mail.service import webhooks
    from js2mail.store import webhooks as webhook_rows

    row = ctx.store.read(webhook_rows.endpoint, endpoint_id)
    if row is None or (session.workspace is not None and row["workspace"] != session.workspace):
        raise NotFound(f"no webhook endpoint {endpoint_id!r}", code="webhook_not_found")
    return {**webhooks.endpoint_info(row, ctx.clock.now()),
            "deliveries": webhooks.list_deliveries(ctx, endpoint_id, limit=20)}
