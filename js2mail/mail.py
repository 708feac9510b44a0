"""Validating a send request and building its MIME message. Pure: no I/O.

Every header-bound value (subject, display names, addresses, custom headers, filenames,
metadata) is refused when it holds a control character — CR, LF, NUL, \\x0b, \\x0c, the
\\x1c-\\x1e separators, \\x85, \\u2028, \\u2029 and the rest of category Cc — trailing ones
included, before any message is built — so the MIME builder never sees a value that could
break a header line (the stdlib's own checks, CVE-2024-6923 / gh-144125, are not relied on).
"""

from __future__ import annotations

import binascii
import functools
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime
from typing import Any

import msgspec
from email_validator import EmailNotValidError, validate_email

from js2mail import attachments, mime
from js2mail.errors import ValidationError

MAX_SUBJECT = 998
MAX_HEADER_VALUE = 998
MAX_HEADERS = 50
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
MAX_FILENAME = 255
MAX_ATTACHMENTS = 50
MAX_REPLY_TO = 10
MAX_FIELDS = 32  # a /v1/send body has 13 known fields; far more is refused before looking at any
MAX_DETAILS = 20  # a 422 lists the first problems and counts the rest
MAX_DISPLAY_NAME = 300
MAX_WORD = 900  # an unbreakable run this long still fits SMTP's 998-octet line after "Header: "
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # lone surrogates cannot be encoded either
SURROGATE = re.compile(r"[\ud800-\udfff]")
HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")  # RFC 5322 ftext: printable ASCII except ':'
NAMED = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^"<>]*?))\s*<([^<>]+)>\s*$')
RESERVED_HEADERS = {"from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "sender",
                    "mime-version", "return-path", "content-type", "content-transfer-encoding",
                    "content-disposition", "content-id", "content-description"}
BLOCKED_EXTENSIONS = attachments.BLOCKED_EXTENSIONS
# Trace and authentication fields are written by the servers a mail passes through; an app that
# sets them forges a delivery path or a verdict.
TRACE_HEADERS = {"received", "received-spf", "authentication-results", "dkim-signature", "domainkey-signature",
                 "delivered-to", "x-original-to", "return-receipt-to"}
TRACE_PREFIXES = ("resent-", "arc-")
KNOWN_FIELDS = {"from", "to", "cc", "bcc", "replyTo", "subject", "text", "html", "attachments", "headers",
                "metadata", "idempotencyKey", "scheduledAt", "dryRun"}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class MailRequest:
    from_: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    reply_to: tuple[str, ...]
    subject: str
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    scheduled_at: float | None = None


class _Problems:
    """The problems found, of which only the first `MAX_DETAILS` are kept: a request with a million
    bad entries gets a small 422, not a response as large as itself."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []
        self.count = 0

    def add(self, where: str, code: str, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_DETAILS:
            self.items.append({"field": where, "code": code, "message": message})

    def raise_if_any(self) -> None:
        if not self.count:
            return
        first = self.items[0]
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        details = list(self.items)
        if self.count > len(self.items):
            details.append({"field": "", "code": "more_problems",
                            "message": f"{self.count - len(self.items)} more problems not listed"})
        raise ValidationError(f"{first['field']}: {first['message']}{more}", details=details)


def longest_word(value: str) -> int:
    """The longest run without whitespace: where a header line cannot be folded."""
    return max((len(w) for w in value.split()), default=0)


def has_control(value: str) -> bool:
    return CONTROL.search(value) is not None


DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    """A domain's normalized form, validated once: IDNA checks dominate email-validator's cost."""
    return validate_email(f"postmaster@{domain}", check_deliverability=False).domain


def normalize_address(raw: str) -> str:
    """email-validator's normalized address (raises EmailNotValidError like it). For the common
    ASCII dot-atom local part the domain comes from a per-domain cache; anything else is
    validated in full."""
    local, at, domain = raw.rpartition("@")
    if at and len(local) <= 64 and DOT_ATOM.fullmatch(local) and domain.isascii() and len(raw) <= 254:
        return f"{local}@{_domain(domain)}"
    return validate_email(raw, check_deliverability=False).normalized


def parse_mailbox(value: str) -> tuple[str, str]:
    """("Display Name", "addr@example.com") from `addr` or `Name <addr>`; the address is validated."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an address is required")
    if has_control(value):
        raise ValueError("contains a control character")
    match = NAMED.match(value)
    if match:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        name = re.sub(r"\\(.)", r"\1", name or "").strip()
        raw = match.group(3).strip()
    else:
        name, raw = "", value.strip()
    if any(c in raw for c in '<>",;') or " " in raw:
        raise ValueError("is not a single email address")
    try:
        address = normalize_address(raw)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return name, address


