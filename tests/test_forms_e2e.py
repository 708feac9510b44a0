"""Contact forms over a real socket: `js2mail serve`, a real SMTP server, a webhook receiver."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess
from tests.support.smtp_server import SmtpServer

CONFIG = ("[dispatch]\npoll_interval = 0.2\n[webhooks]\nallow_private = true\npoll_interval = 0.2\n"
          "[forms]\nrate_per_minute = {rate}\nmax_file_bytes = 100000\nmax_total_bytes = 150000\n")
SITE = "https://www.site.example"


@pytest.fixture
def env(home: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, SmtpServer, Receiver, str]]:
    rate, trusted = getattr(request, "param", (1000, ""))
    (home / "config.toml").write_text(trusted + CONFIG.format(rate=rate))
    with SmtpServer(tls="none") as smtp, Receiver() as receiver:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "site", "--address", "forms@example.com",
                       "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth").code == 0
        assert run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "site", "--events", "form.submitted").code == 0
        created = run_cli("forms", "create", "-w", "acme", "-a", "site", "--to", "owner@example.com",
                          "--name", "Contact", "--origin", SITE, "--redirect", f"{SITE}/thanks", "--json")
        assert created.code == 0, created.err
        with ServerProcess(home) as server:
            yield server, smtp, receiver, created.json()["id"]


def test_urlencoded_submission_mails_the_owner_and_redirects(env: tuple[ServerProcess, SmtpServer, Receiver, str]) -> None:
    server, smtp, receiver, form_id = env
    r = httpx.post(f"{server.url}/f/{form_id}", headers={"Origin": SITE},
                   data={"name": "Ann <b>", "email": "ann@example.org", "message": "Hello\nthere", "_subject": "Hi!",
                         "_next": f"{SITE}/merci", "_gotcha": ""})
    assert r.status_code == 303 and r.headers["Location"] == f"{SITE}/merci"
    assert r.headers["Access-Control-Allow-Origin"] == SITE
    (got,) = smtp.wait_for(1)
    msg = got.message
    assert got.rcpt_tos == ["owner@example.com"] and msg["Reply-To"] == "ann@example.org"
    assert str(msg["Subject"]) == "Hi!"
    assert "Ann <b>" in msg.get_body(("plain",)).get_content()
    assert "Ann &lt;b&gt;" in msg.get_body(("html",)).get_content()
    (hook,) = receiver.wait_for(1)
    event = json.loads(hook.body)
    assert event["type"] == "form.submitted" and event["data"]["formId"] == form_id
    assert event["data"]["fields"]["message"] == "Hello\nthere" and event["data"]["messageId"].startswith("msg_")


def test_json_mode_and_multipart_upload(env: tuple[ServerProcess, SmtpServer, Receiver, str]) -> None:
    server, smtp, _, form_id = env
    r = httpx.post(f"{server.url}/f/{form_id}", json={"email": "bob@example.org", "message": "via fetch"},
                   headers={"Origin": SITE})
    assert r.status_code == 200 and r.json() == {"status": "queued"}
    r = httpx.post(f"{server.url}/f/{form_id}", headers={"Origin": SITE, "Accept": "application/json"},
                   data={"message": "see attached"}, files={"cv": ("cv.txt", b"my cv", "text/plain")})
    assert r.status_code == 200 and r.json() == {"status": "queued"}
    messages = smtp.wait_for(2)
    with_file = next(m for m in messages if "see attached" in m.message.get_body(("plain",)).get_content())
    (attachment,) = list(with_file.message.iter_attachments())
    assert attachment.get_filename() == "cv.txt" and attachment.get_content() == "my cv"
    thanks = httpx.post(f"{server.url}/f/{form_id}", data={"message": "x"}, headers={"Origin": SITE},
                        follow_redirects=False)
    assert thanks.headers["Location"] == f"{SITE}/thanks"  # the form's redirect


def test_abuse_paths_answer_4xx_and_send_nothing(env: tuple[ServerProcess, SmtpServer, Receiver, str]) -> None:
    server, smtp, _, form_id = env
    url = f"{server.url}/f/{form_id}"
    js = {"Origin": SITE, "Accept": "application/json"}
    honeypot = httpx.post(url, headers=js, data={"message": "spam", "_gotcha": "bot"})
    assert honeypot.status_code == 200 and honeypot.json() == {"status": "queued"}
    cases = [
        (httpx.post(url, headers=js, data={"message": "  "}), 422, "empty_submission"),
        (httpx.post(url, headers={**js, "Origin": "https://evil.example"}, data={"message": "x"}), 403,
         "origin_not_allowed"),
        (httpx.post(url, headers=js, files={"f": ("big.bin", b"x" * 100001)}, data={"message": "x"}), 413,
         "file_too_large"),
        (httpx.post(url, headers={**js, "Content-Type": "text/plain"}, content=b"hi"), 415, "unsupported_media_type"),
        (httpx.post(url, headers={**js, "Content-Type": "application/json"}, content=b"{nope"), 422, "bad_json"),
        (httpx.post(url, headers={**js, "Content-Type": "multipart/form-data; boundary=zz"}, content=b"--zz\r\nbroken"),
         422, None),
        (httpx.post(f"{server.url}/f/nope", headers=js, data={"message": "x"}), 404, "form_not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["status"] == "error"
        if code:
            assert body["error"]["code"] == code
    html_error = httpx.post(url, headers={"Origin": "https://evil.example"}, data={"message": "x"})
    assert html_error.status_code == 403 and "text/html" in html_error.headers["content-type"]
    time.sleep(1)
    assert smtp.messages == []


def test_preflight_allows_only_configured_origins(env: tuple[ServerProcess, SmtpServer, Receiver, str]) -> None:
    server, _, _, form_id = env
    ok = httpx.options(f"{server.url}/f/{form_id}", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == SITE
    bad = httpx.options(f"{server.url}/f/{form_id}", headers={"Origin": "https://evil.example"})
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers


@pytest.mark.parametrize("env", [(2, "")], indirect=True)
def test_per_ip_rate_limit(env: tuple[ServerProcess, SmtpServer, Receiver, str]) -> None:
    server, _, _, form_id = env
    js = {"Origin": SITE, "Accept": "application/json"}
    codes = [httpx.post(f"{server.url}/f/{form_id}", headers={**js, "X-Forwarded-For": f"1.2.3.{i}"},
                        data={"message": f"m{i}"}) for i in range(4)]
    assert [c.status_code for c in codes[:2]] == [200, 200]
    # the peer is not a trusted proxy: X-Forwarded-For changes nothing, the loopback peer is limited
    assert codes[2].status_code == 429 and int(codes[2].headers["Retry-After"]) >= 1


@pytest.mark.parametrize("env", [(2, '[server]\ntrusted_proxies = ["127.0.0.1"]\n')], indirect=True)
def test_behind_a_trusted_proxy_each_visitor_has_a_bucket(env: tuple[ServerProcess, SmtpServer, Receiver, str]) -> None:
    server, _, _, form_id = env
    js = {"Origin": SITE, "Accept": "application/json"}

    def post(visitor: str, hops: str = "") -> int:
        headers = {**js, "X-Forwarded-For": f"{visitor}{hops}"}
        return httpx.post(f"{server.url}/f/{form_id}", headers=headers, data={"message": "m"}).status_code

    assert [post("1.2.3.4") for _ in range(3)] == [200, 200, 429]
    assert post("5.6.7.8") == 200  # another visitor behind the same proxy
    assert post("9.9.9.9", ", 127.0.0.1") == 200  # the rightmost untrusted hop is the visitor


def test_forms_api_and_cli(env: tuple[ServerProcess, SmtpServer, Receiver, str]) -> None:
    server, _, _, form_id = env
    key = run_cli("keys", "create", "-w", "acme", "-a", "site").out.strip()
    other = run_cli("keys", "create", "-w", "acme", "-a", "blog").out.strip()
    api = httpx.Client(base_url=server.url, headers={"X-Api-Key": key})
    made = api.post("/v1/forms", json={"to": "owner@example.com", "name": "API form", "origins": [SITE]})
    assert made.status_code == 201, made.text
    new_id = made.json()["id"]
    assert {f["id"] for f in api.get("/v1/forms").json()["data"]} == {form_id, new_id}
    stranger = httpx.Client(base_url=server.url, headers={"X-Api-Key": other})
    assert stranger.get("/v1/forms").json()["data"] == []
    assert stranger.delete(f"/v1/forms/{new_id}").status_code == 404
    assert api.post("/v1/forms", json={"to": "not-an-address"}).status_code == 422
    assert api.delete(f"/v1/forms/{new_id}").status_code == 200
    assert httpx.post(f"{server.url}/f/{new_id}", data={"message": "x"}, headers={"Accept": "application/json"}
                      ).status_code == 404
    shown = run_cli("forms", "show", form_id, "--json").json()
    assert shown["origins"] == [SITE] and shown["endpoint"].endswith(f"/f/{form_id}")
    snippet = run_cli("forms", "snippet", form_id, "--flavor", "bootstrap", "--ajax")
    assert snippet.code == 0 and f"/f/{form_id}" in snippet.out and "fetch(" in snippet.out
    prompt = run_cli("forms", "prompt", form_id, "--platform", "v0")
    assert prompt.code == 0 and "Next.js" in prompt.out
    assert run_cli("forms", "snippet", form_id, "--flavor", "bulma").code == 1
    assert "curl" in run_cli("snippet", "--lang", "curl").out
