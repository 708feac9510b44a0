"""Typed request/response shapes for the OpenAPI document. Validation rules live in `js2mail.mail`."""

from __future__ import annotations

from typing import Literal

import msgspec

MessageStatus = Literal["queued", "sending", "retrying", "sent", "failed", "cancelled", "dry_run"]


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
    dry_run: bool | None = None  # everything but the provider call; the message ends `dry_run`


class QuotaPreview(msgspec.Struct, rename="camel"):
    daily: int
    used_today: int
    remaining: int
    would_send_today: bool


class DryRunPreview(msgspec.Struct):
    size: int  # bytes of the built RFC 5322 message
    quota: QuotaPreview | None  # the mailbox's daily quota as it stands (nothing reserved); null without one


class SendResponse(msgspec.Struct, omit_defaults=True):
    id: str
    status: MessageStatus
    dry_run: DryRunPreview | None = msgspec.field(default=None, name="dryRun")  # only for "dryRun": true


class Message(msgspec.Struct, rename="camel"):
    id: str
    status: MessageStatus
    attempts: int
    created_at: str
    sent_at: str | None
    next_attempt_at: str | None
    scheduled_at: str | None
    last_error: str | None
    recipient_domains: list[str]
    refused_recipients: int  # recipients the provider refused (the others were sent to); never addresses
    refused_domains: list[str]
    metadata: dict[str, str]
    source: str


class MessageList(msgspec.Struct, rename="camel"):
    data: list[Message]
    next_cursor: str | None


class Delivery(msgspec.Struct, rename="camel"):
    """A webhook delivery's outcome; never its payload."""

    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_http_status: int | None
    last_error: str | None
    latency_ms: int | None
    created_at: str
    last_attempt_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    failed_at: str | None
    redelivered_at: str | None
    redeliverable: bool


class DeliveryList(msgspec.Struct):
    data: list[Delivery]
