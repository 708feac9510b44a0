"""What a real `serve` writes to its log (tests/support/server.py keeps it in a file): one line
per delivery and webhook outcome, in one format for every logger, text or JSON — and never an
address, a subject or a body. A webhook the SSRF gate refuses is visible in the log, in
`webhooks list` and in `doctor`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, wait_status
from tests.support.setup import plain_mailbox_key
from tests.support.smtp_server import SmtpServer

CONFIG = ("[dispatch]\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n"
          "[webhooks]\nallow_private = true\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n")
MAIL = {"to": ["Bob <bob@example.org>"], "cc": "carol@example.net", "subject": "SUBJECT-MARKER-41",
        "text": "BODY-MARKER-42"}
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="none") as server:
        yield server


@pytest.fixture
def key(home: Path, smtp: SmtpServer) -> str:
    return plain_mailbox_key(home, smtp, CONFIG)


def send(server: ServerProcess, key: str) -> str:
    with httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=10) as client:
        r = client.post("/v1/send", json=MAIL)
        assert r.status_code == 202, r.text
        message_id = str(r.json()["id"])
        assert wait_status(client, message_id, {"sent", "failed"})["status"] == "sent"
    return message_id


def assert_private(log: str) -> None:
    for secret in ("bob@example.org", "carol@example.net", "SUBJECT-MARKER", "BODY-MARKER"):
        assert secret not in log


def test_text_log_has_a_line_per_outcome_in_one_format(home: Path, smtp: SmtpServer, key: str) -> None:
    smtp.fail_next(1)  # the first attempt is answered 451: retrying, then sent
    mailbox = run_cli("mailboxes", "list", "--json").json()[0]["id"]
    server = ServerProcess(home, args=("--log-level", "info")).start()
    try:
        message_id = send(server, key)
    finally:
        server.stop()
    log = server.log.read_text()
    retrying = re.search(rf"WARNING js2mail.delivery: delivery retrying message={message_id} mailbox={mailbox} "
                         r"provider=smtp domains=example.net,example.org code=smtp_transient attempt=1 "
                         r"latency_ms=[\d.]+$", log, re.M)
    sent = re.search(rf"INFO js2mail.delivery: delivery sent message={message_id} mailbox={mailbox} provider=smtp "
                     r"domains=example.net,example.org code=2.0.0 attempt=2 latency_ms=[\d.]+$", log, re.M)
    assert retrying and sent, log
    lines = [line for line in log.splitlines() if line.strip()]
    assert any(" uvicorn.error: " in line for line in lines), log  # uvicorn's own lines, in the same format
    assert all(TEXT_LINE.match(line) for line in lines), log
    assert_private(log)


def test_json_log_and_a_refused_webhook_is_visible_everywhere(home: Path, smtp: SmtpServer, key: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the `webhooks list` table on one line per endpoint
    with Receiver() as receiver:
        hook = run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "shop", "--events", "mail.sent",
                       "--json").json()
        refusing = ServerProcess(home, args=("--log-level", "info", "--log-format", "json"),
                                 env={"JS2MAIL_WEBHOOKS_ALLOW_PRIVATE": "false"}).start()
        try:
            message_id = send(refusing, key)
            deadline = time.monotonic() + 15
            listed: dict = {}
            while time.monotonic() < deadline:
                listed = run_cli("webhooks", "list", "--json").json()[0]
                if (listed["consecutiveFailures"] or 0) >= 2:
                    break
                time.sleep(0.2)
        finally:
            refusing.stop()
        assert listed["lastOutcome"] == "retrying" and listed["consecutiveFailures"] >= 2, listed
        assert "webhooks go to public addresses only" in listed["lastError"]
        human = run_cli("webhooks", "list").out
        row = next(line for line in human.splitlines() if hook["id"] in line)
        assert "retrying: " in row and "public addresses only" in row and re.search(r"│ [2-9]\d* +│$", row), human
        doctor = run_cli("doctor", "--json").json()
        flagged = next(c for c in doctor if c["check"] == f"webhook {hook['id']}")
        assert flagged["status"] == "warn" and "in a row" in flagged["detail"]
        assert receiver.requests == []

        records = [json.loads(line) for line in refusing.log.read_text().splitlines() if line.strip()]
        assert {"time", "level", "logger", "message"} <= set(records[0])
        assert any(r["logger"].startswith("uvicorn") for r in records)
        sent = next(r for r in records if r.get("event") == "delivery" and r["status"] == "sent")
        assert sent["message_id"] == message_id and sent["recipient_domains"] == ["example.net", "example.org"]
        assert sent["provider"] == "smtp" and sent["provider_code"] == "2.0.0" and sent["attempt"] == 1
        assert sent["latency_ms"] > 0 and sent["mailbox_id"].startswith("mbx_")
        refused = next(r for r in records if r.get("event") == "webhook")
        assert refused["outcome"] == "retrying" and refused["endpoint_id"] == hook["id"]
        assert refused["level"] == "WARNING" and "public addresses only" in refused["error"]
        assert_private(refusing.log.read_text())

        with ServerProcess(home, args=("--log-level", "info")) as allowing:  # allowed again: the retry delivers
            receiver.wait_for(1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                listed = run_cli("webhooks", "list", "--json").json()[0]
                if listed["lastOutcome"] == "delivered":
                    break
                time.sleep(0.1)
        assert listed["lastOutcome"] == "delivered" and listed["consecutiveFailures"] == 0
        assert re.search(rf"INFO js2mail.webhook: webhook delivered delivery=\S+ endpoint={hook['id']} "
                         r"event=mail.sent http_status=200", allowing.log.read_text())
        assert not any(c["check"].startswith("webhook ") for c in run_cli("doctor", "--json").json())


def test_an_unknown_log_format_or_level_is_one_clear_line(home: Path) -> None:
    bad_format = run_cli("serve", "--log-format", "xml")
    assert bad_format.code == 1 and bad_format.err == "Error: unknown log format 'xml': choose text or json\n"
    bad_level = run_cli("serve", "--log-level", "loud")
    assert bad_level.code == 1 and bad_level.err.startswith("Error: --log-level 'loud' is not allowed")
