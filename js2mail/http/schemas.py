"""Typed request/response shapes for the OpenAPI document. Validation rules live in `js2mail.mail`
(the constraints below restate its limits where a JSON Schema can, so clients and fuzzers see them);
`js2mail.http.contract` publishes msgspec's own JSON Schema of these Structs."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from js2mail import mail

NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
Address = Annotated[str, msgspec.Meta(
    min_length=3, max_length=mail.MAX_DISPLAY_NAME + 300, extra_json_schema={"format": "email"},
    description="`addr` (a display name is accepted too: `Name <addr>`)")]
Recipients = Address | Annotated[list[Address], msgspec.Meta(max_length=50)]
Line = Annotated[str, msgspec.Meta(min_length=1, max_length=mail.MAX_SUBJECT, pattern=NO_CONTROLS)]
MetadataKey = Annotated[str, msgspec.Meta(min_length=1, max_length=mail.MAX_METADATA_KEY, pattern=NO_CONTROLS)]
MetadataValue = Annotated[str, msgspec.Meta(max_length=mail.MAX_METADATA_VALUE, pattern=NO_CONTROLS)]
HeaderName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[!-9;-~]+$")]
HeaderValue = Annotated[str, msgspec.Meta(max_length=mail.MAX_HEADER_VALUE, pattern=NO_CONTROLS)]
IDEMPOTENCY_KEY = {"min_length": 1, "max_length": 255, "pattern": r"^[ -~]+$"}  # 1-255 printable ASCII
IdempotencyKey = Annotated[str, msgspec.Meta(**IDEMPOTENCY_KEY)]
Timestamp = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]

MessageStatus = Literal["queued", "sending", "retrying", "sent", "failed", "cancelled", "dry_run"]


class Attachment(msgspec.Struct, rename="camel"):
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=mail.MAX_FILENAME,
                                          pattern=r"^[^/\\\x00-\x1f\x7f-\x9f\u2028\u2029]+$")]
    content: Annotated[str, msgspec.Meta(extra_json_schema={"contentEncoding": "base64"},
                                         pattern=r"^([A-Za-z0-9+/]{4})*$")]
    content_type: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$")] | None = None


class SendRequest(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    """One mail. At least one of `text` and `html`; 50 recipients in all at most."""

    to: Recipients
    subject: Line
    from_: Address | None = msgspec.field(default=None, name="from")
    cc: Recipients | None = None
    bcc: Recipients | None = None
    reply_to: Address | Annotated[list[Address], msgspec.Meta(max_length=mail.MAX_REPLY_TO)] | None = None
    text: str | None = None
    html: str | None = None
    attachments: Annotated[list[Attachment], msgspec.Meta(max_length=mail.MAX_ATTACHMENTS)] | None = None
    headers: Annotated[dict[HeaderName, HeaderValue], msgspec.Meta(max_length=mail.MAX_HEADERS)] | None = None
    metadata: Annotated[dict[MetadataKey, MetadataValue], msgspec.Meta(max_length=mail.MAX_METADATA_KEYS)] | None = None
    idempotency_key: IdempotencyKey | None = None
    scheduled_at: Timestamp | None = None
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
