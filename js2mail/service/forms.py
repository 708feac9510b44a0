"""Contact forms: manage endpoints (CLI, API and MCP share this) and accept public submissions."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from js2mail import forms, mail
from js2mail.errors import NotFound, ValidationError
from js2mail.models import Principal, Scope, iso, new_id, random_base62
from js2mail.service import Context
from js2mail.service.keys import ensure_scope
from js2mail.service.messages import enqueue_request, resolve_mailbox
from js2mail.store import forms as rows
from js2mail.store import mailboxes as mailbox_rows
from js2mail.store import tenancy

MAX_NAME = 200
MAX_URL = 2000
MAX_ORIGINS = 50


def _checked_name(name: str | None) -> str:
    """A form's name ends up in the owner's Subject header: one line, no control characters."""
    if name is None:
        return "Contact form"
    if not name.strip() or len(name) > MAX_NAME or mail.has_control(name):
        raise ValidationError(f"the form name must be 1-{MAX_NAME} characters without control characters or "
                              "line breaks", code="invalid_name")
    return name


def _checked_url(url: str, what: str) -> str:
    """An absolute http(s) URL fit for a Location header: no control characters, a valid port, an
    ASCII host (IDNs in their xn-- form); anything non-ASCII after the host percent-encoded."""
    bad = f"{what} {url[:200]!r} must be an absolute http(s) URL"
    if len(url) > MAX_URL or mail.has_control(url) or "\\" in url:
        raise ValidationError(f"{bad} of at most {MAX_URL} characters without control characters or backslashes",
                              code="invalid_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValidationError(f"{bad}: {exc}", code="invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        raise ValidationError(f"{bad} with a host and no user name", code="invalid_url")
    if not parts.netloc.isascii():
        raise ValidationError(f"{bad}; write an international domain in its xn-- (punycode) form",
                              code="invalid_url")
    safe = forms.header_safe_url(url)
    assert safe is not None
    return safe


def _checked_origins(origins: list[str] | None) -> list[str]:
    if len(origins or []) > MAX_ORIGINS:
        raise ValidationError(f"at most {MAX_ORIGINS} origins", code="invalid_url")
    checked = [forms.origin_of(_checked_url(o, "origin")) for o in (origins or [])]
    return [o for o in checked if o is not None]


def form_info(ctx: Context, row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["public_id"],
        "name": row["name"],
        "workspace": row["workspace"],
        "application": row["application"],
        "to": row["to_address"],
        "mailbox": row["mailbox_address"],
        "redirect": row["redirect_url"],
        "origins": json.loads(row["origins"]),
        "status": row["status"],
        "endpoint": f"{ctx.settings.public_url}/f/{row['public_id']}",
        "createdAt": iso(row["created_at"]),
    }


def create_form(ctx: Context, scope: Scope | Principal, *, to: str, name: str | None = None,
                mailbox: str | None = None, redirect: str | None = None, origins: list[str] | None = None) -> dict[str, Any]:
    from email_validator import EmailNotValidError

    from js2mail.mail import normalize_address

    try:
        to_address = normalize_address(to)
    except EmailNotValidError as exc:
        message = f"{to[:100]!r} is not a valid email address: {exc}"
        raise ValidationError(f"to: {message}", code="invalid_address",
                              details=[{"field": "to", "code": "invalid_address", "message": message}]) from None
    form_name = _checked_name(name)
    clean_origins = _checked_origins(origins)
    redirect = _checked_url(redirect, "redirect") if redirect else None
    now = ctx.clock.now()

    def run(conn: sqlite3.Connection) -> sqlite3.Row:
        mailbox_id = None
        if mailbox:
            row = mailbox_rows.by_address(conn, scope.workspace_id, mailbox)
            if row is None:
                raise ValidationError(f"no mailbox {mailbox} in this workspace", code="mailbox_not_found")
            mailbox_id = row["id"]
        else:
            resolve_mailbox(conn, scope.workspace_id, scope.application_id, None)  # fail now, not at submit time
        public_id = random_base62(12)
        rows.insert(conn, form_id=new_id("frm"), public_id=public_id, workspace_id=scope.workspace_id,
                    app_id=scope.application_id, mailbox_id=mailbox_id, name=form_name,
                    to_address=to_address, redirect_url=redirect, origins=clean_origins, now=now)
        created = rows.by_public_id(conn, public_id)
        assert created is not None
        return created

    return form_info(ctx, ctx.store.write_sync(run))


def create_form_for(ctx: Context, workspace: str, app: str, **kw: Any) -> dict[str, Any]:
    return create_form(ctx, ensure_scope(ctx, workspace, app), **kw)


def list_forms(ctx: Context, *, app_id: str | None = None, workspace: str | None = None,
               application: str | None = None) -> list[dict[str, Any]]:
    return [form_info(ctx, r) for r in ctx.store.read(rows.listing, app_id=app_id, workspace=workspace,
                                                       application=application)]


def get_form(ctx: Context, public_id: str, app_id: str | None = None) -> dict[str, Any]:
    row = ctx.store.read(rows.by_public_id, public_id)
    if row is None or (app_id is not None and row["application_id"] != app_id):
        raise NotFound(f"no form {public_id!r}", code="form_not_found")
    return form_info(ctx, row)


def remove_form(ctx: Context, public_id: str, app_id: str | None = None) -> dict[str, Any]:
    info = get_form(ctx, public_id, app_id)
    ctx.store.write_sync(rows.delete, public_id, app_id)
    return info


@dataclass(frozen=True)
class PublicForm:
    row: sqlite3.Row
    origins: list[str]

    @property
    def public_id(self) -> str:
        return str(self.row["public_id"])


def public_form(ctx: Context, public_id: str) -> PublicForm:
    row = ctx.store.read(rows.by_public_id, public_id)
    if row is None or row["status"] != "active":
        raise NotFound("this form does not exist or is disabled", code="form_not_found")
    return PublicForm(row, json.loads(row["origins"]))


async def submit(ctx: Context, form: PublicForm, submission: forms.Submission) -> str | None:
    """Queue the owner's mail for a submission; returns the message id (None for spam: nothing is sent)."""
    if submission.is_spam:
        return None
    row = form.row
    now = ctx.clock.now()
    owner = forms.owner_mail(form_name=row["name"], submission=submission, submitted_at=now)
    mailbox = ctx.store.read(_form_mailbox, row)
    req = mail.MailRequest(
        from_=None, to=(row["to_address"],), cc=(), bcc=(),
        reply_to=(submission.reply_to,) if submission.reply_to else (),
        subject=submission.subject or owner.subject, text=owner.text, html=owner.html,
        attachments=tuple(mail.Attachment(f.filename, f.content, f.content_type) for f in submission.files),
        headers=(), metadata={"formId": form.public_id}, scheduled_at=None,
    )
    event = ("form.submitted", {"formId": form.public_id, "fields": dict(submission.fields),
                                "files": [f.filename for f in submission.files]})
    outcome = await enqueue_request(ctx, row["workspace_id"], row["application_id"], req, mailbox, source="form",
                                    extra_event=event)
    return str(outcome.body["id"])


def _form_mailbox(conn: sqlite3.Connection, row: sqlite3.Row) -> sqlite3.Row:
    if row["mailbox_id"]:
        mailbox = mailbox_rows.by_id(conn, row["mailbox_id"])
        if mailbox is not None:
            return mailbox
    app = tenancy.application_by_id(conn, row["application_id"])
    assert app is not None
    return resolve_mailbox(conn, row["workspace_id"], row["application_id"], None)
