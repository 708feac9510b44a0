"""Hypothesis posts arbitrary multipart forms (and urlencoded ones) — any charset (declared on the request or on a part),
any bytes, any field names, file parts with any name and Content-Type, cut-off bodies — to a real
`js2mail serve` over HTTP. Whatever arrives, the answer is 2xx/3xx/4xx, never 5xx, and a request
that failed queues no mail (counted in the messages table)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import multipart
from tests.support.forms_live import SITE, Live, live_form

live = pytest.fixture(scope="module")(live_form)

CHARSETS = st.one_of(
    st.sampled_from(["utf-8", "UTF-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "iso-8859-15",
                     "windows-1252", "shift_jis", "euc-kr", "gb18030", "koi8-r", "ascii", "utf-7", "idna", "punycode",
                     "unicode_escape", "raw_unicode_escape", "cp037", "bogus-xyz", "base64", "rot13", "zlib", "hex",
                     ""]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=';"\\'), max_size=12),
)
NAMES = st.one_of(st.sampled_from(["name", "email", "message", "_subject", "_next", "_replyto", "_gotcha", "_cc",
                                   "botcheck", "_template"]),
                  st.text(max_size=30))
FILENAMES = st.one_of(
    st.builds(lambda stem, ext, tail: stem + ext + tail, st.text(max_size=12),
              st.sampled_from([".exe", ".pdf", ".txt", ".png", ".eml", ".js", ".html", ".scr", ""]),
              st.sampled_from(["", ".", " ", "\u200b", ". .", "\u202e"])),
    st.text(max_size=40),
)
PART_TYPES = st.one_of(st.none(), st.sampled_from(["multipart/mixed", "message/rfc822", "garbage/", "text/plain",
                                                   "application/x-msdownload", "text/html; charset=utf-16"]),
                       st.builds(lambda c: f"text/plain; charset={c}", CHARSETS))


@st.composite
def text_part(draw: st.DrawFn) -> multipart.Part:
    charset = draw(st.none() | CHARSETS)
    value = draw(st.text(max_size=60))
    data: bytes = draw(st.binary(max_size=60)) if draw(st.booleans()) else value.encode("utf-8")
    if charset and draw(st.booleans()):
        with contextlib.suppress(LookupError, UnicodeError, ValueError, TypeError):  # a charset Python cannot encode
            data = value.encode(charset)
    return multipart.Part(draw(NAMES), data, content_type=f"text/plain; charset={charset}" if charset else None)


@st.composite
def file_part(draw: st.DrawFn) -> multipart.Part:
    return multipart.Part(draw(NAMES), draw(st.binary(max_size=200)), filename=draw(FILENAMES),
                          content_type=draw(PART_TYPES))


@st.composite
def multipart_post(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    parts = draw(st.lists(st.one_of(text_part(), file_part()), max_size=8))
    body, ctype = multipart.encode(parts)
    charset = draw(st.none() | CHARSETS)
    if charset is not None:
        ctype += f"; charset={charset}"
    if draw(st.integers(0, 9)) == 0:  # now and then a body cut short or with bytes flipped
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=8))
    headers = {"Content-Type": ctype.strip(), "Origin": SITE}
    if draw(st.booleans()):
        headers["Accept"] = "application/json"
    return body, headers


@st.composite
def urlencoded_post(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """Raw bytes between `&` and `=`: percent escapes of any byte, stray `%`, `+`, non-ASCII bytes."""
    chunk = st.lists(st.one_of(st.binary(max_size=6), st.sampled_from([b"%", b"+", b"%FF", b"%00", b"%E9", b"%C3%A9"]),
                               st.builds(lambda b: f"%{b:02X}".encode(), st.integers(0, 255))), max_size=6)
    fields = draw(st.lists(st.tuples(st.one_of(NAMES.map(str.encode), chunk.map(b"".join)), chunk.map(b"".join)),
                           max_size=8))
    body = b"&".join(name + b"=" + value for name, value in fields)
    charset = draw(st.none() | CHARSETS)
    ctype = "application/x-www-form-urlencoded" + (f"; charset={charset}" if charset is not None else "")
    headers = {"Content-Type": ctype.strip(), "Origin": SITE}
    if draw(st.booleans()):
        headers["Accept"] = "application/json"
    return body, headers


def test_multipart_posts_never_answer_5xx_and_failures_queue_nothing(live: Live) -> None:
    seen: list[int] = []
    with httpx.Client(timeout=10) as client:
        @given(post=st.one_of(multipart_post(), urlencoded_post()))
        @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(post: tuple[bytes, dict[str, str]]) -> None:
            body, headers = post
            before = live.queued()
            response = client.post(live.form_url, content=body, headers=headers)
            seen.append(response.status_code)
            assert response.status_code < 500, (headers, body[:300], response.text[:300])
            queued = live.queued() - before
            if response.status_code >= 400:
                assert queued == 0, (response.status_code, response.text[:300])
                assert response.headers["content-type"] != "text/plain; charset=utf-8", (
                    headers, body[:500], response.status_code, response.text[:300])
                if "Accept" in headers:
                    assert response.json()["status"] == "error"
                else:
                    assert response.headers["content-type"].startswith("text/html")
            else:
                assert queued in (0, 1)  # 0: a filled honeypot gets the same answer and sends nothing

        fuzz()
    assert any(code < 400 for code in seen) and any(400 <= code < 500 for code in seen)


def test_server_log_has_no_traceback(live: Live) -> None:
    log = Path(live.server.log).read_text()
    assert "Traceback" not in log, log[-3000:]
