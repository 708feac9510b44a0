"""Dry-run sends end to end: `js2mail serve`, the real SMTP server and a real webhook receiver.

A dry run goes through validation, idempotency, the MIME build and the size check, previews the
mailbox's daily quota, and ends in status `dry_run` with a `mail.dry_run` event — and nothing
reaches the SMTP server, nor is the daily quota used."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from js2mail.webhooks import verify
from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, wait_status
from tests.support.smtp_server import SmtpServer

CONFIG = ("[dispatch]\nretry_schedule = [1, 1]\npoll_interval = 0.2\n"
          "[webhooks]\nallow_private = true\nretry_schedule = [1, 1]\npoll_interval = 0.2\n")
MAIL = {"to": "bob@example.org", "subject": "hello", "text": "x"}


@pytest.fixture
def setup(home: Path) -> Iterator[tuple[SmtpServer, Receiver, str, dict]]:
    (home / "config.toml").write_text(CONFIG)
    with SmtpServer(tls="none") as smtp, Receiver() as receiver:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                       "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth",
                       "--daily-quota", "1").code == 0
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        hook = run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "shop", "--events",
                       "mail.dry_run,mail.sent", "--json")
        assert hook.code == 0, hook.err
        yield smtp, receiver, key, hook.json()


def test_dry_run_sends_nothing_ends_dry_run_and_fires_its_webhook(
        home: Path, setup: tuple[SmtpServer, Receiver, str, dict]) -> None:
    smtp, receiver, key, hook = setup
    with ServerProcess(home) as server, httpx.Client(base_url=server.url, headers={"X-Api-Key": key}) as client:
        r = client.post("/v1/send", json={**MAIL, "dryRun": True, "metadata": {"orderId": "42"}})
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status"] == "dry_run"
        assert body["dryRun"]["quota"] == {"daily": 1, "usedToday": 0, "remaining": 1, "wouldSendToday": True}
        (got,) = receiver.wait_for(1)
        assert client.get(f"/v1/messages/{body['id']}").json()["status"] == "dry_run"
        assert [m["id"] for m in client.get("/v1/messages", params={"status": "dry_run"}).json()["data"]] == [body["id"]]
        assert client.delete(f"/v1/messages/{body['id']}").status_code == 409  # final: nothing to cancel
        # the quota was only previewed: the one send a day it allows still goes out at once
        real = client.post("/v1/send", json=MAIL).json()
        wait_status(client, real["id"], {"sent"})
        (arrived,) = smtp.wait_for(1)
        again = client.post("/v1/send", json={**MAIL, "dryRun": True}).json()
        assert again["dryRun"]["quota"] == {"daily": 1, "usedToday": 1, "remaining": 0, "wouldSendToday": False}
        receiver.wait_for(3)
        time.sleep(0.5)
    assert len(smtp.messages) == 1 and arrived.message["Subject"] == "hello"  # only the real send arrived
    assert abs(again["dryRun"]["size"] - len(arrived.raw)) <= 4  # the size of the bytes the provider would get
    event = json.loads(got.body)
    assert got.headers["X-JS2Mail-Event"] == "mail.dry_run" and verify(got.body, got.headers["X-JS2Mail-Signature"],
                                                                       hook["secret"])
    assert event["type"] == "mail.dry_run"
    assert event["data"] == {"messageId": body["id"], "status": "dry_run", "attempt": 0, "error": None,
                             "recipientDomains": ["example.org"], "metadata": {"orderId": "42"}}
    assert sorted(json.loads(r.body)["type"] for r in receiver.requests) == ["mail.dry_run", "mail.dry_run",
                                                                             "mail.sent"]


def test_dry_run_replays_its_idempotency_key_and_refuses_what_a_send_refuses(
        home: Path, setup: tuple[SmtpServer, Receiver, str, dict]) -> None:
    smtp, _, key, _ = setup
    with ServerProcess(home) as server, httpx.Client(base_url=server.url, headers={"X-Api-Key": key},
                                                     timeout=60) as client:
        first = client.post("/v1/send", json={**MAIL, "dryRun": True}, headers={"Idempotency-Key": "k1"})
        replay = client.post("/v1/send", json={**MAIL, "dryRun": True}, headers={"Idempotency-Key": "k1"})
        assert first.status_code == replay.status_code == 202
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
        reused = client.post("/v1/send", json=MAIL, headers={"Idempotency-Key": "k1"})  # not the same request
        assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"

        bad_flag = client.post("/v1/send", json={**MAIL, "dryRun": "yes"})
        assert bad_flag.status_code == 422 and bad_flag.json()["error"]["code"] == "invalid_dry_run"
        invalid = client.post("/v1/send", json={"to": "bob@example.org", "text": "x", "dryRun": True})
        assert invalid.status_code == 422
        assert invalid.json()["error"]["details"][0]["field"] == "subject"
        big = base64.b64encode(b"\0" * (26 * 1024 * 1024)).decode()
        oversized = client.post("/v1/send", json={**MAIL, "dryRun": True, "attachments": [
            {"filename": "big.bin", "content": big, "contentType": "application/octet-stream"}]})
        assert oversized.status_code == 413 and oversized.json()["error"]["code"] == "message_too_large"
        listed = client.get("/v1/messages").json()["data"]
        schema = client.get("/schema/openapi.json").json()
    assert [m["id"] for m in listed] == [first.json()["id"]]  # the refused ones left no message
    assert smtp.messages == []
    assert "dry_run" in schema["components"]["schemas"]["Message"]["properties"]["status"]["enum"]


def test_cli_send_dry_run(home: Path, setup: tuple[SmtpServer, Receiver, str, dict]) -> None:
    smtp, _, _, _ = setup
    result = run_cli("send", "-w", "acme", "-a", "shop", "--to", "bob@example.org", "--subject", "s", "--text", "t",
                     "--dry-run")
    assert result.code == 0, result.err
    assert "Dry run msg_" in result.out and "Nothing was sent" in result.out and "1 of 1 left today" in result.out
    listed = run_cli("messages", "list", "--status", "dry_run", "--json").json()["data"]
    assert len(listed) == 1 and listed[0]["status"] == "dry_run"
    with ServerProcess(home):
        time.sleep(1.0)  # a running dispatcher finds nothing to send
    assert smtp.messages == []
    assert run_cli("messages", "show", listed[0]["id"], "--json").json()["status"] == "dry_run"


def test_dry_runs_count_against_the_rate_limit(home: Path, setup: tuple[SmtpServer, Receiver, str, dict]) -> None:
    _, _, key, _ = setup
    (home / "config.toml").write_text(CONFIG + "[rate_limit]\nrate = 0.01\nburst = 2\n")
    with ServerProcess(home) as server, httpx.Client(base_url=server.url, headers={"X-Api-Key": key}) as client:
        answers = [client.post("/v1/send", json={**MAIL, "dryRun": True}) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited" and "Retry-After" in answers[2].headers
