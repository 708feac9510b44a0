"""Every mail arrives exactly as written: a property test through all three providers and both
MIME writers, read back with the stdlib parser as a mail client would.

Arbitrary Unicode text and HTML (lines starting `From `, `.`, spaces, tabs; long lines; CRLF, CR
and LF mixed), subjects, display names, IDN and EAI addresses, custom headers, and attachments of
random bytes and of text in several charsets go through `parse_send_request` and the intake check,
then `build_email` → provider → the real aiosmtpd server, the Gmail fake or the Graph fake. What
arrives must decode to the request: bodies modulo the line-ending rule (every CRLF, CR or LF is a
line break: the README's "Exactness"), attachments byte-identical with the charset they provably
are, every header equal, IDN domains decoded back to the same Unicode. What cannot be delivered
must be refused at intake.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import os
import re
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import idna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from js2mail import mail
from js2mail.errors import ValidationError
from js2mail.providers.base import OutgoingMessage
from js2mail.providers.gmail import GmailProvider
from js2mail.providers.graph import GraphProvider
from js2mail.providers.registry import spec_of
from js2mail.providers.smtp import SmtpProvider, SmtpSettings
from tests.support.fake_google import FakeGoogle
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.smtp_server import SmtpServer

EXAMPLES = int(os.environ.get("ROUNDTRIP_EXAMPLES", "40"))  # per provider and writer: 240 deliveries, ~20 s
WRITERS = ["direct", "stdlib"]
NO_CONTROL = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
ANY_TEXT = st.characters(blacklist_categories=("Cs",))

line = st.one_of(
    st.text(ANY_TEXT, max_size=40),
    st.builds(lambda s: "From " + s, st.text(ANY_TEXT, max_size=20)),
    st.sampled_from([".", "..", ". x", " ", "\t", "  lead", "trail  ", "trail\t", "=", "=3D", "==x", "From", "--",
                     "--=_x", "\x00", "\x0c", "\u2028", "\x85"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "✓", " ", "=", "😀"]), st.integers(70, 200)),
)
bodies = st.builds(lambda parts, ends, final: "".join(p + e for p, e in zip(parts, ends)) + final,
                   st.lists(line, min_size=0, max_size=8),
                   st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=8, max_size=8),
                   st.text(ANY_TEXT, max_size=10)).filter(bool)
subjects = st.text(NO_CONTROL, min_size=1, max_size=150).filter(lambda s: s.strip())
names = st.one_of(st.just(""), st.text(NO_CONTROL, max_size=50), st.sampled_from(
    ['Bob "the" Builder', "O'Brien, Ltd.", "back\\slash", "=?utf-8?b?eA==?=", "  spaced  out  ", "Ünïcødé 名前"]))
ascii_locals = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,15}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s)
eai_locals = st.sampled_from(["用户", "bücher", "Ünî.cøde", "почта", "δοκιμή"])
domains = st.sampled_from(["example.org", "bücher.example", "münchen.example", "пример.example", "例子.example",
                           "straße.example"])
header_values = st.one_of(st.text(NO_CONTROL, min_size=1, max_size=120),
                          st.just("<https://example.org/unsubscribe?list=1&user=2>"))


@st.composite
def addresses(draw: st.DrawFn, eai: bool = True) -> tuple[str, str]:
    local = draw(st.one_of(ascii_locals, eai_locals) if eai else ascii_locals)
    return draw(names), f"{local}@{draw(domains)}"


@st.composite
def attachments(draw: st.DrawFn) -> tuple[str, bytes, str]:
    filename = draw(st.one_of(st.sampled_from(["notes.txt", "a b.txt", 'quo"te.txt', "résumé.txt", "報告書.txt"]),
                              st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=80)
                              .map(lambda s: s + ".txt")))
    kind = draw(st.sampled_from(["bytes", "utf-8", "utf-16", "latin-1"]))
    if kind == "bytes":
        return filename.rsplit(".", 1)[0] + ".bin", draw(st.binary(max_size=300)), "application/octet-stream"
    text = draw(st.text(st.characters(max_codepoint=0xFF) if kind == "latin-1" else ANY_TEXT, max_size=200))
    return filename, text.encode(kind), "text/plain"


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    def value(entry: tuple[str, str]) -> str:
        return mail.format_address(*entry)

    payload: dict[str, Any] = {
        "to": [value(a) for a in draw(st.lists(addresses(), min_size=1, max_size=3))],
        "cc": [value(a) for a in draw(st.lists(addresses(), max_size=2))],
        "bcc": [value(a) for a in draw(st.lists(addresses(), max_size=2))],
        "replyTo": [value(a) for a in draw(st.lists(addresses(), max_size=1))],
        "subject": draw(subjects),
        "headers": {f"X-Test-{i}": v for i, v in enumerate(draw(st.lists(header_values, max_size=2)))},
        "attachments": [{"filename": f, "content": base64.b64encode(c).decode(), "contentType": t}
                        for f, c, t in draw(st.lists(attachments(), max_size=3))],
    }
    shape = draw(st.sampled_from(["text", "html", "both"]))
    if shape in ("text", "both"):
        payload["text"] = draw(bodies)
    if shape in ("html", "both"):
        payload["html"] = "<p>" + draw(bodies) + "</p>"
    payload["from"] = value((draw(names), "shop@bücher.example"))
    return payload


# --- what a reader sees ------------------------------------------------------------------------


def lines(text: str) -> str:
    """The line-ending rule: CRLF, CR and LF are all one line break."""
    return re.sub(r"\r\n|\r", "\n", text)


def unicode_address(address: str) -> str:
    """An address as a reader shows it: RFC 6532 UTF-8 local part, A-label domain back to Unicode."""
    local, _, domain = address.encode("ascii", "surrogateescape").decode("utf-8").rpartition("@")
    return f"{local}@{idna.decode(domain)}"


def mailboxes(parsed: EmailMessage, header: str) -> list[tuple[str, str]]:
    field = parsed[header]
    if field is None:
        return []
    return [(a.display_name, unicode_address(a.addr_spec)) for a in field.addresses]


def expected(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [mail.split_formatted(v) for v in values]


def proven_charset(content: bytes) -> str | None:
    """UTF-8 when the bytes are UTF-8; UTF-32/16 when they carry its byte-order mark and decode as it."""
    for charset, boms in (("utf-32", (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)),
                          ("utf-16", (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)), ("utf-8", (b"",))):
        if content.startswith(boms):
            try:
                content.decode(charset)
                return charset
            except UnicodeDecodeError:
                continue
    return None


def assert_arrived_exactly(raw: bytes, req: mail.MailRequest, sender: tuple[str, str], *, bcc_header: bool) -> None:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    assert str(parsed["Subject"]) == req.subject
    assert mailboxes(parsed, "From") == [sender]
    assert mailboxes(parsed, "To") == expected(req.to)
    assert mailboxes(parsed, "Cc") == expected(req.cc)
    assert mailboxes(parsed, "Reply-To") == expected(req.reply_to)
    assert mailboxes(parsed, "Bcc") == (expected(req.bcc) if bcc_header else [])
    for name, value in req.headers:
        assert str(parsed[name]) == value, name
    body = parsed.get_body(("plain",)) if req.text is not None else None
    html = parsed.get_body(("html",)) if req.html is not None else None
    if req.text is not None:
        assert body is not None and lines(body.get_content()) == lines(req.text)
    if req.html is not None:
        assert html is not None and lines(html.get_content()) == lines(req.html)
    got = list(parsed.iter_attachments())
    assert len(got) == len(req.attachments)
    for part, att in zip(got, req.attachments):
        assert part.get_filename() == att.filename
        assert part.get_content_type() == att.content_type
        assert part.get_payload(decode=True) == att.content
        if att.content_type.startswith("text/"):
            charset = proven_charset(att.content)
            assert part.get_param("charset") == charset
            if charset:
                assert part.get_content() == att.content.decode(charset)


# --- driving the providers ---------------------------------------------------------------------


MAILBOX = "shop@bücher.example"


def intake(payload: dict[str, Any], provider: str, smtputf8: bool | None = True) -> mail.MailRequest | None:
    """What /v1/send does before answering 202: None when it answers 422 for an undeliverable address."""
    req = mail.parse_send_request(payload)
    refusal = mail.eai_refusal(mail.eai_addresses(req, MAILBOX), spec_of(provider).eai, smtputf8, MAILBOX)
    if refusal:
        assert provider == "microsoft" or not smtputf8
        assert mail.eai_addresses(req, MAILBOX)
        return None
    return req


def outgoing(req: mail.MailRequest, writer: str) -> tuple[OutgoingMessage, tuple[str, str]]:
    name = mail.split_formatted(req.from_ or "")[0]
    built = mail.build_email(req, from_header=mail.format_address(name, MAILBOX),
                             message_id="<roundtrip@xn--bcher-kva.example>", date=1_800_000_000, writer=writer)
    return OutgoingMessage("msg_rt", mail.wire_address(MAILBOX), mail.envelope_recipients(req), built), (name, MAILBOX)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="none") as server:
        yield server


relaxed = settings(max_examples=EXAMPLES, deadline=None, report_multiple_bugs=False,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.data_too_large])


@pytest.mark.parametrize("writer", WRITERS)
@relaxed
@given(payload=requests())
def test_smtp_delivers_exactly(smtp: SmtpServer, writer: str, payload: dict[str, Any]) -> None:
    req = intake(payload, "smtp")
    assert req is not None  # the test server advertises SMTPUTF8
    message, sender = outgoing(req, writer)

    async def send() -> None:
        provider = SmtpProvider(SmtpSettings("127.0.0.1", smtp.port, None, None, "none"), connections=1)
        try:
            await provider.send(message)
        finally:
            await provider.close()

    before = len(smtp.messages)
    asyncio.run(send())
    got = smtp.wait_for(before + 1)[-1]
    assert got.rcpt_tos == list(mail.envelope_recipients(req))
    assert all(r.rpartition("@")[2].isascii() for r in got.rcpt_tos)  # A-labels in the envelope
    assert_arrived_exactly(got.raw, req, sender, bcc_header=False)


@pytest.mark.parametrize("writer", WRITERS)
@relaxed
@given(payload=requests())
def test_gmail_delivers_exactly(google: FakeGoogle, writer: str, payload: dict[str, Any]) -> None:
    req = intake(payload, "gmail")
    assert req is not None  # Gmail takes internationalized addresses
    message, sender = outgoing(req, writer)

    async def send() -> None:
        provider = GmailProvider(address=MAILBOX, client_id=google.client_id, client_secret=google.client_secret,
                                 refresh_token=google.issue_refresh_token(), token_uri=google.config.token_uri,
                                 api_base=google.config.api_base)
        try:
            await provider.send(message)
        finally:
            await provider.close()

    asyncio.run(send())
    assert_arrived_exactly(google.sent[-1].raw, req, sender, bcc_header=True)


@pytest.mark.parametrize("writer", WRITERS)
@relaxed
@given(payload=requests())
def test_graph_delivers_exactly_or_refuses_eai_at_intake(ms: FakeMicrosoft, writer: str,
                                                         payload: dict[str, Any]) -> None:
    req = intake(payload, "microsoft")
    if req is None:
        return

    async def noop(blob: bytes) -> None:
        return None

    message, sender = outgoing(req, writer)

    async def send() -> None:
        provider = GraphProvider(address=ms.username, client_id=ms.client_id, authority=ms.authority(),
                                 cache=ms.seed_cache(), on_cache_change=noop, graph_base=ms.config.graph_base)
        try:
            await provider.send(message)
        finally:
            await provider.close()

    asyncio.run(send())
    assert_arrived_exactly(ms.sent[-1].raw, req, sender, bcc_header=True)


@pytest.mark.parametrize("smtputf8", [False, None])
def test_eai_is_refused_at_intake_where_the_smtp_server_cannot_take_it(smtputf8: bool | None) -> None:
    req = mail.parse_send_request({"to": "用户@例子.example", "subject": "s", "text": "t"})
    refusal = mail.eai_refusal(mail.eai_addresses(req, MAILBOX), "if_offered", smtputf8, MAILBOX)
    assert refusal is not None
    assert ("js2mail mailboxes test" in refusal[1]) is (smtputf8 is None)


# --- intake: EAI refused with a 422 where the mailbox can never send it ---------------------------


def test_eai_intake_follows_what_the_mailbox_can_send(home: Any) -> None:
    from js2mail.config import load_settings
    from js2mail.service import mailboxes, messages, open_context
    from js2mail.service.keys import ensure_scope

    eai = {"to": "用户@例子.example", "subject": "s", "text": "t"}
    with SmtpServer(tls="none", smtputf8=False) as plain, SmtpServer(tls="none") as modern:
        ctx = open_context(load_settings(home))
        try:
            scope = ensure_scope(ctx, "acme", "shop")
            for address, server in (("old@example.com", plain), ("new@example.com", modern)):
                mailboxes.add_smtp(ctx, workspace="acme", address=address, host="127.0.0.1", port=server.port,
                                   username=None, password=None, security="none", app="shop")
            mailboxes.add_mailbox(ctx, workspace="acme", provider="microsoft", address="ms@example.com",
                                  settings={}, secret=None)

            def refused(sender: str) -> str:
                with pytest.raises(ValidationError) as info:
                    asyncio.run(messages.send(ctx, scope, {**eai, "from": sender}))
                return info.value.code

            assert refused("ms@example.com") == "eai_not_supported"
            assert refused("new@example.com") == "smtputf8_unknown"  # not tested yet: conservative
            for address in ("old@example.com", "new@example.com"):
                asyncio.run(mailboxes.send_test(ctx, None, address, "probe@example.org"))
            assert refused("old@example.com") == "smtputf8_not_supported"
            shown = {m["address"]: m["settings"].get("smtputf8") for m in mailboxes.list_mailboxes(ctx)}
            assert shown == {"old@example.com": False, "new@example.com": True, "ms@example.com": None}
            accepted = asyncio.run(messages.send(ctx, scope, {**eai, "from": "new@example.com"}))
            assert accepted.status_code == 202
            idn = asyncio.run(messages.send(ctx, scope, {**eai, "to": "leser@bücher.example",
                                                         "from": "ms@example.com"}))
            assert idn.status_code == 202  # an IDN domain alone needs nothing special
        finally:
            ctx.close()


def test_idn_and_eai_over_http_to_smtp(home: Any) -> None:
    import httpx

    from tests.support.cli import run_cli
    from tests.support.server import ServerProcess, wait_status

    with SmtpServer(tls="none") as server:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@bücher.example",
                       "--host", "127.0.0.1", "--port", str(server.port), "--security", "none", "--no-auth").code == 0
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        with ServerProcess(home) as proc, httpx.Client(base_url=proc.url, headers={"X-Api-Key": key},
                                                       timeout=10) as client:
            eai = {"to": "Wáng <用户@例子.example>", "subject": "Grüße", "text": "From me\r\n.\r\n"}
            r = client.post("/v1/send", json=eai)
            assert r.status_code == 422 and r.json()["error"]["code"] == "smtputf8_unknown"
            assert "js2mail mailboxes test" in r.json()["error"]["message"]
            r = client.post("/v1/send", json={**eai, "to": "Leser <leser@bücher.example>"})
            assert r.status_code == 202
            assert wait_status(client, r.json()["id"], {"sent"})["status"] == "sent"
            assert run_cli("mailboxes", "test", "shop@bücher.example", "--to", "probe@example.org").code == 0
            r = client.post("/v1/send", json=eai)
            assert r.status_code == 202
            assert wait_status(client, r.json()["id"], {"sent"})["status"] == "sent"
        got = server.wait_for(3)
    idn, probe, utf8 = got
    assert idn.mail_from == "shop@xn--bcher-kva.example" and idn.rcpt_tos == ["leser@xn--bcher-kva.example"]
    assert idn.message["To"].addresses[0].addr_spec == "leser@xn--bcher-kva.example"
    assert idn.message.get_content().replace("\r\n", "\n") == "From me\n.\n"
    assert utf8.rcpt_tos == ["用户@xn--fsqu00a.example"]
    assert unicode_address(utf8.message["To"].addresses[0].addr_spec) == "用户@例子.example"