def format_address(display_name: str, address: str) -> str:
    if not display_name:
        return address
    if re.search(r'[()<>\[\]:;@\\,."]', display_name):
        quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{display_name} <{address}>"


def _addresses(value: Any, where: str, problems: _Problems, *, limit: int,
               required: bool = False) -> tuple[str, ...]:
    if value is None or value == [] or value == "":
        if required:
            problems.add(where, "required", f"at least one {where} address is required")
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        problems.add(where, "invalid_type", f"{where} must be a string or a list of strings")
        return ()
    if len(items) > limit:  # refused before a single entry is looked at
        code = "too_many_recipients" if where != "replyTo" else "too_many_addresses"
        problems.add(where, code, f"{where} has {len(items)} entries; at most {limit}")
        return ()
    out: list[str] = []
    for i, item in enumerate(items):
        spot = f"{where}[{i}]" if not isinstance(value, str) else where
        if not isinstance(item, str):
            problems.add(spot, "invalid_type", "must be a string")
            continue
        try:
            out.append(_checked_address(item))
        except ValueError as exc:
            problems.add(spot, "invalid_address", f"{item[:100]!r} {exc}")
    return tuple(out)


def _checked_address(value: str) -> str:
    """`format_address(*parse_mailbox(value))`, refusing display names no header line can hold."""
    if len(value) > MAX_DISPLAY_NAME + 300:
        raise ValueError("is too long for an address")
    name, address = parse_mailbox(value)
    if len(name) > MAX_DISPLAY_NAME:
        raise ValueError(f"has a display name over {MAX_DISPLAY_NAME} characters")
    if longest_word(name) > MAX_WORD:
        raise ValueError(f"has a display name with a word over {MAX_WORD} characters (SMTP lines end at 998)")
    return format_address(name, address)


def _text(payload: dict[str, Any], key: str, problems: _Problems) -> str | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, str):
        problems.add(key, "invalid_type", f"{key} must be a string")
        return None
    if value and SURROGATE.search(value):
        problems.add(key, "invalid_text", f"{key} holds a lone UTF-16 surrogate, which no mail can carry")
        return None
    return value or None


