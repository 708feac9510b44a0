"""What dispatching costs in SQLite statements: a backlog on one mailbox reads the mailbox once,
gets each sealed body with its claim, and logs each outcome from what it wrote — no per-message
read of the mailbox, the body or the outcome — while a mailbox changed by another process is
still picked up at the next claim."""

from __future__ import annotations

import asyncio
import json
import logging
import re
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

PER_MAILBOX_READ = re.compile(r"FROM mailboxes WHERE id = ")
BODY_READ = re.compile(r"^SELECT payload FROM message_bodies")
OUTCOME_READ = re.compile(r"FROM messages m LEFT JOIN mailboxes")


@pytest.fixture
def servers() -> Iterator[tuple[SmtpServer, SmtpServer]]:
    with SmtpServer(tls="none") as first, SmtpServer(tls="none") as second:
        yield first, second


@pytest.fixture
def ctx(home: Path, servers: tuple[SmtpServer, SmtpServer]) -> Iterator[Context]:
    context = open_context(load_settings(home), clock=FakeClock(1_800_000_000.0))
    mailboxes.add_smtp(context, workspace="acme", address="shop@example.com", host="127.0.0.1",
                       port=servers[0].port, username=None, password=None, security="none", app="shop")
    yield context
    context.close()


def queue(ctx: Context, n: int) -> list[str]:
    scope = ensure_scope(ctx, "acme", "shop")

    async def run() -> list[str]:
        return [str((await messages.send(ctx, scope, {"to": "bob@example.org", "subject": f"n{i}",
                                                      "text": f"body {i}"})).body["id"]) for i in range(n)]

    return asyncio.run(run())


def traced(ctx: Context) -> list[str]:
    """Every statement this process's reader (this thread) and writer connections run from now on."""
    statements: list[str] = []
    ctx.store.read(lambda c: c.set_trace_callback(statements.append))
    ctx.store.write_sync(lambda c: c.set_trace_callback(statements.append))
    return statements




def test_a_backlog_reads_its_mailbox_once_per_change_and_no_body_or_outcome_per_message(
        ctx: Context, home: Path, servers: tuple[SmtpServer, SmtpServer], caplog: pytest.LogCaptureFixture) -> None:
    first, second = servers
    statements = traced(ctx)
    dispatcher = Dispatcher(ctx)
    sent: list[str] = []

    async def run(n: int) -> int:
        sent.extend(await asyncio.to_thread(queue, ctx, n))
        return await dispatcher.run_once()

    async def scenario() -> None:
        try:
            assert await run(12) == 12
            assert len([s for s in statements if PER_MAILBOX_READ.search(s)]) == 1
            other = open_context(load_settings(home))  # the CLI, say: another connection to the file
            try:
                other.store.write_sync(lambda c: c.execute(
                    "UPDATE mailboxes SET settings = json_set(settings, '$.port', ?)", (second.port,)))
            finally:
                other.close()
            assert await run(3) == 3  # the next claim sees the catalog moved: the row is read again
        finally:
            await dispatcher.providers.close()

    with caplog.at_level(logging.INFO, logger="js2mail.delivery"):
        asyncio.run(scenario())
    assert sorted(m.message["Subject"] for m in first.messages) == sorted(f"n{i}" for i in range(12))
    assert sorted(m.message["Subject"] for m in second.messages) == ["n0", "n1", "n2"]
    assert all(ctx.store.read(rows.get, None, i)["status"] == "sent" for i in sent)
    assert len([s for s in statements if PER_MAILBOX_READ.search(s)]) == 2
    assert [s for s in statements if BODY_READ.search(s)] == []
    assert [s for s in statements if OUTCOME_READ.search(s)] == []
    lines = [r.getMessage() for r in caplog.records if r.name == "js2mail.delivery"]
    assert sorted(re.search(r"message=(\S+)", line).group(1) for line in lines) == sorted(sent)  # type: ignore[union-attr]
    assert all(re.match(r"delivery sent message=\S+ mailbox=mbx_\S+ provider=smtp domains=example.org code=2.0.0 "
                        r"attempt=1 latency_ms=", line) for line in lines), lines


def test_claimed_rows_carry_their_sealed_body_and_a_missing_one_fails_the_message(
        ctx: Context, servers: tuple[SmtpServer, SmtpServer]) -> None:
    kept, gone = queue(ctx, 2)
    sealed = ctx.store.read(lambda c: c.execute("SELECT payload FROM message_bodies WHERE message_id = ?",
                                                (kept,)).fetchone()[0])
    ctx.store.write_sync(lambda c: c.execute("DELETE FROM message_bodies WHERE message_id = ?", (gone,)))
    now = ctx.clock.now()
    claimed = ctx.store.write_sync(rows.claim_due, "w1", now, now + 60, 10, 4, {}, with_body=True)
    assert {row["id"]: row["payload"] for row in claimed} == {kept: sealed, gone: None}
    assert json.loads(claimed[0]["recipient_domains"]) == ["example.org"]
    ctx.store.write_sync(rows.release_claims, now, None, False)
    assert run_dispatch(Dispatcher(ctx)) == 2
    assert ctx.store.read(rows.get, None, kept)["status"] == "sent"
    row = ctx.store.read(rows.get, None, gone)
    assert (row["status"], row["last_error"]) == ("failed", "message body is gone")
    assert [m.message["Subject"] for m in servers[0].messages] == ["n0"]
