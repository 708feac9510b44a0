"""POST /v1/send end to end: `js2mail serve` as a subprocess, a real SMTP server (aiosmtpd with
STARTTLS and AUTH) on loopback, and what a user would check: the mail that arrived, the status
API, and the database file."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import ServerProcess, wait_status
from tests.support.smtp_server import SmtpServer

USER, PASSWORD = "shop@example.com", "correct horse battery"
LATER = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 20 * 86400))  # within the 30-day horizon


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="starttls", auth=(USER, PASSWORD)) as server:
        yield server


def connect_mailbox(smtp: SmtpServer, app: str = "shop", security: str = "starttls") -> None:
    result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", app, "--address", USER, "--name", "Shop",
                     "--host", "127.0.0.1", "--port", str(smtp.port), "--security", security,
                     "--tls-ca", str(smtp.ca_path), "--password-stdin", stdin=PASSWORD + "\n")
    assert result.code == 0, result.err


@pytest.fixture
def api(home: Path, smtp: SmtpServer) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    (home / "config.toml").write_text("[rate_limit]\nrate = 1000\nburst = 1000\n"
                                      "[dispatch]\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n")
    connect_mailbox(smtp)
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    with ServerProcess(home, env={"SSL_CERT_FILE": str(smtp.ca_path)}) as server, \
            httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=10) as client:
        yield server, client




def test_send_delivers_the_right_mime_and_wipes_the_body(api: tuple[ServerProcess, httpx.Client], smtp: SmtpServer,
                                                         home: Path) -> None:
    _, client = api
    pdf = b"%PDF-1.4 fake invoice bytes \x00\x01\x02"
    r = client.post("/v1/send", json={
        "to": ["Bob Example <bob@example.org>"], "cc": "carol@example.net", "bcc": ["hidden@example.com"],
        "replyTo": "support@example.com", "subject": "Your order #123 – confirmed ✓",
        "text": "Plain body MARKER-TEXT-71", "html": "<p>HTML body MARKER-HTML-72</p>",
        "attachments": [{"filename": "invoice.pdf", "content": base64.b64encode(pdf).decode(),
                         "contentType": "application/pdf"}],
        "headers": {"X-Campaign": "spring"}, "metadata": {"orderId": "123"},
    })
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["id"].startswith("msg_")
    assert r.headers["RateLimit-Policy"]
    status = wait_status(client, body["id"], {"sent", "failed"})
    assert status["status"] == "sent", status
    assert status["attempts"] == 1 and status["sentAt"]
    assert status["recipientDomains"] == ["example.com", "example.net", "example.org"]
    assert status["metadata"] == {"orderId": "123"}

    (got,) = smtp.wait_for(1)
    assert got.mail_from == USER
    assert sorted(got.rcpt_tos) == ["bob@example.org", "carol@example.net", "hidden@example.com"]
    msg = got.message
    assert msg["From"] == f"Shop <{USER}>"
    assert msg["To"] == "Bob Example <bob@example.org>"
    assert msg["Reply-To"] == "support@example.com"
    assert str(msg["Subject"]) == "Your order #123 – confirmed ✓"
    assert msg["X-Campaign"] == "spring"
    assert msg["Message-ID"] == f"<{body['id']}@example.com>"
    assert b"Bcc" not in got.raw and b"hidden@example.com" not in got.raw
    assert msg.get_body(("plain",)).get_content().strip() == "Plain body MARKER-TEXT-71"
    assert "MARKER-HTML-72" in msg.get_body(("html",)).get_content()
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "invoice.pdf" and attachment.get_content() == pdf

    db = sqlite3.connect(home / "js2mail.db")
    assert db.execute("SELECT COUNT(*) FROM message_bodies").fetchone()[0] == 0
    stored = b"".join(p.read_bytes() for p in home.glob("js2mail.db*"))
    for marker in (b"MARKER-TEXT-71", b"MARKER-HTML-72", b"bob@example.org", b"hidden@example.com"):
        assert marker not in stored


def test_body_is_encrypted_while_queued(api: tuple[ServerProcess, httpx.Client], home: Path) -> None:
    _, client = api
    r = client.post("/v1/send", json={"to": "bob@example.org", "subject": "later", "text": "SECRET-BODY-99",
                                      "scheduledAt": LATER})
    assert r.status_code == 202
    status = client.get(f"/v1/messages/{r.json()['id']}").json()
    assert status["status"] == "queued" and status["nextAttemptAt"].startswith(LATER[:16])
    stored = b"".join(p.read_bytes() for p in home.glob("js2mail.db*"))
    assert b"SECRET-BODY-99" not in stored and b"bob@example.org" not in stored
    cancelled = client.delete(f"/v1/messages/{r.json()['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.delete(f"/v1/messages/{r.json()['id']}").status_code == 409
    assert sqlite3.connect(home / "js2mail.db").execute("SELECT COUNT(*) FROM message_bodies").fetchone()[0] == 0


def test_replay_returns_the_original_response_and_sends_once(api: tuple[ServerProcess, httpx.Client],
                                                             smtp: SmtpServer) -> None:
    _, client = api
    payload = {"to": "bob@example.org", "subject": "Welcome", "text": "hi", "idempotencyKey": "welcome-user_42"}
    first = client.post("/v1/send", json=payload)
    again = client.post("/v1/send", json=payload)
    by_header = client.post("/v1/send", json={k: v for k, v in payload.items() if k != "idempotencyKey"},
                            headers={"Idempotency-Key": "welcome-user_42"})
    assert first.status_code == again.status_code == by_header.status_code == 202
    assert first.json() == again.json() == by_header.json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    different = client.post("/v1/send", json={**payload, "subject": "Other"})
    assert different.status_code == 422 and different.json()["error"]["code"] == "idempotency_key_reused"
    both = client.post("/v1/send", json=payload, headers={"Idempotency-Key": "another"})
    assert both.status_code == 400
    wait_status(client, first.json()["id"], {"sent"})
    time.sleep(0.5)
    assert len(smtp.messages) == 1


def test_concurrent_identical_posts_produce_one_mail(api: tuple[ServerProcess, httpx.Client],
                                                     smtp: SmtpServer) -> None:
    server, client = api
    big = base64.b64encode(b"x" * 3_000_000).decode()  # sealing takes a moment: a real in-flight window
    payload = {"to": "bob@example.org", "subject": "Once", "text": "hi", "idempotencyKey": "race-1",
               "attachments": [{"filename": "a.bin", "content": big}]}
    key = client.headers["X-Api-Key"]

    def post(_: int) -> httpx.Response:
        return httpx.post(server.url + "/v1/send", json=payload, headers={"X-Api-Key": key}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(post, range(8)))
    assert [r.status_code for r in replies] == [202] * 8, [r.text[:100] for r in replies]
    ids = {r.json()["id"] for r in replies}
    assert len(ids) == 1
    # one transaction accepts the first; the others wait for its commit and replay it
    assert sorted(r.headers.get("Idempotent-Replayed") for r in replies if r.headers.get("Idempotent-Replayed")) \
        == ["true"] * 7
    wait_status(client, ids.pop(), {"sent"})
    time.sleep(0.5)
    assert len(smtp.messages) == 1


def test_transient_failures_retry_then_succeed(api: tuple[ServerProcess, httpx.Client], smtp: SmtpServer) -> None:
    _, client = api
    smtp.fail_next(2, "451 4.7.1 Try again later")
    r = client.post("/v1/send", json={"to": "bob@example.org", "subject": "retry me", "text": "x"})
    status = wait_status(client, r.json()["id"], {"sent", "failed"}, timeout=20)
    assert status["status"] == "sent" and status["attempts"] == 3
    assert len(smtp.messages) == 1


def test_permanent_failure_fails_at_once(api: tuple[ServerProcess, httpx.Client], smtp: SmtpServer) -> None:
    _, client = api
    smtp.fail_next(1, "550 5.1.1 No such user")
    r = client.post("/v1/send", json={"to": "nobody@example.org", "subject": "bounce", "text": "x"})
    status = wait_status(client, r.json()["id"], {"sent", "failed"})
    assert status["status"] == "failed" and status["attempts"] == 1
    assert "550" in status["lastError"]


@pytest.mark.parametrize("payload,status,code", [
    ({"to": "bob@example.org", "subject": "x"}, 422, "validation_error"),
    ({"subject": "x", "text": "y"}, 422, "validation_error"),
    ({"to": "not an address", "subject": "x", "text": "y"}, 422, "validation_error"),
    ({"to": "bob@example.org", "subject": "a\r\nBcc: victim@example.com", "text": "y"}, 422, "validation_error"),
    ({"to": "bob@example.org", "subject": "x", "text": "y", "from": "other@example.com"}, 422, "from_not_connected"),
    ({"to": "bob@example.org", "subject": "x", "text": "y", "headers": {"From": "a@b.c"}}, 422, "validation_error"),
    ({"to": [f"u{i}@example.org" for i in range(51)], "subject": "x", "text": "y"}, 422, "validation_error"),
    ({"to": "bob@example.org", "subject": "x", "text": "y", "idempotencyKey": ""}, 400, "invalid_idempotency_key"),
])
def test_bad_requests_get_clear_4xx(api: tuple[ServerProcess, httpx.Client], payload: dict, status: int,
                                    code: str) -> None:
    _, client = api
    r = client.post("/v1/send", json=payload)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_wrong_media_type_bad_json_and_too_large(api: tuple[ServerProcess, httpx.Client]) -> None:
    _, client = api
    assert client.post("/v1/send", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/v1/send", content=b"to=x", headers={"Content-Type": "text/plain"}).status_code == 415
    huge = base64.b64encode(b"x" * (26 * 1024 * 1024)).decode()
    r = client.post("/v1/send", json={"to": "bob@example.org", "subject": "x", "text": "y",
                                      "attachments": [{"filename": "big.bin", "content": huge}]})
    assert r.status_code == 413, r.text[:200]


def test_other_applications_cannot_see_or_cancel(api: tuple[ServerProcess, httpx.Client]) -> None:
    server, client = api
    r = client.post("/v1/send", json={"to": "bob@example.org", "subject": "mine", "text": "x",
                                      "scheduledAt": LATER})
    other = run_cli("keys", "create", "-w", "acme", "-a", "blog").out.strip()
    stranger = httpx.Client(base_url=server.url, headers={"X-Api-Key": other})
    assert stranger.get(f"/v1/messages/{r.json()['id']}").status_code == 404
    assert stranger.delete(f"/v1/messages/{r.json()['id']}").status_code == 404
    assert stranger.get("/v1/messages").json()["data"] == []
    listed = client.get("/v1/messages", params={"status": "queued", "limit": 1}).json()
    assert [m["id"] for m in listed["data"]] == [r.json()["id"]]


def test_queue_survives_a_restart(home: Path, smtp: SmtpServer) -> None:
    (home / "config.toml").write_text("[dispatch]\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n")
    connect_mailbox(smtp)
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    env = {"SSL_CERT_FILE": str(smtp.ca_path)}
    server = ServerProcess(home, env=env).start()
    ids = []
    try:
        for i in range(5):
            r = httpx.post(server.url + "/v1/send", headers={"X-Api-Key": key},
                           json={"to": "bob@example.org", "subject": f"n{i}", "text": "x",
                                 "scheduledAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))})
            ids.append(r.json()["id"])
    finally:
        # SIGTERM drains; uvicorn re-raises the signal after a graceful shutdown, hence -15
        assert server.stop() in (0, -signal.SIGTERM)
    assert smtp.messages == []
    with ServerProcess(home, env=env) as again:
        client = httpx.Client(base_url=again.url, headers={"X-Api-Key": key})
        for message_id in ids:
            assert wait_status(client, message_id, {"sent"})["status"] == "sent"
    assert sorted(str(m.message["Subject"]) for m in smtp.messages) == [f"n{i}" for i in range(5)]


def test_cli_send_and_messages_commands(api: tuple[ServerProcess, httpx.Client], smtp: SmtpServer,
                                        tmp_path: Path) -> None:
    attachment = tmp_path / "notes.txt"
    attachment.write_text("attached text")
    sent = run_cli("send", "-w", "acme", "-a", "shop", "--to", "bob@example.org", "--subject", "From the CLI",
                   "--text", "hello", "--attach", str(attachment), "--json")
    assert sent.code == 0, sent.err
    message_id = sent.json()["id"]
    (got,) = smtp.wait_for(1)
    assert str(got.message["Subject"]) == "From the CLI"
    deadline = time.monotonic() + 10
    while run_cli("messages", "show", message_id, "--json").json()["status"] != "sent":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    listed = run_cli("messages", "list", "-w", "acme", "-a", "shop", "--json").json()
    assert listed["data"][0]["id"] == message_id
    tail = run_cli("messages", "tail", "--since", "1h", "--for", "0.5", "--interval", "0.2", "--json")
    assert message_id in tail.out
    assert json.loads(tail.out.splitlines()[0])["id"]
    assert message_id not in run_cli("messages", "tail", "--for", "0.3", "--interval", "0.1").out  # from now


def test_mailboxes_test_sends_a_real_mail_and_shows_the_answer(home: Path, smtp: SmtpServer) -> None:
    connect_mailbox(smtp)
    result = run_cli("mailboxes", "test", USER, "--to", "you@example.org")
    assert result.code == 0, result.err
    assert "Message accepted for delivery" in result.out
    (got,) = smtp.wait_for(1)
    assert got.rcpt_tos == ["you@example.org"] and "js2mail test" in str(got.message["Subject"])
    smtp.fail_next(1, "554 5.7.1 Rejected as spam")
    refused = run_cli("mailboxes", "test", USER, "--to", "you@example.org")
    assert refused.code == 1 and "554" in refused.err


def test_starttls_is_required_never_downgraded(home: Path) -> None:
    with SmtpServer(tls="none") as plain:
        result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", USER, "--host", "127.0.0.1",
                         "--port", str(plain.port), "--security", "starttls", "--no-auth")
        assert result.code == 0
        refused = run_cli("mailboxes", "test", USER, "--to", "you@example.org")
        assert refused.code == 1 and "STARTTLS" in refused.err.upper()
        assert plain.messages == []


def test_wrong_password_is_a_clear_error(home: Path, smtp: SmtpServer) -> None:
    result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", USER, "--host", "127.0.0.1",
                     "--port", str(smtp.port), "--security", "starttls", "--tls-ca", str(smtp.ca_path),
                     "--password-stdin", stdin="wrong\n")
    assert result.code == 0
    refused = run_cli("mailboxes", "test", USER, "--to", "you@example.org")
    assert refused.code == 1 and "login refused" in refused.err and "535" in refused.err


BAD_CHARS = ["\r", "\n", "\r\n", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]


def test_header_injection_attempts_over_http_are_always_4xx(api: tuple[ServerProcess, httpx.Client],
                                                            smtp: SmtpServer) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    _, client = api
    seen: list[int] = []

    @given(head=st.text(max_size=12), bad=st.sampled_from(BAD_CHARS), tail=st.text(max_size=12),
           where=st.sampled_from(["subject", "to", "replyTo", "header", "from"]))
    @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def attempt(head: str, bad: str, tail: str, where: str) -> None:
        value = f"{head}{bad}{tail}"
        payload: dict[str, object] = {"to": "bob@example.org", "subject": "s", "text": "t"}
        if where == "subject":
            payload["subject"] = value
        elif where == "header":
            payload["headers"] = {"X-Note": value}
        elif where == "from":
            payload["from"] = f"{value} <{USER}>"
        else:
            payload[where] = f"{value} <victim@example.org>"
        r = client.post("/v1/send", json=payload)
        seen.append(r.status_code)
        assert 400 <= r.status_code < 500, (payload, r.status_code, r.text)

    attempt()
    assert len(seen) >= 50
    time.sleep(0.5)
    assert smtp.messages == []


def test_a_crash_mid_send_loses_nothing(home: Path, smtp: SmtpServer) -> None:
    (home / "config.toml").write_text("[dispatch]\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n")
    connect_mailbox(smtp)
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    env = {"SSL_CERT_FILE": str(smtp.ca_path)}
    smtp.data_delay = 3.0  # the server sits on DATA: serve is killed while the message is "sending"
    server = ServerProcess(home, env=env).start()
    client = httpx.Client(base_url=server.url, headers={"X-Api-Key": key})
    message_id = client.post("/v1/send", json={"to": "bob@example.org", "subject": "crash", "text": "x"}).json()["id"]
    wait_status(client, message_id, {"sending"}, timeout=10)
    server.stop(signal.SIGKILL)
    smtp.data_delay = 0.0
    with ServerProcess(home, env=env) as again:
        client = httpx.Client(base_url=again.url, headers={"X-Api-Key": key})
        assert wait_status(client, message_id, {"sent"})["status"] == "sent"
    # the first DATA may still have completed after the kill: at most that one duplicate (see README)
    assert 1 <= len([m for m in smtp.messages if str(m.message["Subject"]) == "crash"]) <= 2


def test_any_body_over_http_is_a_4xx_envelope_and_sends_nothing(api: tuple[ServerProcess, httpx.Client],
                                                                 smtp: SmtpServer) -> None:
    """`POST /v1/send` is answered ahead of the router: whatever arrives — any JSON value, any
    bytes, a chunked body — gets a JSON error envelope with a 4xx, never a 500."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    _, client = api
    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                               lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                   st.sampled_from(["to", "subject", "text", "html", "from", "cc", "headers",
                                                    "metadata", "attachments", "scheduledAt", "x"]) | st.text(
                                       max_size=8), inner, max_size=5), max_leaves=12)

    @given(body=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)))
    @settings(max_examples=120, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def attempt(body: bytes) -> None:
        r = client.post("/v1/send", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 422), (body, r.status_code, r.text)
        assert set(r.json()["error"]) >= {"code", "message"}
        assert r.headers["RateLimit-Policy"]

    attempt()
    for path in ("/v1/send", "/v1/send/"):  # both spellings, one behaviour: unknown fields are refused
        r = client.post(path, json={"to": "bob@example.org", "subject": "x", "text": "y", "bogus": 1})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["code"] == "unknown_field"

    def chunks() -> Iterator[bytes]:
        yield b'{"to": "bob@example.org", '
        yield b'"subject": "chunked", "text": "x"}'

    r = client.post("/v1/send", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    (got,) = smtp.wait_for(1)
    assert str(got.message["Subject"]) == "chunked"


def test_changes_from_the_cli_count_from_the_next_request(api: tuple[ServerProcess, httpx.Client]) -> None:
    """serve caches keys and mailbox resolutions; a revocation or a removed mailbox made by
    another process must still be seen by the very next request."""
    server, client = api
    payload = {"to": "bob@example.org", "subject": "x", "text": "y", "scheduledAt": LATER}
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop", "--json").json()
    other = httpx.Client(base_url=server.url, headers={"X-Api-Key": key["key"]})
    assert other.post("/v1/send", json=payload).status_code == 202  # key and mailbox now cached
    assert run_cli("keys", "revoke", key["prefix"]).code == 0
    assert other.post("/v1/send", json=payload).status_code == 401
    assert client.post("/v1/send", json=payload).status_code == 202
    assert run_cli("mailboxes", "remove", USER).code == 0
    gone = client.post("/v1/send", json=payload)
    assert gone.status_code == 422 and gone.json()["error"]["code"] == "no_default_mailbox"
