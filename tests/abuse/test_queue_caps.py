"""A greedy tenant: one application's queue is capped in messages and bytes; others are unaffected."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import httpx

from tests.abuse.conftest import Serve
from tests.support.cli import run_cli
from tests.support.smtp_server import SmtpServer

CAPS = "[limits]\nmax_queued_messages = 3\nmax_queued_bytes = 300000\n"


def _later(**extra: Any) -> dict[str, Any]:
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"to": "bob@example.org", "subject": "later", "text": "hi", "scheduledAt": when, **extra}


def _assert_queue_full(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "queue_full"
    assert int(r.headers["Retry-After"]) > 0


def test_queued_messages_and_bytes_are_capped_per_application(serve: Serve, smtp: SmtpServer) -> None:
    server, client = serve(CAPS, smtp=smtp)
    first = client.post("/v1/send", json=_later(idempotencyKey="first"))
    assert first.status_code == 202
    assert client.post("/v1/send", json=_later()).status_code == 202
    big = base64.b64encode(b"x" * 400_000).decode()
    _assert_queue_full(client.post("/v1/send", json=_later(attachments=[{"filename": "a.bin", "content": big}])))
    assert client.post("/v1/send", json=_later()).status_code == 202  # the third
    _assert_queue_full(client.post("/v1/send", json=_later()))  # a fourth
    _assert_queue_full(client.post("/v1/send", json=_later(idempotencyKey="new-key")))
    replay = client.post("/v1/send", json=_later(idempotencyKey="first"))  # a replay is still a replay
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    assert client.get("/v1/messages", params={"status": "queued"}).json()["data"].__len__() == 3

    other_key = run_cli("keys", "create", "-w", "acme", "-a", "other").out.strip()
    other = client.post("/v1/send", json=_later(), headers={"X-Api-Key": other_key})
    assert other.status_code == 202, other.text  # another application has its own queue

    assert client.delete(f"/v1/messages/{first.json()['id']}").status_code == 200  # cancelled: no longer queued
    assert client.post("/v1/send", json=_later(idempotencyKey="new-key")).status_code == 202
    _assert_queue_full(client.post("/v1/send", json=_later()))
