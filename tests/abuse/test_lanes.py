"""One tenant's slowness never delays another: a real Dispatcher and WebhookWorker in-process
(FakeClock for the queue's times, wall time for the latency users see), real aiosmtpd servers
and real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from js2mail.clock import FakeClock
from js2mail.config import load_settings
from js2mail.dispatch import Dispatcher
from js2mail.service import Context, mailboxes, messages, open_context
from js2mail.service import webhooks as webhook_service
from js2mail.service.keys import ensure_scope
from js2mail.store import events
from js2mail.store import messages as rows
from js2mail.store import webhooks as webhook_rows
from js2mail.webhook_worker import WebhookWorker
from tests.support.receiver import Receiver
from tests.support.smtp_server import SmtpServer

MAIL = {"to": "bob@example.org", "subject": "s", "text": "t"}


def open_ctx(home: Path, config: str = "") -> Context:
    (home / "config.toml").write_text(config)
    return open_context(load_settings(home), clock=FakeClock(1_800_000_000.0))


def add_mailbox(ctx: Context, workspace: str, app: str, server: SmtpServer) -> None:
    mailboxes.add_smtp(ctx, workspace=workspace, address=f"{app}@{workspace}.example.com", host="127.0.0.1",
                       port=server.port, username=None, password=None, security="none", app=app)


async def queue(ctx: Context, workspace: str, app: str, count: int = 1) -> list[str]:
    scope = ensure_scope(ctx, workspace, app)
    return [str((await messages.send(ctx, scope, dict(MAIL))).body["id"]) for _ in range(count)]


async def within(seconds: float, done: Callable[[], bool]) -> float:
    """Wall seconds until `done()` (polled), or fail after `seconds`."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not done within {seconds}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def count(ctx: Context, sql: str, *params: object) -> int:
    return int(ctx.store.read(lambda c: c.execute(sql, params).fetchone()[0]))


@pytest.fixture
def two_servers() -> Iterator[tuple[SmtpServer, SmtpServer]]:
    with SmtpServer(tls="none") as slow, SmtpServer(tls="none") as fast:
        slow.data_delay = 2.0  # every DATA sits 2 s: 50 mails on 4 connections take 25 s
        yield slow, fast


def test_a_slow_mailbox_never_delays_another_tenants_mail(home: Path,
                                                          two_servers: tuple[SmtpServer, SmtpServer]) -> None:
    slow, fast = two_servers
    ctx = open_ctx(home)
    add_mailbox(ctx, "slowco", "shop", slow)
    add_mailbox(ctx, "fastco", "store", fast)

    async def scenario() -> tuple[float, int]:
        dispatcher = Dispatcher(ctx)
        try:
            await queue(ctx, "slowco", "shop", 50)
            dispatcher.kick()
            await asyncio.sleep(0.5)  # the slow mailbox's sends are under way
            claimed_slow = count(ctx, "SELECT count(*) FROM messages WHERE status = 'sending'")
            (fast_id,) = await queue(ctx, "fastco", "store")
            dispatcher.kick()  # what accepting a message does in `serve`
            elapsed = await within(10, lambda: len(fast.messages) == 1)
            assert ctx.store.read(rows.get, None, fast_id)["status"] in ("sending", "sent")
            return elapsed, claimed_slow
        finally:
            await dispatcher.drain(10)
            await dispatcher.providers.close()

    try:
        elapsed, claimed_slow = asyncio.run(scenario())
        assert elapsed < 1.0, f"the fast tenant's mail took {elapsed:.2f}s"
        assert claimed_slow == ctx.settings.dispatch.concurrency_per_mailbox  # a full lane claims no more
        assert fast.messages[0].rcpt_tos == ["bob@example.org"]
        # the slow mailbox's backlog is still queued, not held in 'sending' by this node
        assert count(ctx, "SELECT count(*) FROM messages WHERE status = 'sending'") == 0
        assert count(ctx, "SELECT count(*) FROM messages WHERE status = 'queued'") == 50 - len(slow.messages)
    finally:
        ctx.close()


def test_a_hanging_webhook_receiver_never_delays_another_endpoint(home: Path) -> None:
    ctx = open_ctx(home, "[webhooks]\nallow_private = true\ntimeout = 2.0\n")
    with Receiver() as hanging, Receiver() as quick:
        hanging.respond(200, delay=5, times=100)  # answers after the 2 s timeout: every delivery hangs
        apps = {}
        for workspace, app, receiver in (("slowco", "shop", hanging), ("fastco", "store", quick)):
            scope = ensure_scope(ctx, workspace, app)
            asyncio.run(webhook_service.add_endpoint(ctx, url=receiver.url, workspace=workspace, app=app,
                                                     events="mail.sent"))
            apps[app] = scope

        def emit(app: str, n: int) -> None:
            scope = apps[app]
            for i in range(n):
                ctx.store.write_sync(events.emit, workspace_id=scope.workspace_id, app_id=scope.application_id,
                                     type="mail.sent", data={"messageId": f"msg_{app}{i}"}, now=ctx.clock.now())

        async def scenario() -> float:
            worker = WebhookWorker(ctx)
            try:
                emit("shop", 30)
                polls = [asyncio.create_task(worker.tick())]  # the scheduler's poll
                await within(3, lambda: len(hanging.requests) >= 1)
                await asyncio.sleep(0.3)  # the hanging endpoint's deliveries are under way
                emit("store", 1)
                polls.append(asyncio.create_task(worker.tick()))
                elapsed = await within(10, lambda: len(quick.requests) == 1)
                assert len(hanging.requests) == ctx.settings.webhooks.concurrency_per_endpoint
                await asyncio.wait(polls, timeout=10)
                return elapsed
            finally:
                await worker.drain(10)

        try:
            elapsed = asyncio.run(scenario())
        finally:
            ctx.close()
    assert elapsed < 1.0, f"the quick endpoint's delivery took {elapsed:.2f}s"
    assert b"msg_store0" in quick.requests[0].body


