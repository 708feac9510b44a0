from __future__ import annotations

import pytest

from js2mail import forms
from js2mail.errors import Forbidden, TooLarge, ValidationError

CAPS = {"max_file_bytes": 100, "max_total_bytes": 150}


def parse(pairs: list[tuple[str, str]], files: list[forms.UploadedFile] | None = None) -> forms.Submission:
    return forms.parse_submission(pairs, files or [], **CAPS)


def test_special_fields_from_peer_services() -> None:
    sub = parse([("name", "Ann"), ("email", "Ann@Example.com"), ("_subject", "Hi there"), ("_next", "https://a.b/ok"),
                 ("message", "line 1\nline 2"), ("_template", "box"), ("_cc", "evil@example.com"), ("_gotcha", "")])
    assert sub.fields == (("name", "Ann"), ("email", "Ann@Example.com"), ("message", "line 1\nline 2"))
    assert sub.reply_to == "Ann@example.com" and sub.subject == "Hi there" and sub.next_url == "https://a.b/ok"
    assert not sub.is_spam
    assert parse([("message", "x"), ("_replyto", "b@example.org")]).reply_to == "b@example.org"


@pytest.mark.parametrize("trap", ["_gotcha", "_honey", "botcheck"])
def test_honeypots_mark_spam(trap: str) -> None:
    assert parse([("message", "buy now"), (trap, "x")]).is_spam


@pytest.mark.parametrize("pairs,code", [
    ([], "empty_submission"),
    ([("message", "   "), ("_subject", "s")], "empty_submission"),
    ([("email", "not-an-address"), ("message", "x")], "invalid_email"),
    ([("message", "x"), ("_subject", "a\r\nBcc: x@y.z")], "invalid_subject"),
    ([("bad\nname", "x")], "invalid_field_name"),
    ([(f"f{i}", "x") for i in range(101)], "too_many_fields"),
])
def test_bad_submissions(pairs: list[tuple[str, str]], code: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse(pairs)
    assert info.value.code == code


def test_file_caps() -> None:
    ok = forms.UploadedFile("cv", "../../etc/cv.pdf", "application/pdf", b"x" * 90)
    assert parse([], [ok]).files[0].filename == "cv.pdf"
    with pytest.raises(TooLarge) as info:
        parse([("m", "x")], [forms.UploadedFile("a", "a.bin", "x/y", b"x" * 101)])
    assert info.value.code == "file_too_large"
    with pytest.raises(TooLarge) as info:
        parse([("m", "x")], [ok, ok])
    assert info.value.code == "upload_too_large"


def test_json_pairs() -> None:
    assert forms.pairs_from_json({"a": 1, "b": True, "c": None, "d": ["x", "y"]}) == [
        ("a", "1"), ("b", "true"), ("c", ""), ("d", "x"), ("d", "y")]
    for bad in ([1, 2], "x", {"a": {"b": 1}}, {"a": [[1]]}):
        with pytest.raises(ValidationError):
            forms.pairs_from_json(bad)


def test_owner_mail_escapes_html_and_keeps_lines() -> None:
    sub = parse([("name", "<script>alert(1)</script>"), ("message", "one\ntwo")])
    mail = forms.owner_mail(form_name="Contact", submission=sub, submitted_at=0)
    assert mail.subject == "New submission: Contact"
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "one<br>two" in mail.html
    assert "name    : <script>alert(1)</script>" in mail.text and "two" in mail.text


def test_origin_checks() -> None:
    allowed = ["https://www.site.example"]
    assert forms.check_origin("https://www.site.example", None, allowed) == "https://www.site.example"
    assert forms.check_origin(None, "https://www.site.example/contact?x=1", allowed) == "https://www.site.example"
    assert forms.check_origin("https://WWW.site.example:443", None, allowed) == "https://www.site.example"
    for origin, referer in (("https://evil.example", None), ("https://www.site.example:8443", None), (None, None),
                            ("null", None), ("http://www.site.example", None)):
        with pytest.raises(Forbidden):
            forms.check_origin(origin, referer, allowed)
    assert forms.check_origin("https://any.example", None, []) == "https://any.example"


def test_cors_headers() -> None:
    assert forms.cors_headers("https://a.example", [], preflight=False) == {"Access-Control-Allow-Origin": "*"}
    pre = forms.cors_headers("https://a.example", ["https://a.example"], preflight=True)
    assert pre["Access-Control-Allow-Origin"] == "https://a.example" and pre["Vary"] == "Origin"
    assert "POST" in pre["Access-Control-Allow-Methods"] and "Accept" in pre["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("next_url", [
    "https://evil.example/", "//evil.example/x", "javascript:alert(1)", "data:text/html,x", "https://site.example@evil.example/",
    "https:\\\\evil.example", "/relative/path", "https://site.example.evil.example/", "http://site.example/",
])
def test_no_open_redirect(next_url: str) -> None:
    target = forms.redirect_target(next_url=next_url, form_redirect=None, allowed_origins=["https://site.example"],
                                   thank_you_url="https://mail.example/f/x/thanks")
    assert target == "https://mail.example/f/x/thanks"


def test_redirect_order() -> None:
    kw = {"allowed_origins": ["https://site.example"], "thank_you_url": "T"}
    assert forms.redirect_target(next_url="https://site.example/ok", form_redirect=None, **kw) == "https://site.example/ok"
    assert forms.redirect_target(next_url=None, form_redirect="https://site.example/r", **kw) == "https://site.example/r"
    assert forms.redirect_target(next_url="https://x.example/", form_redirect=None, allowed_origins=[],
                                 thank_you_url="T", request_origin="https://x.example") == "https://x.example/"
    assert forms.redirect_target(next_url="https://x.example/", form_redirect=None, allowed_origins=[],
                                 thank_you_url="T", request_origin="https://y.example") == "T"


def test_json_mode_detection() -> None:
    assert forms.wants_json("application/json", None, None)
    assert forms.wants_json("text/html", "application/json; charset=utf-8", None)
    assert forms.wants_json(None, None, "XMLHttpRequest")
    assert not forms.wants_json("text/html,application/xhtml+xml", "application/x-www-form-urlencoded", None)
