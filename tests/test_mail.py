"""Validation and MIME building: every control character in every header-bound field is refused,
no input raises anything but ValidationError, and messages come out the way mail clients expect."""

from __future__ import annotations

import base64
import email
from email import policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from js2mail import mail
from js2mail.errors import ValidationError

BASE = {"to": "bob@example.org", "subject": "Hello", "text": "body"}
BAD_CHARS = ["\r", "\n", "\r\n", "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x7f"]
clean = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=20)


def injected(draw_text: st.DataObject) -> str:
    head = draw_text.draw(st.text(st.characters(codec="utf-8"), max_size=15))
    tail = draw_text.draw(st.text(st.characters(codec="utf-8"), max_size=15))
    return head + draw_text.draw(st.sampled_from(BAD_CHARS)) + tail  # anywhere, trailing included


@settings(max_examples=300)
@given(data=st.data(), where=st.sampled_from(["subject", "name", "header_name", "header_value", "filename",
                                              "metadata_key", "metadata_value", "reply_name"]))
def test_control_characters_in_any_header_field_are_refused(data: st.DataObject, where: str) -> None:
    bad = injected(data)
    payload: dict[str, object] = dict(BASE)
    if where == "subject":
        payload["subject"] = bad
    elif where == "name":
        payload["to"] = f'"{bad}" <bob@example.org>'
    elif where == "reply_name":
        payload["replyTo"] = f"{bad} <r@example.org>"
    elif where == "header_name":
        payload["headers"] = {bad: "v"}
    elif where == "header_value":
        payload["headers"] = {"X-Tag": bad}
    elif where == "filename":
        payload["attachments"] = [{"filename": bad + ".txt", "content": "aGk="}]
    elif where == "metadata_key":
        payload["metadata"] = {bad: "v"}
    else:
        payload["metadata"] = {"k": bad}
    with pytest.raises(ValidationError):
        mail.parse_send_request(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(sorted(mail.KNOWN_FIELDS) + ["other"]), json_values, max_size=8) | json_values)
def test_any_json_only_ever_raises_validation_error(payload: object) -> None:
    try:
        mail.parse_send_request(payload)
    except ValidationError as exc:
        assert exc.details, "every refusal says which field"


@given(subject=clean, name=clean, text=st.text(max_size=200), meta=st.dictionaries(
    st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=10), clean, max_size=3))
def test_serialize_round_trip(subject: str, name: str, text: str, meta: dict[str, str]) -> None:
    req = mail.parse_send_request({**BASE, "subject": "S" + subject, "to": [mail.format_address(name, "bob@example.org")],
                                   "text": text or "x", "metadata": meta,
                                   "attachments": [{"filename": "a.bin", "content": base64.b64encode(b"\x00\x01").decode()}]})
    assert mail.deserialize(mail.serialize(req)) == req


def test_shapes_and_normalization() -> None:
    req = mail.parse_send_request({"from": "Shop <shop@Example.COM>", "to": ["A <a@example.org>", "b@example.org"],
                                   "cc": "c@example.net", "bcc": ["d@example.com"], "replyTo": "r@example.org",
                                   "subject": "Straße ✓", "html": "<p>x</p>", "scheduledAt": "2030-01-01T00:00:00",
                                   "headers": {"X-Tag": "v"}, "metadata": {"k": "v"}})
    assert req.from_ == "Shop <shop@example.com>"
    assert req.to == ("A <a@example.org>", "b@example.org") and req.text is None
    assert req.scheduled_at == 1893456000.0  # a time without an offset is UTC
    assert mail.envelope_recipients(req) == ("a@example.org", "b@example.org", "c@example.net", "d@example.com")
    assert mail.recipient_domains(req) == ["example.com", "example.net", "example.org"]


