"""Webhooks end to end: `js2mail serve`, a real SMTP server and a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stripe

from js2mail.webhooks import verify
from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess
from tests.support.smtp_server import SmtpServer

CONFIG = ("[dispatch]\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n"
          "[webhooks]\nallow_private = true\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n")


@pytest.fixture
def setup(home: Path) -> Iterator[tuple[SmtpServer, Receiver, str]]:
    (home / "config.toml").write_text(CONFIG)
    with SmtpServer(tls="none") as smtp, Receiver() as receiver:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                       "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth").code == 0
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        yield smtp, receiver, key


def add_hook(url: str, events: str = "mail.sent,mail.failed,form.submitted") -> dict:
    result = run_cli("webhooks", "add", url, "-w", "acme", "-a", "shop", "--events", events, "--json")
    assert result.code == 0, result.err
    return result.json()


def send(server: ServerProcess, key: str, **payload: object) -> str:
    body = {"to": "bob@example.org", "subject": "hello", "text": "x", **payload}
    r = httpx.post(server.url + "/v1/send", json=body, headers={"X-Api-Key": key})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_mail_sent_arrives_signed_with_metadata(home: Path, setup: tuple[SmtpServer, Receiver, str]) -> None:
    _, receiver, key = setup
    hook = add_hook(receiver.url)
    assert hook["secret"].startswith("whsec_")
    assert hook["secret"] not in run_cli("webhooks", "list", "--json").out
    with ServerProcess(home) as server:
        message_id = send(server, key, metadata={"orderId": "789"})
        (got,) = receiver.wait_for(1)
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-JS2Mail-Event"] == "mail.sent"
    assert got.headers["User-Agent"].startswith("js2mail/")
    uuid.UUID(got.headers["X-JS2Mail-Delivery-Id"])
    signature = got.headers["X-JS2Mail-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert verify(got.body, signature, hook["secret"])
    assert stripe.WebhookSignature.verify_header(got.body.decode(), signature, hook["secret"], tolerance=300)
    event = json.loads(got.body)
    assert event["type"] == "mail.sent" and event["id"].startswith("evt_") and event["createdAt"].endswith("Z")
    assert event["data"] == {"messageId": message_id, "status": "sent", "attempt": 1, "error": None,
                             "recipientDomains": ["example.org"], "metadata": {"orderId": "789"},
                             "refusedRecipients": 0, "refusedDomains": []}


def test_failures_retry_with_the_same_delivery_id_and_a_fresh_signature(
        home: Path, setup: tuple[SmtpServer, Receiver, str]) -> None:
    _, receiver, key = setup
    hook = add_hook(receiver.url, "mail.sent")
    receiver.respond(500)
    receiver.respond(302, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})
    with ServerProcess(home) as server:
        send(server, key)
        first, second, third = receiver.wait_for(3, timeout=20)
    assert {r.path for r in (first, second, third)} == {"/hooks"}  # the redirect was not followed
    ids = {r.headers["X-JS2Mail-Delivery-Id"] for r in (first, second, third)}
    assert len(ids) == 1
    assert first.headers["X-JS2Mail-Signature"] != third.headers["X-JS2Mail-Signature"]  # fresh t
    for r in (first, second, third):
        assert verify(r.body, r.headers["X-JS2Mail-Signature"], hook["secret"])


def test_410_disables_the_endpoint(home: Path, setup: tuple[SmtpServer, Receiver, str]) -> None:
    _, receiver, key = setup
    hook = add_hook(receiver.url, "mail.sent")
    receiver.respond(410)
    with ServerProcess(home) as server:
        send(server, key)
        receiver.wait_for(1)
        deadline = time.monotonic() + 10
        while run_cli("webhooks", "list", "--json").json()[0]["status"] != "disabled":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        send(server, key, subject="after")
        time.sleep(1.5)
    assert len(receiver.requests) == 1
    assert run_cli("webhooks", "list", "--json").json()[0]["id"] == hook["id"]


def test_permanent_smtp_failure_fires_mail_failed(home: Path, setup: tuple[SmtpServer, Receiver, str]) -> None:
    smtp, receiver, key = setup
    add_hook(receiver.url, "mail.failed")
    smtp.fail_next(1, "550 5.1.1 No such user")
    with ServerProcess(home) as server:
        message_id = send(server, key)
        (got,) = receiver.wait_for(1)
    event = json.loads(got.body)
    assert event["type"] == "mail.failed" and event["data"]["messageId"] == message_id
    assert "550" in event["data"]["error"]


def test_private_receivers_are_refused_without_the_switch(home: Path, setup: tuple[SmtpServer, Receiver, str]) -> None:
    _, receiver, _ = setup
    (home / "config.toml").write_text("")
    refused = run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "shop")
    assert refused.code == 1
    assert "127.0.0.1" in refused.err and "allow_private" in refused.err
    assert run_cli("webhooks", "list", "--json").json() == []


def test_test_command_and_secret_rotation(home: Path, setup: tuple[SmtpServer, Receiver, str]) -> None:
    _, receiver, key = setup
    hook = add_hook(receiver.url, "mail.sent")
    tested = run_cli("webhooks", "test", hook["id"], "--json").json()
    assert tested["delivered"] is True and tested["status"] == 200
    (probe,) = receiver.wait_for(1)
    assert probe.headers["X-JS2Mail-Event"] == "webhook.test"
    assert verify(probe.body, probe.headers["X-JS2Mail-Signature"], hook["secret"])

    rotated = run_cli("webhooks", "rotate-secret", hook["id"], "--grace", "1h", "--json").json()
    assert rotated["secret"] != hook["secret"]
    with ServerProcess(home) as server:
        send(server, key)
        got = receiver.wait_for(2)[1]
    header = got.headers["X-JS2Mail-Signature"]
    assert header.count("v1=") == 2
    assert verify(got.body, header, hook["secret"]) and verify(got.body, header, rotated["secret"])
    receiver.respond(500)
    failed = run_cli("webhooks", "test", hook["id"])
    assert failed.code == 1 and "500" in failed.out


def test_pending_deliveries_survive_a_restart(home: Path, setup: tuple[SmtpServer, Receiver, str]) -> None:
    _, receiver, key = setup
    add_hook(receiver.url, "mail.sent")
    receiver.respond(503, times=1000)
    with ServerProcess(home) as server:
        send(server, key)
        receiver.wait_for(1)
    with receiver.lock:
        receiver.script.clear()
    seen = len(receiver.requests)
    with ServerProcess(home):
        got = receiver.wait_for(seen + 1, timeout=20)
    assert got[-1].headers["X-JS2Mail-Delivery-Id"] == got[0].headers["X-JS2Mail-Delivery-Id"]
    db_status = run_cli("webhooks", "list", "--json").json()[0]["status"]
    assert db_status == "active"
