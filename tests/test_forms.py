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


@pytest.mark.parametrize("name", ["evil.exe", "a.exe.", "a.bat ", "a.scr\u200b", "a.e\u200dxe", "\uff41.\uff45\uff58\uff45",
                                  "a.JS . .", "x.ps1\u202e", "report.pdf.exe"])
def test_blocked_extensions_behind_disguises(name: str) -> None:
    from js2mail import attachments

    with pytest.raises(attachments.AttachmentRefused) as info:
        attachments.vet(name)
    assert info.value.code == "blocked_attachment"
    with pytest.raises(ValidationError) as err:
        parse([("m", "x")], [forms.UploadedFile("f", name, "application/pdf", b"MZ")])
    assert err.value.code == "blocked_attachment"


def test_attachment_types_are_vetted() -> None:
    from js2mail import attachments

    assert attachments.vet("a.pdf").content_type == "application/pdf"
    assert attachments.vet("a.txt.").content_type == "text/plain"
    assert attachments.vet("a.eml").content_type == "application/octet-stream"  # message/rfc822 never
    assert attachments.vet("a.mht").content_type == "application/octet-stream"
    assert attachments.vet("a").content_type == "application/octet-stream"
    assert attachments.vet("a.pdf", "Application/PDF").content_type == "application/pdf"
    for bad in ("multipart/mixed", "message/rfc822", "garbage/", "text", "text/plain; charset=x"):
        with pytest.raises(attachments.AttachmentRefused) as info:
            attachments.vet("a.bin", bad)
        assert info.value.code == "invalid_content_type"
    upload = parse([], [forms.UploadedFile("f", "C:\\x\\photo.png\u200b", "multipart/mixed", b"png")]).files[0]
    assert (upload.filename, upload.content_type) == ("photo.png", "image/png")


def test_form_bodies_keep_their_order_and_refuse_bad_text() -> None:
    from js2mail import form_body
    from js2mail.errors import UnsupportedMediaType
    from tests.support import multipart

    assert form_body.read_form("application/x-www-form-urlencoded", b"b=1&a=2&b=3&c=&d&e=x+y%26z", max_fields=9) == (
        [("b", "1"), ("a", "2"), ("b", "3"), ("c", ""), ("d", ""), ("e", "x y&z")], [])
    assert form_body.read_form("application/x-www-form-urlencoded; charset=ISO-8859-1", b"n=caf%E9",
                               max_fields=9)[0] == [("n", "caf\u00e9")]
    body, ctype = multipart.encode([multipart.Part("b", b"1"), multipart.Part("f", b"", filename=""),
                                    multipart.Part("up", b"data", filename="x.txt", content_type="text/html"),
                                    multipart.Part("a", "\u00e9".encode("utf-16-le"),
                                                   content_type="text/plain; charset=utf-16-le"),
                                    multipart.Part("b", b"3")])
    pairs, files = form_body.read_form(ctype, body, max_fields=9)
    assert pairs == [("b", "1"), ("a", "\u00e9"), ("b", "3")]
    assert [(f.field, f.filename, f.content) for f in files] == [("up", "x.txt", b"data")]
    with pytest.raises(ValidationError) as info:
        form_body.read_form(ctype, body, max_fields=3)
    assert info.value.code == "too_many_fields"
    for charset in ("bogus-xyz", "rot13", "base64", "zlib"):
        with pytest.raises(UnsupportedMediaType):
            form_body.read_form(f"application/x-www-form-urlencoded; charset={charset}", b"a=b", max_fields=9)
    for raw, ct in ((b"a=%FF", "application/x-www-form-urlencoded"),
                    (b"a=%00%D8", "application/x-www-form-urlencoded; charset=utf-16-le")):
        with pytest.raises(ValidationError) as info:
            form_body.read_form(ct, raw, max_fields=9)
        assert info.value.code == "invalid_encoding"
    with pytest.raises(ValidationError) as info:
        form_body.read_form("multipart/form-data", b"x", max_fields=9)
    assert info.value.code == "malformed_body"


def test_locations_are_header_safe() -> None:
    assert forms.header_safe_url("https://a.example/\u00e9?q=\u65e5#f") == "https://a.example/%C3%A9?q=%E6%97%A5#f"
    assert forms.header_safe_url("https://a.example/%C3%A9 x") == "https://a.example/%C3%A9%20x"
    assert forms.header_safe_url("https://a.example/\r\nX: y") is None
    assert forms.redirect_target(next_url=None, form_redirect="https://a.example/ok\nX: y", allowed_origins=[],
                                 thank_you_url="T") == "T"
    assert forms.redirect_target(next_url="https://site.example/\u0444", form_redirect=None,
                                 allowed_origins=["https://site.example"], thank_you_url="T") == "https://site.example/%D1%84"


def test_owner_mail_subject_is_one_line() -> None:
    mail = forms.owner_mail(form_name="Contact\r\nBcc: x@y.z", submission=parse([("m", "x")]), submitted_at=0)
    assert mail.subject == "New submission: Contact  Bcc: x@y.z"