@pytest.mark.parametrize("payload,field", [
    ({**BASE, "to": []}, "to"),
    ({**BASE, "to": "a@example.org, b@example.org"}, "to"),
    ({**BASE, "cc": 5}, "cc"),
    ({**BASE, "subject": "x" * 999}, "subject"),
    ({"to": "a@example.org", "subject": "s"}, "text"),
    ({**BASE, "headers": {"Content-Type": "text/evil"}}, "headers.Content-Type"),
    ({**BASE, "headers": {"Bad Name": "v"}}, "headers.Bad Name"),
    ({**BASE, "attachments": [{"filename": "x.exe", "content": "aGk="}]}, "attachments[0].filename"),
    ({**BASE, "attachments": [{"filename": "x.txt", "content": "not base64!"}]}, "attachments[0].content"),
    ({**BASE, "attachments": [{"filename": "../x.txt", "content": "aGk="}]}, "attachments[0].filename"),
    ({**BASE, "metadata": {"k": 1}}, "metadata.k"),
    ({**BASE, "scheduledAt": "tomorrow"}, "scheduledAt"),
    ({**BASE, "surprise": 1}, "surprise"),
])
def test_each_rule_names_its_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        mail.parse_send_request(payload)
    assert field in [d["field"] for d in info.value.details]


def test_built_message_is_what_mail_clients_expect() -> None:
    pdf = b"%PDF fake"
    req = mail.parse_send_request({**BASE, "to": "Bob Ünicode <bob@example.org>", "subject": "Grüße – ✓",
                                   "html": "<b>hi</b>", "bcc": "hidden@example.org",
                                   "attachments": [{"filename": "i.pdf", "content": base64.b64encode(pdf).decode()}]})
    raw = mail.flatten(mail.build_email(req, from_header='"Shop, Inc." <shop@example.com>',
                                        message_id="<m1@example.com>", date=0))
    assert b"\r\n" in raw and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in parsed.walk()] == ["multipart/mixed", "multipart/alternative",
                                                            "text/plain", "text/html", "application/pdf"]
    assert str(parsed["Subject"]) == "Grüße – ✓" and parsed["From"] == '"Shop, Inc." <shop@example.com>'
    assert parsed["To"].addresses[0].display_name == "Bob Ünicode"
    assert parsed["Message-ID"] == "<m1@example.com>" and parsed["Date"]
    assert next(parsed.iter_attachments()).get_content() == pdf
    assert parsed["Bcc"] == "hidden@example.org"  # kept for the Gmail and Graph APIs, which read it
    assert b"Bcc:" not in mail.flatten(mail.build_email(req, from_header="s@example.com", message_id="<m2@x>",
                                                        date=0), drop_bcc=True)


local_parts = st.one_of(
    st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,70}", fullmatch=True),
    st.text(max_size=20),
)
domains = st.one_of(
    st.sampled_from(["example.com", "EXAMPLE.org", "sub.example.co.uk", "localhost", "example", "a..b.com",
                     "-bad.com", "xn--bcher-kva.example", "bücher.example", "exa_mple.com", "123.com", "example.test"]),
    st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True),
)