def _attachments(value: Any, problems: _Problems) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add("attachments", "invalid_type", "attachments must be a list")
        return ()
    if len(value) > MAX_ATTACHMENTS:
        problems.add("attachments", "too_many", f"at most {MAX_ATTACHMENTS} attachments")
        return ()
    out = []
    for i, item in enumerate(value):
        where = f"attachments[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str) \
                or not isinstance(item.get("content"), str) or set(item) - {"filename", "content", "contentType"}:
            problems.add(where, "invalid_type", "each attachment is {filename, content (base64), contentType?}")
            continue
        filename = item["filename"]
        if not filename or len(filename) > MAX_FILENAME or has_control(filename) or any(c in filename for c in "/\\"):
            problems.add(f"{where}.filename", "invalid_filename",
                         "a filename without paths or control characters is required")
            continue
        claimed = item.get("contentType") or None
        try:
            if claimed is not None and not isinstance(claimed, str):
                raise attachments.AttachmentRefused("invalid_content_type", "contentType must be a string")
            vetted = attachments.vet(filename, claimed)
        except attachments.AttachmentRefused as refused:
            spot = f"{where}.contentType" if refused.code == "invalid_content_type" else f"{where}.filename"
            problems.add(spot, refused.code, refused.message)
            continue
        try:
            content = binascii.a2b_base64(item["content"].encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            problems.add(f"{where}.content", "invalid_base64", "content must be standard base64")
            continue
        out.append(Attachment(filename, content, vetted.content_type))
    return tuple(out)


def _headers(value: Any, problems: _Problems) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        problems.add("headers", "invalid_type", f"headers must be an object of at most {MAX_HEADERS} strings")
        return ()
    out = []
    for name, val in value.items():
        where = f"headers.{name[:40]}" if isinstance(name, str) else "headers"
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            problems.add(where, "invalid_header_name", "header names are printable ASCII without ':' or spaces")
        elif name.lower() in RESERVED_HEADERS or name.lower().startswith("content-"):
            problems.add(where, "reserved_header", f"{name} is set by js2mail and cannot be overridden")
        elif name.lower() in TRACE_HEADERS or name.lower().startswith(TRACE_PREFIXES):
            problems.add(where, "trace_header", f"{name} is a trace or authentication field that only the "
                                                "servers a mail passes through may write")
        elif not isinstance(val, str) or has_control(val) or len(val) > MAX_HEADER_VALUE:
            problems.add(where, "invalid_header_value", "header values are strings without control characters")
        elif val.isascii() and longest_word(val) + len(name) + 2 > MAX_WORD:
            problems.add(where, "line_too_long", f"a word in {name} is too long for one 998-octet SMTP line")
        else:
            out.append((name, val))
    return tuple(out)


def _metadata(value: Any, problems: _Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_METADATA_KEYS:
        problems.add("metadata", "invalid_type", f"metadata must be an object of at most {MAX_METADATA_KEYS} strings")
        return {}
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key or len(key) > MAX_METADATA_KEY or has_control(key):
            problems.add("metadata", "invalid_metadata_key", f"keys are 1-{MAX_METADATA_KEY} characters, no controls")
        elif not isinstance(val, str) or len(val) > MAX_METADATA_VALUE or has_control(val):
            problems.add(f"metadata.{key}", "invalid_metadata_value",
                         f"values are strings of at most {MAX_METADATA_VALUE} characters, no controls")
        else:
            out[key] = val
    return out


RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:\d{2})?",
                     re.ASCII)


def _scheduled(value: Any, problems: _Problems, now: float | None, max_ahead: float | None) -> float | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise ValueError
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        problems.add("scheduledAt", "invalid_datetime", "scheduledAt must be ISO 8601, e.g. 2026-06-01T09:00:00Z")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    at = moment.timestamp()
    if now is not None and max_ahead is not None and at > now + max_ahead:
        problems.add("scheduledAt", "scheduled_too_far",
                     f"scheduledAt may be at most {max_ahead / 86400:g} days ahead ([dispatch] max_schedule_days)")
        return None
    return at


