"""Typed request/response shapes for the OpenAPI document. Validation rules live in `js2mail.mail`."""

from __future__ import annotations

import msgspec


class Attachment(msgspec.Struct, rename="camel"):
    filename: str
    content: str  # base64
    content_type: str | None = None


class SendRequest(msgspec.Struct, rename="camel", omit_defaults=True):
    to: str | list[str]
    subject: str
    from_: str | None = msgspec.field(default=None, name="from")
    cc: str | list[str] | None = None
    bcc: str | list[str] | None = None
    reply_to: str | list[str] | None = None
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] | None = None
    headers: dict[str, str] | None = None
    metadata: dict[str, str] | None = None
    idempotency_key: str | None = None
    scheduled_at: str | None = None


class SendResponse(msgspec.Struct):
    id: str
    status: str


class Message(msgspec.Struct, rename="camel"):
    id: str
    status: str
    attempts: int
    created_at: str
    sent_at: str | None
    next_attempt_at: str | None
    scheduled_at: str | None
    last_error: str | None
    recipient_domains: list[str]
    metadata: dict[str, str]
    source: str


class MessageList(msgspec.Struct, rename="camel"):
    data: list[Message]
    next_cursor: str | None


class Form(msgspec.Struct, rename="camel"):
    id: str
    name: str
    workspace: str
    application: str
    to: str
    mailbox: str | None
    redirect: str | None
    origins: list[str]
    status: str
    endpoint: str
    created_at: str


class FormList(msgspec.Struct):
    data: list[Form]


class FormCreate(msgspec.Struct):
    to: str
    name: str | None = None
    mailbox: str | None = None
    redirect: str | None = None
    origins: list[str] | None = None
