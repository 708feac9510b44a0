"""Webhook operations: recent deliveries, redeliver, the redelivery window, the retry schedule and
its give-up, and auto-disable — through `js2mail serve` and the API, the CLI, and on the FakeClock."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from js2mail.clock import FakeClock
from js2mail.config import load_settings
from js2mail.errors import ConfigError
from js2mail.service import Context, open_context
from js2mail.service import messages as messages_svc
from js2mail.service.keys import ensure_scope
from js2mail.webhook_worker import WebhookWorker
from js2mail.webhooks import verify
from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess
from tests.support.smtp_server import SmtpServer

CONFIG = ("[dispatch]\nretry_schedule = [1, 1]\npoll_interval = 0.2\n"
          "[webhooks]\nallow_private = true\nretry_schedule = [1]\npoll_interval = 0.2\n")
SCHEDULE = [60, 300, 1500, 7200, 36000, 86400]  # the default [webhooks] retry_schedule
MAIL = {"to": "bob@example.org", "subject": "hello", "text": "x"}


def add_hook(url: str, app: str = "shop", events: str = "mail.sent") -> dict:
    result = run_cli("webhooks", "add", url, "-w", "acme", "-a", app, "--events", events, "--json")
    assert result.code == 0, result.err
    return result.json()


def wait_until(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def delivery_row(home: Path, delivery_id: str) -> sqlite3.Row:
    db = sqlite3.connect(home / "js2mail.db")
    db.row_factory = sqlite3.Row
    try:
        row: sqlite3.Row = db.execute("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return row
    finally:
        db.close()


@pytest.fixture
def served(home: Path) -> Iterator[tuple[SmtpServer, Receiver, str, str]]:
    (home / "config.toml").write_text(CONFIG)
    with SmtpServer(tls="none") as smtp, Receiver() as receiver:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                       "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth").code == 0
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        other_key = run_cli("keys", "create", "-w", "acme", "-a", "blog").out.strip()
        yield smtp, receiver, key, other_key


def test_deliveries_and_redeliver_through_the_api_and_the_cli(
        home: Path, served: tuple[SmtpServer, Receiver, str, str]) -> None:
    _, receiver, key, other_key = served
    hook = add_hook(receiver.url)
    receiver.respond(500, times=2)  # the first attempt and its one retry: given up
    with ServerProcess(home) as server, httpx.Client(base_url=server.url, headers={"X-Api-Key": key}) as api:
        message_id = api.post("/v1/send", json={**MAIL, "metadata": {"orderId": "secret-789"}}).json()["id"]
        receiver.wait_for(2)
        path = f"/v1/webhooks/{hook['id']}/deliveries"
        wait_until(lambda: api.get(path).json()["data"][0]["status"] == "failed")
        listing = api.get(path, params={"status": "failed"})
        assert listing.status_code == 200
        (d,) = listing.json()["data"]
        assert (d["eventType"], d["attempts"], d["lastHttpStatus"], d["redeliverable"]) == ("mail.sent", 2, 500, True)
        assert isinstance(d["latencyMs"], int) and d["lastError"] == "HTTP 500" and d["failedAt"]
        assert d["id"] == receiver.requests[0].headers["X-JS2Mail-Delivery-Id"]
        assert "secret-789" not in listing.text and message_id not in listing.text  # never the payload
        assert api.get(path, params={"status": "bogus"}).status_code == 422
        # another application's key sees no such endpoint
        other = {"X-Api-Key": other_key}
        assert api.get(path, headers=other).status_code == 404
        assert api.post(f"{path}/{d['id']}/redeliver", headers=other).status_code == 404
        assert api.post(f"{path}/nope/redeliver").status_code == 404

        r = api.post(f"{path}/{d['id']}/redeliver")
        assert r.status_code == 202 and r.json()["status"] == "pending"
        third = receiver.wait_for(3)[2]
        wait_until(lambda: api.get(path).json()["data"][0]["status"] == "delivered")
        gone = api.post(f"{path}/{d['id']}/redeliver")
        assert gone.status_code == 409 and gone.json()["error"]["code"] == "payload_gone"
        assert "delivered" in gone.json()["error"]["message"]

        # the CLI: deliveries, and redeliver all failed since a time
        receiver.respond(500, times=2)
        api.post("/v1/send", json=MAIL)
        receiver.wait_for(5)
        listed = run_cli("webhooks", "deliveries", "--endpoint", hook["id"], "--status", "failed", "--json")
        wait_until(lambda: run_cli("webhooks", "deliveries", "--endpoint", hook["id"], "--status", "failed",
                                   "--json").json() != [])
        listed = run_cli("webhooks", "deliveries", "--endpoint", hook["id"], "--status", "failed", "--json")
        (failed,) = listed.json()
        human = run_cli("webhooks", "deliveries", "--endpoint", hook["id"])
        assert failed["id"] in human.out and "500" in human.out
        everyone = run_cli("webhooks", "deliveries", "--status", "failed", "--json").json()  # all endpoints
        assert [x["id"] for x in everyone] == [failed["id"]]
        assert run_cli("webhooks", "deliveries", "--endpoint", "whk_nope").code != 0
        again = run_cli("webhooks", "redeliver", "--endpoint", hook["id"], "--since", "2h", "--json")
        assert again.code == 0, again.err
        assert again.json()["redelivered"] == [failed["id"]]
        sixth = receiver.wait_for(6)[5]
    first = receiver.requests[0]
    assert third.headers["X-JS2Mail-Delivery-Id"] == d["id"]  # the same delivery id...
    assert third.body == first.body and verify(third.body, third.headers["X-JS2Mail-Signature"], hook["secret"])
    t = [int(r.headers["X-JS2Mail-Signature"].split(",")[0][2:]) for r in (first, third)]
    assert t[1] > t[0]  # ...with a fresh signature timestamp
    assert sixth.headers["X-JS2Mail-Delivery-Id"] == failed["id"]
    assert delivery_row(home, d["id"])["payload"] is None  # delivered: wiped at once


# --- on the FakeClock ----------------------------------------------------------------------------
@pytest.fixture
def clocked(home: Path) -> Iterator[tuple[Context, Receiver]]:
    (home / "config.toml").write_text("[webhooks]\nallow_private = true\n")
    with Receiver() as receiver:
        context = open_context(load_settings(home), clock=FakeClock(1_800_000_000.0))
        yield context, receiver
        context.close()


def emit(ctx: Context, app: str = "shop") -> str:
    """A real event through the real intake: a dry-run send fires `mail.dry_run`."""
    from js2mail.service import mailboxes

    if not ctx.store.read(lambda c: c.execute("SELECT 1 FROM mailboxes").fetchone()):
        mailboxes.add_smtp(ctx, workspace="acme", address="shop@example.com", host="127.0.0.1", port=2525,
                           username=None, password=None, security="none", app="shop")
    scope = ensure_scope(ctx, "acme", app)
    return str(asyncio.run(messages_svc.send(ctx, scope, {**MAIL, "dryRun": True})).body["id"])


def tick(ctx: Context) -> None:
    async def run() -> None:
        worker = WebhookWorker(ctx)
        try:
            await worker.run_once()
        finally:
            await worker.drain(1)

    asyncio.run(run())


def deliveries(ctx: Context, endpoint_id: str) -> list[sqlite3.Row]:
    return ctx.store.read(lambda c: c.execute("SELECT * FROM webhook_deliveries WHERE endpoint_id = ?"
                                              " ORDER BY created_at", (endpoint_id,)).fetchall())


def test_retry_schedule_then_give_up_keeps_the_payload_for_the_window_then_wipes_it(
        clocked: tuple[Context, Receiver]) -> None:
    ctx, receiver = clocked
    clock: FakeClock = ctx.clock  # type: ignore[assignment]
    hook = add_hook(receiver.url, events="mail.dry_run")
    receiver.respond(503, times=100)
    emit(ctx)
    start = clock.now()
    tick(ctx)
    elapsed = 0.0
    for attempt, delay in enumerate(SCHEDULE, start=1):
        (d,) = deliveries(ctx, hook["id"])
        assert (d["status"], d["attempts"]) == ("pending", attempt)
        assert d["next_attempt_at"] == pytest.approx(start + elapsed + delay)
        clock.advance(delay - 1)
        tick(ctx)  # not due yet: nothing is sent
        assert len(receiver.requests) == attempt
        clock.advance(1)
        elapsed += delay
        tick(ctx)
    (d,) = deliveries(ctx, hook["id"])
    assert (d["status"], d["attempts"], d["next_attempt_at"]) == ("failed", 7, None)  # 1 + 6 retries, given up
    assert len(receiver.requests) == 7 and d["failed_at"] == pytest.approx(start + sum(SCHEDULE))
    assert d["payload"] is not None and d["body"] == b""  # kept sealed for the redelivery window
    assert len({r.headers["X-JS2Mail-Delivery-Id"] for r in receiver.requests}) == 1

    clock.advance(71 * 3600)
    tick(ctx)
    assert deliveries(ctx, hook["id"])[0]["payload"] is not None
    clock.advance(3600 + 1)
    tick(ctx)  # past [webhooks] redeliver_window_hours = 72: wiped
    (d,) = deliveries(ctx, hook["id"])
    assert d["payload"] is None and d["status"] == "failed"
    gone = run_cli("webhooks", "redeliver", d["id"])
    assert gone.code != 0 and "can no longer be redelivered" in gone.err and "72 h redelivery window" in gone.err


def test_an_endpoint_failing_for_three_days_is_disabled_announced_and_enabled_again(
        clocked: tuple[Context, Receiver], caplog: pytest.LogCaptureFixture) -> None:
    ctx, receiver = clocked
    clock: FakeClock = ctx.clock  # type: ignore[assignment]
    with Receiver() as watcher:
        hook = add_hook(receiver.url, events="mail.dry_run")
        other = add_hook(watcher.url, app="blog", events="webhook.disabled")  # same workspace, other app
        receiver.respond(500, times=100)
        start = clock.now()
        emit(ctx)
        disabled_at = None
        for _ in range(200):  # every 30 minutes for 100 hours, a new event each day
            clock.advance(1800)
            if int(clock.now() - start) % 86400 == 0:
                emit(ctx)
            tick(ctx)
            status = ctx.store.read(lambda c: c.execute("SELECT status FROM webhook_endpoints WHERE id = ?",
                                                        (hook["id"],)).fetchone()[0])
            if status == "disabled":
                disabled_at = clock.now()
                break
        assert disabled_at is not None and 3 * 86400 <= disabled_at - start <= 3 * 86400 + 1800
        assert any(r.name == "js2mail.webhooks" and hook["id"] in r.getMessage() and "disabled automatically"
                   in r.getMessage() for r in caplog.records)  # the disable is logged
        attempts_then = len(receiver.requests)
        listed = run_cli("webhooks", "list", "--json").json()
        mine = next(w for w in listed if w["id"] == hook["id"])
        assert mine["status"] == "disabled" and "disable_after = 3d" in mine["statusDetail"]
        assert "disabled" in run_cli("webhooks", "list").out
        doctor = run_cli("doctor", "--json").json()
        assert any(c["check"] == f"webhook {hook['id']}" and c["status"] == "fail"
                   and "webhooks enable" in c["detail"] for c in doctor)
        tick(ctx)
        (announced,) = watcher.wait_for(1)
        event = json.loads(announced.body)
        assert event["type"] == "webhook.disabled" and event["data"]["endpointId"] == hook["id"]
        assert verify(announced.body, announced.headers["X-JS2Mail-Signature"], other["secret"], now=clock.now())
        missed = [d for d in deliveries(ctx, hook["id"]) if d["status"] == "failed"]
        assert len(missed) == 4 and all(d["payload"] is not None for d in missed)  # pending ones failed, kept
        emit(ctx)  # while disabled nothing more is queued for it
        clock.advance(3600)
        tick(ctx)
        assert len(receiver.requests) == attempts_then

        receiver.script.clear()  # the receiver is fixed
        enabled = run_cli("webhooks", "enable", hook["id"], "--redeliver-since", "365d", "--json")
        assert enabled.code == 0, enabled.err
        assert enabled.json()["status"] == "active" and len(enabled.json()["redelivery"]["redelivered"]) == 4
        tick(ctx)
    redelivered = receiver.requests[attempts_then:]
    assert {r.headers["X-JS2Mail-Delivery-Id"] for r in redelivered} == {d["id"] for d in missed}
    assert all(d["status"] == "delivered" and d["payload"] is None for d in deliveries(ctx, hook["id"])
               if d["id"] in {m["id"] for m in missed})
    assert run_cli("webhooks", "list", "--json").json()[0]["consecutiveFailures"] == 0


def test_disable_after_is_validated(home: Path) -> None:
    (home / "config.toml").write_text('[webhooks]\ndisable_after = "soon"\n')
    with pytest.raises(ConfigError, match="disable_after"):
        load_settings(home)
    (home / "config.toml").write_text('[webhooks]\ndisable_after = "0h"\n')
    with pytest.raises(ConfigError, match="positive duration"):
        load_settings(home)
    (home / "config.toml").write_text('[webhooks]\ndisable_after = "72h"\n')
    assert load_settings(home).webhooks.disable_after_seconds == 3 * 86400