def parse_send_request(payload: object, *, max_recipients: int = 50, now: float | None = None,
                       max_schedule_ahead: float | None = None) -> MailRequest:
    """A validated, normalized request, or one ValidationError listing its problems (the first
    `MAX_DETAILS`, and how many more). Work is bounded before it starts: an object with far too many
    fields and lists longer than their limit are refused without looking at their entries."""
    if not isinstance(payload, dict):
        raise ValidationError("the request body must be a JSON object", details=[
            {"field": "", "code": "invalid_type", "message": "expected an object"}])
    if len(payload) > MAX_FIELDS:
        raise ValidationError(f"the request has {len(payload)} fields; /v1/send knows {len(KNOWN_FIELDS)}",
                              code="too_many_fields", details=[
                                  {"field": "", "code": "too_many_fields",
                                   "message": f"at most {MAX_FIELDS} fields: {', '.join(sorted(KNOWN_FIELDS))}"}])
    problems = _Problems()
    for key in payload:
        if key not in KNOWN_FIELDS:
            problems.add(str(key)[:60], "unknown_field", "not a field of /v1/send")
    from_ = payload.get("from")
    if from_ is not None:
        if not isinstance(from_, str):
            problems.add("from", "invalid_type", "from must be a string")
            from_ = None
        else:
            try:
                from_ = _checked_address(from_)
            except ValueError as exc:
                problems.add("from", "invalid_address", f"{from_[:100]!r} {exc}")
                from_ = None
    to = _addresses(payload.get("to"), "to", problems, limit=max_recipients, required=True)
    cc = _addresses(payload.get("cc"), "cc", problems, limit=max_recipients)
    bcc = _addresses(payload.get("bcc"), "bcc", problems, limit=max_recipients)
    reply_to = _addresses(payload.get("replyTo"), "replyTo", problems, limit=MAX_REPLY_TO)
    if len(to) + len(cc) + len(bcc) > max_recipients:
        problems.add("to", "too_many_recipients", f"at most {max_recipients} recipients in to, cc and bcc together")
    subject = payload.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        problems.add("subject", "required", "subject is required")
        subject = ""
    elif has_control(subject):
        problems.add("subject", "control_character", "subject may not contain control characters or line breaks")
    elif len(subject) > MAX_SUBJECT:
        problems.add("subject", "too_long", f"subject is at most {MAX_SUBJECT} characters")
    elif subject.isascii() and longest_word(subject) > MAX_WORD:
        problems.add("subject", "line_too_long", f"subject has a word over {MAX_WORD} characters; SMTP lines "
                                                 "end at 998 octets")
    text, html = _text(payload, "text", problems), _text(payload, "html", problems)
    if text is None and html is None:
        problems.add("text", "required", "give text, html or both")
    request = MailRequest(
        from_=from_, to=to, cc=cc, bcc=bcc, reply_to=reply_to, subject=subject, text=text, html=html,
        attachments=_attachments(payload.get("attachments"), problems), headers=_headers(payload.get("headers"),
                                                                                         problems),
        metadata=_metadata(payload.get("metadata"), problems),
        scheduled_at=_scheduled(payload.get("scheduledAt"), problems, now, max_schedule_ahead),
    )
    problems.raise_if_any()
    return request


