"""Contact-form submissions: special fields, spam and size rules, the owner's mail, origins,
CORS and redirects. Pure: no I/O.

Field names follow what Formspree, Web3Forms, FormSubmit and Basin users already write, so their
snippets keep working: `_replyto` or `email` (Reply-To), `_subject`, `_next` (redirect), and the
honeypots `_gotcha`, `_honey` and `botcheck`. Every other field starting with `_` (`_template`,
`_captcha`, `_cc`, …) is ignored: never mailed, never acted on.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from email_validator import EmailNotValidError

from js2mail import attachments
from js2mail.errors import Forbidden, TooLarge, ValidationError
from js2mail.mail import has_control, normalize_address
from js2mail.models import is_json_media

REPLY_FIELDS = ("_replyto", "email")
HONEYPOTS = ("_gotcha", "_honey", "botcheck")
MAX_NAME = 100
MAX_SUBJECT = 200
JSON_OK = {"status": "queued"}


@dataclass(frozen=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Submission:
    fields: tuple[tuple[str, str], ...]
    reply_to: str | None
    subject: str | None
    next_url: str | None
    is_spam: bool
    files: tuple[UploadedFile, ...] = ()


@dataclass(frozen=True)
class OwnerMail:
    subject: str
    text: str
    html: str


def _vetted_upload(f: UploadedFile) -> UploadedFile:
    """The upload under a clean base name, with the type the attachment policy derives from it (the
    visitor's Content-Type is never used); blocked executables are refused."""
    base = f.filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = attachments.normalize_filename("".join(c for c in base if not has_control(c)).strip()).lstrip(".")
    try:
        vetted = attachments.vet(cleaned[:200] or "upload")
    except attachments.AttachmentRefused as exc:
        raise ValidationError(f"{cleaned[:100]!r}: {exc.message}", code=exc.code) from None
    return UploadedFile(f.field, vetted.filename, vetted.content_type, f.content)


def parse_submission(pairs: Sequence[tuple[str, str]], files: Sequence[UploadedFile] = (), *, max_fields: int = 100,
                     max_file_bytes: int, max_total_bytes: int) -> Submission:
    if len(pairs) + len(files) > max_fields:
        raise ValidationError(f"a submission may have at most {max_fields} fields", code="too_many_fields")
    fields: list[tuple[str, str]] = []
    reply_to = subject = next_url = None
    spam = False
    for name, value in pairs:
        if not name or len(name) > MAX_NAME or has_control(name):
            raise ValidationError("field names must be 1-100 characters without control characters",
                                  code="invalid_field_name")
        if name in HONEYPOTS:
            spam = spam or bool(value.strip())
        elif name == "_subject":
            if has_control(value) or len(value) > MAX_SUBJECT:
                raise ValidationError("_subject must be one line of at most 200 characters", code="invalid_subject")
            subject = value.strip() or None
        elif name == "_next":
            next_url = value.strip() or None
        elif name in REPLY_FIELDS:
            if name == "email":
                fields.append((name, value))
            if value.strip() and reply_to is None:
                try:
                    reply_to = normalize_address(value.strip())
                except EmailNotValidError:
                    raise ValidationError(f"{value.strip()[:100]!r} is not a valid email address",
                                          code="invalid_email") from None
        elif not name.startswith("_"):
            fields.append((name, value))
    total = 0
    clean_files = []
    for f in files:
        if len(f.content) > max_file_bytes:
            raise TooLarge(f"{f.filename} is larger than {max_file_bytes} bytes", code="file_too_large")
        total += len(f.content)
        clean_files.append(_vetted_upload(f))
    if total > max_total_bytes:
        raise TooLarge(f"uploads total more than {max_total_bytes} bytes", code="upload_too_large")
    if not any(v.strip() for _, v in fields) and not clean_files:
        raise ValidationError("the submission is empty", code="empty_submission")
    return Submission(tuple(fields), reply_to, subject, next_url, spam, tuple(clean_files))


def pairs_from_json(obj: object) -> list[tuple[str, str]]:
    """A flat JSON object as form pairs; lists of plain values become repeated fields."""
    if not isinstance(obj, dict):
        raise ValidationError("a JSON submission must be an object of fields", code="invalid_body")
    pairs: list[tuple[str, str]] = []
    for key, value in obj.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, (dict, list)):
                raise ValidationError(f"field {str(key)[:50]!r} must be a plain value", code="invalid_body")
            text = "" if item is None else ("true" if item is True else "false" if item is False else str(item))
            pairs.append((str(key), text))
    return pairs


