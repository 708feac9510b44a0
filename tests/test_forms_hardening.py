"""Contact forms against abuse, over a real socket: `js2mail serve`, a real SMTP server, the bytes
that arrive there, and the queue seen through `GET /v1/messages` (a failed request queues nothing)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.support import multipart
from tests.support.cli import run_cli
from tests.support.forms_live import SITE, Live, live_form
from tests.support.smtp_server import Received

JS = {"Origin": SITE, "Accept": "application/json"}
INJECTED_NAME = "Contact\r\nBcc : victim@evil.example\r\nX-Injected : yes"
live = pytest.fixture(scope="module")(live_form)


def field_lines(received: Received) -> list[str]:
    text = received.message.get_body(("plain",)).get_content()
    return [line.split(":", 1)[0].strip() + "=" + line.split(":", 1)[1].strip()
            for line in text.splitlines()[2:] if " : " in line]


# 1. the visitor's order ------------------------------------------------------------------------

def test_urlencoded_and_multipart_mail_the_fields_in_form_order(live: Live) -> None:
    before = live.queued()
    r = httpx.post(live.form_url, headers={**JS, "Content-Type": "application/x-www-form-urlencoded"},
                   content=b"zeta=1&alpha=2&zeta=3&phone=&message=hi+there%21")
    assert r.status_code == 200, r.text
    assert field_lines(live.one_mail(before)) == ["zeta=1", "alpha=2", "zeta=3", "phone=", "message=hi there!"]
    body, ctype = multipart.encode([multipart.Part("zeta", b"1"), multipart.Part("alpha", b"2"),
                                    multipart.Part("cv", b"pdf bytes", filename="cv.pdf"),
                                    multipart.Part("zeta", b"3"), multipart.Part("message", "h\u00e9".encode())])
    r = httpx.post(live.form_url, headers={**JS, "Content-Type": ctype}, content=body)
    assert r.status_code == 200, r.text
    received = live.one_mail(before + 1)
    assert field_lines(received) == ["zeta=1", "alpha=2", "zeta=3", "message=h\u00e9"]
    assert [a.get_filename() for a in received.message.iter_attachments()] == ["cv.pdf"]


# 2. one attachment policy -----------------------------------------------------------------------

@pytest.mark.parametrize("filename", ["evil.exe", "a.exe.", "a.bat ", "a.scr\u200b", "EVIL.EXE", "\uff45vil.\uff45xe"])
def test_blocked_uploads_are_refused_by_forms_and_by_v1_send_alike(live: Live, filename: str) -> None:
    before = live.queued()
    body, ctype = multipart.encode([multipart.Part("message", b"see attached"),
                                    multipart.Part("file", b"MZ\x90\x00", filename=filename,
                                                   content_type="application/octet-stream")])
    form = httpx.post(live.form_url, headers={**JS, "Content-Type": ctype}, content=body)
    assert form.status_code == 422, form.text
    assert form.json()["status"] == "error" and form.json()["error"]["code"] == "blocked_attachment"
    html = httpx.post(live.form_url, headers={"Origin": SITE, "Content-Type": ctype}, content=body)
    assert html.status_code == 422 and "text/html" in html.headers["content-type"]
    sent = live.api.post("/v1/send", json={"to": "bob@example.org", "subject": "s", "text": "t", "attachments": [
        {"filename": filename, "content": base64.b64encode(b"MZ").decode()}]})
    assert sent.status_code == 422, sent.text
    assert [d["code"] for d in sent.json()["error"]["details"]] == ["blocked_attachment"]
    assert live.queued() == before


def test_upload_types_come_from_the_vetted_list_not_the_visitor(live: Live) -> None:
    before = live.queued()
    body, ctype = multipart.encode([
        multipart.Part("message", b"three files"),
        multipart.Part("a", b"plain words", filename="notes.txt", content_type="multipart/mixed; boundary=x"),
        multipart.Part("b", b"\x89PNG....", filename="photo.png", content_type="garbage/"),
        multipart.Part("c", b"<script>", filename="page.unknownext", content_type="text/html"),
        multipart.Part("d", b"From: a@b\r\n\r\nhi", filename="mail.eml", content_type="message/rfc822"),
    ])
    r = httpx.post(live.form_url, headers={**JS, "Content-Type": ctype}, content=body)
    assert r.status_code == 200, r.text
    received = live.one_mail(before)
    assert [(a.get_filename(), a.get_content_type()) for a in received.message.iter_attachments()] == [
        ("notes.txt", "text/plain"), ("photo.png", "image/png"), ("page.unknownext", "application/octet-stream"),
        ("mail.eml", "application/octet-stream")]
    assert b"multipart/mixed; boundary=x" not in received.raw and b"garbage/" not in received.raw


def test_v1_send_refuses_multipart_and_message_content_types(live: Live) -> None:
    content = base64.b64encode(b"x").decode()
    for ctype in ("multipart/mixed", "message/rfc822"):
        sent = live.api.post("/v1/send", json={"to": "bob@example.org", "subject": "s", "text": "t", "attachments": [
            {"filename": "a.bin", "content": content, "contentType": ctype}]})
        assert sent.status_code == 422, sent.text
        assert sent.json()["error"]["details"][0]["code"] == "invalid_content_type"


# 4. input that used to answer 500 ------------------------------------------------------------------

def _undecodable_posts() -> list[object]:
    deep = b'{"message":' + b"[" * 1000 + b"]" * 1000 + b"}"
    bad_utf8, ctype = multipart.encode([multipart.Part("message", b"caf\xe9 \xff\xfe")])
    bogus, bogus_type = multipart.encode([multipart.Part("message", b"hi")])
    odd, odd_type = multipart.encode([multipart.Part("message", "hi".encode("utf-16-le") + b"!",
                                                     content_type="text/plain; charset=utf-16")])
    cases = [("deep JSON", deep, "application/json", 422, "bad_json"),
             ("invalid UTF-8", bad_utf8, ctype, 422, "invalid_encoding"),
             ("bogus charset", bogus, bogus_type + "; charset=bogus-xyz", 415, "unsupported_charset"),
             ("odd UTF-16", odd, odd_type, 422, "invalid_encoding"),
             ("urlencoded bad UTF-8", b"message=caf%E9", "application/x-www-form-urlencoded", 422, "invalid_encoding")]
    return [pytest.param(*case, id=case[0]) for case in cases]


@pytest.mark.parametrize("what,body,ctype,status,code", _undecodable_posts())
def test_undecodable_bodies_are_4xx_in_both_modes(live: Live, what: str, body: bytes, ctype: str, status: int,
                                                  code: str) -> None:
    before = live.queued()
    js = httpx.post(live.form_url, headers={**JS, "Content-Type": ctype}, content=body)
    assert js.status_code == status, (what, js.text)
    assert js.json() == {"status": "error", "error": {"code": code, "message": js.json()["error"]["message"]}}
    page = httpx.post(live.form_url, headers={"Origin": SITE, "Accept": "text/html", "Content-Type": ctype},
                      content=body)
    if ctype != "application/json":  # a JSON body always answers in JSON mode
        assert page.status_code == status and page.headers["content-type"].startswith("text/html"), what
        assert "Your message was not sent" in page.text
    assert live.queued() == before


def test_a_body_over_the_server_cap_is_413_in_the_form_shape(live: Live) -> None:
    before = live.queued()
    big = b"message=" + b"x" * 400_001
    js = httpx.post(live.form_url, headers={**JS, "Content-Type": "application/x-www-form-urlencoded"}, content=big)
    assert js.status_code == 413 and js.json()["error"]["code"] == "body_too_large", js.text
    page = httpx.post(live.form_url, headers={"Origin": SITE, "Content-Type": "application/x-www-form-urlencoded"},
                      content=big)
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
    assert live.queued() == before


def test_non_latin1_redirects_are_percent_encoded(live: Live) -> None:
    made = live.api.post("/v1/forms", json={"to": "owner@example.com", "origins": [SITE],
                                            "redirect": f"{SITE}/merci-\u00e9t\u00e9/\u65e5\u672c?x=\u2603"})
    assert made.status_code == 201, made.text
    assert made.json()["redirect"] == f"{SITE}/merci-%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC?x=%E2%98%83"
    url = f"{live.server.url}/f/{made.json()['id']}"
    before = live.queued()
    r = httpx.post(url, headers={"Origin": SITE}, data={"message": "m", "_next": f"{SITE}/\u0444\u043e\u0440\u043c\u0430"})
    assert r.status_code == 303 and r.headers["Location"] == f"{SITE}/%D1%84%D0%BE%D1%80%D0%BC%D0%B0"
    r = httpx.post(url, headers={"Origin": SITE}, data={"message": "m"})
    assert r.status_code == 303 and r.headers["Location"] == made.json()["redirect"]
    assert live.queued() == before + 2


@pytest.mark.parametrize("payload,status,code", [
    ({"to": "o@example.com", "origins": ["https://[::1"]}, 422, "invalid_url"),
    ({"to": "o@example.com", "origins": ["http://a.example:abc"]}, 422, "invalid_url"),
    ({"to": "o@example.com", "redirect": "https://www.site.example:99999/thanks"}, 422, "invalid_url"),
    ({"to": "o@example.com", "redirect": "https://www.site.example/ok\r\nSet-Cookie: a=b"}, 422, "invalid_url"),
    ({"to": "o@example.com", "redirect": "https://www.site.example/ok\n"}, 422, "invalid_url"),
    ({"to": "o@example.com", "origins": ["https://www.site.example\r\nX: y"]}, 422, "invalid_url"),
    ({"to": "o@example.com", "name": INJECTED_NAME}, 422, "invalid_name"),
])
def test_v1_forms_refuses_bad_settings(live: Live, payload: dict[str, object], status: int, code: str) -> None:
    before = len(live.api.get("/v1/forms").json()["data"])
    r = live.api.post("/v1/forms", json=payload)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert len(live.api.get("/v1/forms").json()["data"]) == before


def test_v1_forms_refuses_deep_json_and_unknown_fields(live: Live) -> None:
    deep = live.api.post("/v1/forms", content=b'{"to":' + b"[" * 1000 + b"]" * 1000 + b"}",
                         headers={"Content-Type": "application/json"})
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "bad_json", deep.text
    unknown = live.api.post("/v1/forms", json={"to": "o@example.com", "colour": "red", "redirectUrl": "x"})
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["error"]["details"] == [
        {"field": "colour", "code": "unknown_field", "message": "not a field of /v1/forms"},
        {"field": "redirectUrl", "code": "unknown_field", "message": "not a field of /v1/forms"}]
    assert live.api.post("/v1/forms", json={"to": "o@example.com"}).status_code == 201


def test_a_stored_crlf_redirect_still_answers_with_a_redirect(live: Live) -> None:
    """Forms created before the check may hold a CR/LF redirect: the browser still gets a 303."""
    made = live.api.post("/v1/forms", json={"to": "owner@example.com", "redirect": f"{SITE}/ok"}).json()
    live.sql("UPDATE forms SET redirect_url = ? WHERE public_id = ?", f"{SITE}/ok\r\nX-Evil: 1", made["id"])
    r = httpx.post(f"{live.server.url}/f/{made['id']}", data={"message": "m"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/f/{made['id']}/thanks")
    assert "X-Evil" not in r.headers


# 5. header injection through the form name ------------------------------------------------------------

def test_form_name_cannot_inject_headers(live: Live) -> None:
    r = live.api.post("/v1/forms", json={"to": "owner@example.com", "name": INJECTED_NAME})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_name", r.text
    cli = run_cli("forms", "create", "-w", "acme", "-a", "site", "--to", "owner@example.com", "--name", INJECTED_NAME)
    assert cli.code == 1 and "without control characters" in cli.err
    assert INJECTED_NAME not in {f["name"] for f in live.api.get("/v1/forms").json()["data"]}
    # a row that already holds such a name (written before the check) still mails one clean Subject
    made = live.api.post("/v1/forms", json={"to": "owner@example.com", "name": "Legacy"}).json()
    live.sql("UPDATE forms SET name = ? WHERE public_id = ?", INJECTED_NAME, made["id"])
    before = live.queued()
    r = httpx.post(f"{live.server.url}/f/{made['id']}", headers={"Accept": "application/json"}, data={"message": "m"})
    assert r.status_code == 200, r.text
    received = live.one_mail(before)
    assert received.rcpt_tos == ["owner@example.com"]
    head = received.raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n") if not line[:1].isspace()]
    assert b"x-injected" not in names and b"bcc" not in names
    assert names.count(b"subject") == 1
    assert received.message["Subject"] == "New submission: Contact  Bcc : victim@evil.example  X-Injected : yes"