@settings(max_examples=400)
@given(local=local_parts, domain=domains)
def test_fast_address_path_agrees_with_email_validator(local: str, domain: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    raw = f"{local}@{domain}"
    try:
        expected: str | None = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = mail.normalize_address(raw)
    except EmailNotValidError:
        got = None
    assert got == expected, raw


# --- exactness (issue #12): From lines, IDN/EAI, charsets, line endings -----------------------------

WRITERS = ["direct", "stdlib"]


def built(payload: dict[str, object], writer: str, *, drop_bcc: bool = False) -> bytes:
    req = mail.parse_send_request({**BASE, **payload})
    return mail.flatten(mail.build_email(req, from_header="Shop <shop@example.com>", message_id="<m@example.com>",
                                         date=0, writer=writer), drop_bcc=drop_bcc)


def parsed_bytes(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


@pytest.mark.parametrize("writer", WRITERS)
def test_lines_starting_with_from_are_not_mangled(writer: str) -> None:
    text = "From the desk of Ann\nFrom here on\n From indented\n"
    raw = built({"text": text, "html": "<p>\nFrom html</p>"}, writer)
    assert b">From" not in raw
    msg = parsed_bytes(raw)
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == text  # type: ignore[union-attr]
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == "<p>\nFrom html</p>"  # type: ignore[union-attr]


@pytest.mark.parametrize("writer", WRITERS)
def test_every_line_ending_is_crlf_on_the_wire_and_no_newline_is_added(writer: str) -> None:
    raw = built({"text": "a\r\nb\rc\nd"}, writer)
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert parsed_bytes(raw).get_content().replace("\r\n", "\n") == "a\nb\nc\nd"  # no trailing newline either


@pytest.mark.parametrize("writer", WRITERS)
def test_idn_domains_go_out_as_a_labels_in_headers(writer: str) -> None:
    raw = built({"to": "Bücherwurm <leser@bücher.example>", "cc": "x@straße.example"}, writer)
    assert raw.isascii()
    msg = parsed_bytes(raw)
    assert msg["To"].addresses[0].addr_spec == "leser@xn--bcher-kva.example"
    assert msg["To"].addresses[0].display_name == "Bücherwurm"
    assert msg["Cc"].addresses[0].addr_spec == "x@xn--strae-oqa.example"  # IDNA 2008, not 2003's "strasse"


def test_envelope_uses_a_labels_and_only_eai_needs_smtputf8() -> None:
    req = mail.parse_send_request({**BASE, "to": ["leser@bücher.example", "用户@例子.example"],
                                   "bcc": "LESER@BÜCHER.example"})
    assert mail.envelope_recipients(req) == ("leser@xn--bcher-kva.example", "用户@xn--fsqu00a.example",
                                             "LESER@xn--bcher-kva.example")
    assert mail.recipient_domains(req) == ["bücher.example", "例子.example"]
    assert mail.eai_addresses(req, "shop@example.com") == ["用户@例子.example"]
    assert mail.eai_refusal(["用户@例子.example"], "yes", None, "shop@example.com") is None
    assert mail.eai_refusal(["用户@例子.example"], "if_offered", True, "shop@example.com") is None
    assert mail.eai_refusal(["用户@例子.example"], "no", None, "a@example.com")[0] == "eai_not_supported"  # type: ignore[index]
    unknown = mail.eai_refusal(["用户@例子.example"], "if_offered", None, "shop@example.com")
    assert unknown is not None and "js2mail mailboxes test shop@example.com" in unknown[1]


@pytest.mark.parametrize("writer", WRITERS)
def test_eai_address_is_raw_utf8_in_the_header(writer: str) -> None:
    raw = built({"to": "用户@例子.example"}, writer)
    assert "To: 用户@xn--fsqu00a.example\r\n".encode() in raw


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("content,charset", [
    ("Grüße aus Köln\n".encode(), "utf-8"),
    (b"plain ascii\n", "utf-8"),
    ("Grüße\n".encode("utf-16"), "utf-16"),
    ("Grüße\n".encode("latin-1"), None),  # not provably anything: no charset is claimed
])
def test_text_attachments_carry_their_charset_and_stay_byte_identical(writer: str, content: bytes,
                                                                      charset: str | None) -> None:
    raw = built({"attachments": [{"filename": "notes.txt", "content": base64.b64encode(content).decode()}]}, writer)
    part = next(parsed_bytes(raw).iter_attachments())
    assert part.get_content_type() == "text/plain" and part.get_param("charset") == charset
    assert part.get_payload(decode=True) == content


@pytest.mark.parametrize("writer", WRITERS)
def test_long_unicode_filename_and_subject_round_trip(writer: str) -> None:
    name = "Quartalsbericht – Übersicht für die Geschäftsführung 2026 (endgültig).txt"
    subject = "  leading spaces, =?utf-8?q?not_an_encoded_word?= and a long tail " + "✓" * 40
    raw = built({"subject": subject, "attachments": [{"filename": name, "content": "aGk="}]}, writer)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = parsed_bytes(raw)
    assert str(msg["Subject"]) == subject
    assert next(msg.iter_attachments()).get_filename() == name


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("text", ["注文が発送されました。\n" * 400, "Ваш заказ отправлен\r\n" * 400, "Order shipped.\n" * 400])
def test_text_goes_out_in_its_smaller_encoding_and_the_size_estimate_covers_it(writer: str, text: str) -> None:
    req = mail.parse_send_request({**BASE, "text": text})
    raw = mail.flatten(mail.build_email(req, from_header="s@example.com", message_id="<m@x>", date=0, writer=writer))
    msg = parsed_bytes(raw)
    assert msg.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n")
    assert msg["Content-Transfer-Encoding"] == ("quoted-printable" if text.startswith("Order") else "base64")
    assert len(raw) < 1.45 * len(text.encode()) + 1000 and len(raw) <= mail.estimated_size(req)
