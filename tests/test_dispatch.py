"""The dispatcher in-process with an injected clock, against a real SMTP server on loopback:
the whole retry ladder (1m … 24h) runs in a second."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from js2mail.clock import FakeClock
from js2mail.config import load_settings
from js2mail.dispatch import Dispatcher
from js2mail.service import Context, mailboxes, messages, open_context
from js2mail.service.keys import ensure_scope
from js2mail.store import messages as rows
from tests.support.dispatching import run_dispatch
from tests.support.smtp_server import SmtpServer

SCHEDULE = [60, 300, 1500, 7200, 36000, 86400]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="none") as server:
        yield server


@pytest.fixture
def ctx(home: Path, smtp: SmtpServer) -> Iterator[Context]:
    clock = FakeClock(1_800_000_000.0)
    context = open_context(load_settings(home), clock=clock)
    mailboxes.add_smtp(context, workspace="acme", address="shop@example.com", host="127.0.0.1", port=smtp.port,
                       username=None, password=None, security="none", app="shop")
    yield context
    context.close()


def queue(ctx: Context, **extra: object) -> str:
    scope = ensure_scope(ctx, "acme", "shop")
    outcome = asyncio.run(messages.send(ctx, scope, {"to": "bob@example.org", "subject": "s", "text": "t", **extra}))
    return str(outcome.body["id"])




def events(ctx: Context) -> list[str]:
    return [r[0] for r in ctx.store.read(lambda c: c.execute("SELECT event_type FROM webhook_deliveries "
                                                             "ORDER BY rowid").fetchall())]


def test_the_whole_retry_ladder_then_failed(ctx: Context, smtp: SmtpServer) -> None:
    ctx.store.write_sync(lambda c: c.execute(
        "INSERT INTO webhook_endpoints (id, workspace_id, application_id, url, events, secret, created_at)"
        " SELECT 'whk_t', workspace_id, id, 'http://x.invalid', '\"*\"', x'00', 0 FROM applications WHERE slug='shop'"))
    smtp.fail_next(100, "451 4.3.0 Mailbox busy")
    clock: FakeClock = ctx.clock  # type: ignore[assignment]
    message_id = queue(ctx)
    start = clock.now()
    dispatcher = Dispatcher(ctx)
    assert run_dispatch(dispatcher) == 1
    elapsed = 0.0
    for attempt, delay in enumerate(SCHEDULE, start=1):
        row = ctx.store.read(rows.get, None, message_id)
        assert (row["status"], row["attempts"]) == ("retrying", attempt)
        assert row["next_attempt_at"] == pytest.approx(start + elapsed + delay)
        clock.advance(delay - 1)
        assert run_dispatch(dispatcher) == 0  # not before its time
        clock.advance(1)
        elapsed += delay
        assert run_dispatch(dispatcher) == 1
    row = ctx.store.read(rows.get, None, message_id)
    assert (row["status"], row["attempts"]) == ("failed", 7)
    assert "451" in row["last_error"]
    assert ctx.store.read(rows.body_of, message_id) is None  # wiped on terminal failure
    assert events(ctx) == ["mail.queued"] + ["mail.retrying"] * 6 + ["mail.failed"]
    clock.advance(10**6)
    assert run_dispatch(dispatcher) == 0


def test_retry_after_from_provider_pushes_later_never_earlier() -> None:
    from js2mail.retry import next_attempt_at

    assert next_attempt_at(1, SCHEDULE, 0, retry_after=5) == 60
    assert next_attempt_at(1, SCHEDULE, 0, retry_after=900) == 900
    assert next_attempt_at(7, SCHEDULE, 0) is None


def test_daily_quota_defers_to_the_next_window(ctx: Context, smtp: SmtpServer) -> None:
    ctx.store.write_sync(lambda c: c.execute("UPDATE mailboxes SET daily_quota = 1"))
    first, second = queue(ctx), queue(ctx)
    dispatcher = Dispatcher(ctx)
    run_dispatch(dispatcher)
    sent = {m: ctx.store.read(rows.get, None, m) for m in (first, second)}
    statuses = sorted(r["status"] for r in sent.values())
    assert statuses == ["queued", "sent"]
    deferred = next(r for r in sent.values() if r["status"] == "queued")
    assert deferred["attempts"] == 0 and "quota" in deferred["last_error"]
    assert deferred["next_attempt_at"] % 86400 == 0  # next UTC midnight
    ctx.clock.advance(86400)  # type: ignore[attr-defined]
    run_dispatch(dispatcher)
    assert ctx.store.read(rows.get, None, deferred["id"])["status"] == "sent"
    assert len(smtp.messages) == 2


def test_crashed_claims_come_back_at_start(ctx: Context, smtp: SmtpServer) -> None:
    message_id = queue(ctx)
    now = ctx.clock.now()
    assert len(ctx.store.write_sync(rows.claim_due, "dead-worker", now, now + 300, 10)) == 1
    assert run_dispatch(Dispatcher(ctx)) == 0  # held by the dead worker's lease
    assert ctx.store.write_sync(rows.release_claims, now, None, False) == 1
    assert run_dispatch(Dispatcher(ctx)) == 1
    assert ctx.store.read(rows.get, None, message_id)["status"] == "sent"


def test_purge_keeps_recent_and_removes_old_logs(ctx: Context, smtp: SmtpServer) -> None:
    from js2mail.runtime import Runtime

    old = queue(ctx, idempotencyKey="old-key")
    run_dispatch(Dispatcher(ctx))
    ctx.clock.advance(31 * 86400)  # type: ignore[attr-defined]
    fresh = queue(ctx)
    counts = asyncio.run(Runtime(ctx).purge())
    assert counts["messages"] == 1 and counts["idempotency_keys"] == 1
    assert ctx.store.read(rows.get, None, old) is None
    assert ctx.store.read(rows.get, None, fresh) is not None


def test_send_log_keeps_domains_not_addresses(ctx: Context, home: Path) -> None:
    queue(ctx, cc="Carol <carol@Example.NET>")
    run_dispatch(Dispatcher(ctx))
    db = sqlite3.connect(home / "js2mail.db")
    (domains,) = db.execute("SELECT recipient_domains FROM messages").fetchone()
    assert json.loads(domains) == ["example.net", "example.org"]
    dump = "\n".join(db.iterdump())
    assert "bob@example.org" not in dump and "carol@" not in dump.lower()


def test_a_mailbox_whose_secret_cannot_be_opened_fails_its_mail_visibly(ctx: Context) -> None:
    mailboxes.add_smtp(ctx, workspace="acme", address="locked@example.com", host="127.0.0.1", port=9,
                       username="u", password="p", security="none")
    ctx.store.write_sync(lambda c: c.execute(
        "UPDATE mailboxes SET secret = x'01000000010000000000000000000000000000000000000000000000000000'"
        " WHERE address = 'locked@example.com'"))
    message_id = queue(ctx, **{"from": "locked@example.com"})
    assert run_dispatch(Dispatcher(ctx)) == 1
    row = ctx.store.read(rows.get, None, message_id)
    assert row["status"] == "failed" and "mailbox cannot be used" in row["last_error"]


def test_upgrading_drops_claims_earlier_builds_left_unfinished(tmp_path: Path) -> None:
    """Keys are claimed only by their finished record (so the SPEC's 409 for an abandoned claim
    cannot arise); m016 frees keys that development builds left 'processing' and drops the lease."""
    from sqlite_utils import Database

    from js2mail.store import Store
    from js2mail.store.schema import apply_migrations, core

    conn = Store(tmp_path / "old.db").connect()
    core.apply(Database(conn), stop_before="m016_idempotency_claims")
    conn.execute("INSERT INTO workspaces (id, slug, created_at) VALUES ('ws_1', 'acme', 0)")
    conn.execute("INSERT INTO applications (id, workspace_id, slug, created_at) VALUES ('app_1', 'ws_1', 'shop', 0)")
    for key, state in (("held", "processing"), ("kept", "done")):
        conn.execute("INSERT INTO idempotency_keys (workspace_id, application_id, key, fingerprint, state,"
                     " claimed_until, created_at) VALUES ('ws_1', 'app_1', ?, x'00', ?, 99, 0)", (key, state))
    conn.commit()
    assert apply_migrations(conn) == ["js2mail.core:m016_idempotency_claims"]
    assert [r[0] for r in conn.execute("SELECT key FROM idempotency_keys")] == ["kept"]
    assert "claimed_until" not in [c[1] for c in conn.execute("PRAGMA table_info(idempotency_keys)")]
    conn.close()


def test_the_mailbox_cache_is_keyed_by_address_not_display_name(ctx: Context, smtp: SmtpServer) -> None:
    from js2mail.service.catalog import catalog_of

    for i in range(20):
        queue(ctx, **{"from": f"Order {i} <Shop@Example.com>"})
    assert len(catalog_of(ctx).mailboxes) == 1  # not one entry per display name
    assert run_dispatch(Dispatcher(ctx)) == 20
    assert sorted(str(m.message["From"]) for m in smtp.messages)[:2] == ["Order 0 <shop@example.com>",
                                                                         "Order 1 <shop@example.com>"]


def test_a_message_that_cannot_be_built_fails_after_one_attempt(ctx: Context, smtp: SmtpServer) -> None:
    ctx.store.write_sync(lambda c: c.execute(
        "INSERT INTO webhook_endpoints (id, workspace_id, application_id, url, events, secret, created_at)"
        " SELECT 'whk_t', workspace_id, id, 'http://x.invalid', '\"*\"', x'00', 0 FROM applications WHERE slug='shop'"))
    message_id = queue(ctx)
    garbage = ctx.sealer.seal(b"\xc1 not a request", table="message_bodies", column="payload", row_id=message_id)
    ctx.store.write_sync(lambda c: c.execute("UPDATE message_bodies SET payload = ? WHERE message_id = ?",
                                             (garbage, message_id)))
    assert run_dispatch(Dispatcher(ctx)) == 1
    row = ctx.store.read(rows.get, None, message_id)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"].startswith("build_failed: message cannot be built")
    assert events(ctx) == ["mail.queued", "mail.failed"]
    assert smtp.messages == []