def estimated_size(req: MailRequest) -> int:
    """About the raw RFC 5322 size: bodies plus base64-expanded attachments plus headers."""
    body = sum(mime.encoded_size(t.encode("utf-8", "surrogatepass")) for t in (req.text, req.html) if t)
    attached = sum(len(a.content) * 4 // 3 + len(a.content) // 38 + 300 for a in req.attachments)
    heads = 1000 + sum(len(v) for v in (*req.to, *req.cc, *req.bcc, *req.reply_to, req.subject))
    return body + attached + heads


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(MailRequest)


def serialize(req: MailRequest) -> bytes:
    return _encoder.encode(req)


def deserialize(data: bytes) -> MailRequest:
    return _decoder.decode(data)


def bare_address(value: str) -> str:
    """The address inside a value this module normalized (`addr` or `Name <addr>`), without re-validating."""
    return value[value.rindex("<") + 1 : -1] if value.endswith(">") else value


def split_formatted(value: str) -> tuple[str, str]:
    """(name, address) of a value `format_address` made, without re-validating it."""
    if not value.endswith(">"):
        return "", value
    cut = value.rindex("<")
    name = value[:cut].rstrip()
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name, value[cut + 1 : -1]


@functools.lru_cache(maxsize=4096)
def ascii_domain(domain: str) -> str:
    """The domain as DNS and SMTP carry it: IDNA A-labels (xn--…), via email-validator's IDNA 2008."""
    if domain.isascii():
        return domain
    return str(validate_email(f"postmaster@{domain}", check_deliverability=False).ascii_domain)


def wire_address(address: str) -> str:
    """A normalized address as it travels in the envelope and the headers: the domain A-labelled,
    the local part as it is (a non-ASCII one needs SMTPUTF8 or an API that takes RFC 6532 mail)."""
    local, _, domain = address.rpartition("@")
    return address if domain.isascii() else f"{local}@{ascii_domain(domain)}"


def needs_smtputf8(address: str) -> bool:
    """True for an internationalized (EAI) address: non-ASCII before the @."""
    return not address.rpartition("@")[0].isascii()


def eai_addresses(req: MailRequest, mailbox_address: str) -> list[str]:
    """Every address of the message (the mailbox's own included) that needs SMTPUTF8."""
    found = [mailbox_address] if needs_smtputf8(mailbox_address) else []
    for value in (*req.to, *req.cc, *req.bcc, *req.reply_to):
        address = bare_address(value)
        if needs_smtputf8(address):
            found.append(address)
    return found


def eai_refusal(addresses: list[str], eai: str, smtputf8: bool | None, mailbox: str) -> tuple[str, str] | None:
    """(code, message) when a mailbox can never send to these EAI addresses, else None.

    Gmail takes RFC 6532 messages; Microsoft Graph does not document it, so it is refused; an SMTP
    server must advertise SMTPUTF8, as recorded by `js2mail mailboxes test` (unknown counts as no)."""
    if not addresses or eai == "yes":  # `eai`: the provider registry's answer (yes, no, if_offered)
        return None
    which = ", ".join(addresses[:3])
    if eai == "no":
        return ("eai_not_supported", f"{which}: an address with non-ASCII characters before the @ needs SMTPUTF8, "
                                     "which Microsoft Graph does not document; send it through an SMTP or Gmail mailbox")
    if smtputf8 is None:
        return ("smtputf8_unknown", f"{which}: an address with non-ASCII characters before the @ needs an SMTP server "
                                    f"that offers SMTPUTF8, and whether {mailbox}'s does is not known yet; run "
                                    f"`js2mail mailboxes test {mailbox} --to ADDRESS` once to record it")
    if not smtputf8:
        return ("smtputf8_not_supported", f"{which}: an address with non-ASCII characters before the @ needs "
                                          f"SMTPUTF8, which the SMTP server of {mailbox} does not offer")
    return None


def envelope_recipients(req: MailRequest) -> tuple[str, ...]:
    """SMTP RCPT TO addresses: every To, Cc and Bcc once, domains A-labelled."""
    return tuple(dict.fromkeys(wire_address(bare_address(v)) for v in (*req.to, *req.cc, *req.bcc)))


def recipient_domains(req: MailRequest) -> list[str]:
    """The recipients' domains as people read them (Unicode), for the send log."""
    return sorted({bare_address(v).rsplit("@", 1)[1].lower() for v in (*req.to, *req.cc, *req.bcc)})


def _address_list(header: str, values: tuple[str, ...]) -> str:
    return mime.address_list(header, [mime.mailbox(name, wire_address(address))
                                      for name, address in map(split_formatted, values)])


@functools.lru_cache(maxsize=4)
def _date_header(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))  # one per second, not one per message


def message_headers(req: MailRequest, *, from_header: str, message_id: str,
                    date: float) -> tuple[list[tuple[str, str]], str | None]:
    """Every header but the MIME ones, encoded and folded (js2mail.mime), and the Bcc value apart."""
    name, address = split_formatted(from_header)
    headers = [("From", mime.mailbox(name, wire_address(address)))]
    for header, values in (("To", req.to), ("Cc", req.cc), ("Reply-To", req.reply_to)):
        if values:
            headers.append((header, _address_list(header, values)))
    headers += [("Subject", mime.unstructured("Subject", req.subject)),
                ("Date", _date_header(int(date))), ("Message-ID", message_id)]
    for header, value in req.headers:
        headers.append((header, mime.unstructured(header, value)))
    return headers, _address_list("Bcc", req.bcc) if req.bcc else None