def test_a_burst_on_a_small_pool_waits_for_a_connection_without_failing_attempts(home: Path) -> None:
    # 50 mails, 2 connections, 0.3 s per DATA: 7.5 s in all. The per-send deadline is send_timeout + 5 = 6 s,
    # so counting the wait for a connection would fail the last ones' attempts.
    ctx = open_ctx(home, "[dispatch]\nconcurrency_per_mailbox = 2\nsend_timeout = 1.0\n")
    with SmtpServer(tls="none") as smtp:
        smtp.data_delay = 0.3
        add_mailbox(ctx, "acme", "shop", smtp)

        async def scenario() -> int:
            ids = await queue(ctx, "acme", "shop", 50)
            dispatcher = Dispatcher(ctx)
            try:
                assert await dispatcher.run_once() == 50
            finally:
                await dispatcher.providers.close()
            return len(ids)

        try:
            assert asyncio.run(scenario()) == 50
            assert count(ctx, "SELECT count(*) FROM messages WHERE status = 'retrying' OR last_error IS NOT NULL") == 0
            assert count(ctx, "SELECT count(*) FROM messages WHERE status = 'sent' AND attempts = 1") == 50
            assert len(smtp.messages) == 50
        finally:
            ctx.close()


def test_claims_fill_only_free_slots_round_robin_and_respect_leases(home: Path) -> None:
    ctx = open_ctx(home)
    with SmtpServer(tls="none") as a, SmtpServer(tls="none") as b:
        add_mailbox(ctx, "aco", "shop", a)
        add_mailbox(ctx, "bco", "store", b)
        asyncio.run(queue(ctx, "aco", "shop", 10))
        asyncio.run(queue(ctx, "bco", "store", 10))
    lane = {r["address"]: r["id"] for r in ctx.store.read(lambda c: c.execute("SELECT id, address FROM mailboxes")
                                                          .fetchall())}
    mbx_a, mbx_b = lane["shop@aco.example.com"], lane["store@bco.example.com"]
    now = ctx.clock.now()
    try:
        # this worker has 3 of A's in flight: A has one free slot of 4, B four; room for 3 in all
        got = ctx.store.write_sync(rows.claim_due, "w1", now, now + 300, 3, 4, {mbx_a: 3})
        assert sorted(r["mailbox_id"] for r in got) == sorted([mbx_a, mbx_b, mbx_b])
        got = ctx.store.write_sync(rows.claim_due, "w1", now, now + 300, 100, 4, {mbx_a: 4, mbx_b: 2})
        assert [r["mailbox_id"] for r in got] == [mbx_b, mbx_b]
        # another worker's busy lanes are its own: it may claim A's and B's mail up to its limits
        got = ctx.store.write_sync(rows.claim_due, "w2", now, now + 300, 100, 2, {})
        assert sorted(r["mailbox_id"] for r in got) == sorted([mbx_a, mbx_a, mbx_b, mbx_b])
        # w2 dies: its claims come back when the lease ends, and only then
        assert ctx.store.write_sync(rows.release_claims, now + 299, None, True) == 0
        assert ctx.store.write_sync(rows.release_claims, now + 301, None, True) == 9
    finally:
        ctx.close()


def test_webhook_claims_are_per_endpoint_and_a_dead_workers_lease_runs_out(home: Path) -> None:
    ctx = open_ctx(home, "[webhooks]\nallow_private = true\n")
    ids = []
    for workspace, app in (("aco", "shop"), ("bco", "store")):
        scope = ensure_scope(ctx, workspace, app)
        ids.append(asyncio.run(webhook_service.add_endpoint(ctx, url="http://127.0.0.1:9/hooks", workspace=workspace,
                                                            app=app, events="*"))["id"])
        for i in range(5):
            ctx.store.write_sync(events.emit, workspace_id=scope.workspace_id, app_id=scope.application_id,
                                 type="mail.sent", data={"n": i}, now=ctx.clock.now())
    first, second = ids
    now = ctx.clock.now()
    try:
        got = ctx.store.write_sync(webhook_rows.claim_due, "dead", now, now + 60, 100, 2, {first: 1})
        assert sorted(r["endpoint_id"] for r in got) == sorted([first, second, second])
        # held by the dead worker's lease: not handed out again until it ends
        got = ctx.store.write_sync(webhook_rows.claim_due, "w1", now + 59, now + 120, 100, 1, {})
        assert sorted(r["endpoint_id"] for r in got) == sorted([first, second])
        got = ctx.store.write_sync(webhook_rows.claim_due, "w2", now + 61, now + 120, 100, 5, {})
        assert len(got) == 10 - 2  # the dead worker's 3 are back; w1's 2 are still leased
    finally:
        ctx.close()