def owner_mail(*, form_name: str, submission: Submission, submitted_at: float) -> OwnerMail:
    when = datetime.fromtimestamp(submitted_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    form_name = one_line(form_name)
    subject = submission.subject or f"New submission: {form_name}"
    width = max((len(n) for n, _ in submission.fields), default=0)
    lines = [f"New submission to {form_name} ({when})", ""]
    for name, value in submission.fields:
        first, *rest = (value or "").splitlines() or [""]
        lines.append(f"{name.ljust(width)} : {first}")
        lines.extend(" " * (width + 3) + more for more in rest)
    if submission.files:
        lines += ["", "Attached: " + ", ".join(f.filename for f in submission.files)]
    rows = "".join(
        f'<tr><th style="text-align:left;vertical-align:top;padding:6px 12px;background:#f4f4f5">{html.escape(n)}</th>'
        f'<td style="padding:6px 12px">{html.escape(v).replace(chr(10), "<br>")}</td></tr>'
        for n, v in submission.fields)
    attached = (f"<p>Attached: {html.escape(', '.join(f.filename for f in submission.files))}</p>"
                if submission.files else "")
    body = (f'<div style="font-family:system-ui,sans-serif"><p>New submission to <b>{html.escape(form_name)}</b>'
            f" ({when})</p><table style=\"border-collapse:collapse;border:1px solid #e4e4e7\">{rows}</table>"
            f"{attached}</div>")
    return OwnerMail(subject, "\n".join(lines) + "\n", body)


def one_line(text: str) -> str:
    """Control characters (line breaks included) as spaces: what a form's name may bring to a header."""
    return "".join(" " if has_control(c) else c for c in text)


def header_safe_url(url: str | None) -> str | None:
    """The URL as a Location value: non-ASCII percent-encoded (UTF-8), None when it holds a control
    character or a backslash."""
    if not url or has_control(url) or "\\" in url:
        return None
    return quote(url, safe="!#$%&'()*+,-./:;=?@[]~_")


def origin_of(url: str | None) -> str | None:
    """scheme://host[:port], lowercase, default port dropped; None for anything else."""
    if not url or url == "null":
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def check_origin(origin: str | None, referer: str | None, allowed: Sequence[str]) -> str | None:
    """The caller's origin (Origin, else Referer's); 403 when origins are configured and it is not one."""
    caller = origin_of(origin) or origin_of(referer)
    if not allowed:
        return caller
    if caller is None or caller not in {origin_of(a) for a in allowed}:
        raise Forbidden("this form does not accept submissions from this site", code="origin_not_allowed")
    return caller


def cors_headers(origin: str | None, allowed: Sequence[str], *, preflight: bool) -> dict[str, str]:
    """Any site may post to a form without configured origins (`*`, no credentials); otherwise only they."""
    headers = {"Access-Control-Allow-Origin": origin if allowed and origin else "*"}
    if allowed:
        headers["Vary"] = "Origin"
    if preflight:
        headers.update({"Access-Control-Allow-Methods": "POST, OPTIONS",
                        "Access-Control-Allow-Headers": "Content-Type, Accept, X-Requested-With",
                        "Access-Control-Max-Age": "600"})
    return headers


def wants_json(accept: str | None, content_type: str | None, x_requested_with: str | None) -> bool:
    return "application/json" in (accept or "").lower() or bool(x_requested_with) or is_json_media(content_type)


def redirect_target(*, next_url: str | None, form_redirect: str | None, allowed_origins: Sequence[str],
                    thank_you_url: str, request_origin: str | None = None) -> str:
    """Where to send the browser: `_next` only to a trusted origin (never an open redirect), else the
    form's redirect, else the built-in thank-you page."""
    wanted = origin_of(next_url)
    safe_next = header_safe_url(next_url)
    if wanted is not None and safe_next is not None:
        trusted = {origin_of(o) for o in allowed_origins} | {origin_of(form_redirect)}
        if not allowed_origins and request_origin:
            trusted.add(origin_of(request_origin))
        if wanted in trusted - {None}:
            return safe_next
    return header_safe_url(form_redirect) or thank_you_url


def thank_you_page(*, back_url: str | None) -> str:
    back = origin_of(back_url)
    link = f'<p><a href="{html.escape(back_url or "")}">Back to the site</a></p>' if back else ""
    return ("<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<title>Thank you</title><body style='font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;"
            "padding:0 1rem'><h1>Thank you!</h1><p>Your message has been sent.</p>" + link + "</body></html>")