class _Verbatim(Compat32):
    """Header values go out exactly as js2mail.mime encoded and folded them (UTF-8 only in an
    EAI address); bodies are never `From `-mangled."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        return f"{name}: {value}{self.linesep}"

    def fold_binary(self, name: str, value: Any) -> bytes:
        return self._fold(name, value, False).encode("utf-8")


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable in any mail source view, unlike base64
WIRE = _Verbatim(linesep="\r\n", mangle_from_=False)
STDLIB_ONLY_TYPES = ("message/", "multipart/")  # attachments the direct writer leaves to the stdlib
Built = Message | mime.Rendered


def build_email(req: MailRequest, *, from_header: str, message_id: str, date: float,
                writer: str = "direct") -> Built:
    """The message: js2mail.mime's direct writer for the shapes the API sends, the stdlib's
    `email.mime` classes when `writer="stdlib"` or an attachment is itself a message or multipart.

    Both share the header encoders and the body rules (CRLF line ends, no `From ` mangling, QP
    UTF-8 text, base64 attachments with a proven charset). Every header value was validated by
    `parse_send_request` (no control characters) before it gets here. The Bcc header is kept:
    `flatten(…, drop_bcc=True)` removes it for SMTP, while the Gmail and Graph APIs read it.
    """
    headers, bcc = message_headers(req, from_header=from_header, message_id=message_id, date=date)
    if writer == "direct" and not any(a.content_type.startswith(STDLIB_ONLY_TYPES) for a in req.attachments):
        attachments = [mime.Attachment(a.filename, a.content, a.content_type) for a in req.attachments]
        return mime.write(headers, bcc, req.text, req.html, attachments)
    return _stdlib_email(req, headers, bcc)


def _text_part(text: str, subtype: str) -> MIMEText:
    normalized = mime.normalize_newlines(text)
    if mime.prefers_base64(normalized.encode("utf-8")):
        return MIMEText(normalized, subtype, "utf-8")  # the stdlib's utf-8 charset is base64
    part = MIMEText(normalized, subtype, _UTF8_QP)  # type: ignore[arg-type]  # takes a Charset
    if not text.endswith(("\n", "\r")):
        part.set_payload(str(part.get_payload()) + "=\n")  # a soft break: the closing CRLF decodes to nothing
    return part


def _stdlib_email(req: MailRequest, headers: list[tuple[str, str]], bcc: str | None) -> Message:
    body: Message
    if req.text is not None and req.html is not None:
        body = MIMEMultipart("alternative")
        body.attach(_text_part(req.text, "plain"))
        body.attach(_text_part(req.html, "html"))
    else:
        body = _text_part(req.text, "plain") if req.text is not None else _text_part(req.html or "", "html")
    msg: Message = body
    if req.attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        for att in req.attachments:
            maintype, _, subtype = att.content_type.partition("/")
            charset = mime.text_charset(att.content) if maintype == "text" else None
            part = MIMEBase(maintype, subtype)
            if charset:
                part.set_param("charset", charset)
            part.set_payload(att.content)
            encode_base64(part)
            part["Content-Disposition"] = mime.disposition(att.filename)
            msg.attach(part)
    for sub in msg.walk():
        if sub is not msg:
            del sub["MIME-Version"]  # belongs on the top level only
    for header, value in headers:
        msg[header] = value
    if bcc:
        msg["Bcc"] = bcc
    return msg


def flatten(msg: Built, *, drop_bcc: bool = False) -> bytes:
    """RFC 5322 bytes with CRLF line ends; without the Bcc header when it must not travel (SMTP)."""
    if isinstance(msg, mime.Rendered):
        return msg.wire(drop_bcc=drop_bcc)
    if drop_bcc:
        del msg["Bcc"]
    out = io.BytesIO()
    BytesGenerator(out, policy=WIRE).flatten(msg)
    return out.getvalue()
