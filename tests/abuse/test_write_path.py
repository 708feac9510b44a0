"""The single write path under a busy database: the event loop keeps running while another
process holds SQLite's write lock, no failure leaks the lock, and lost background writes are logged."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from js2mail.errors import ServiceUnavailable
from js2mail.store.db import Store


def _store(tmp_path: Path, busy_ms: int = 400) -> Store:
    store = Store(tmp_path / "t.db", busy_timeout_ms=busy_ms)
    store.write_sync(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
    return store


def test_the_loop_keeps_running_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    store = _store(tmp_path)
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def scenario() -> tuple[BaseException | None, float]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        try:
            await store.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))
            error: BaseException | None = None
        except ServiceUnavailable as exc:
            error = exc
        task.cancel()
        return error, max(b - a for a, b in zip(ticks, ticks[1:], strict=False))

    error, longest_tick = asyncio.run(scenario())
    assert isinstance(error, ServiceUnavailable) and error.code == "database_busy" and error.retry_after >= 1
    assert longest_tick < 0.1  # the loop was never frozen for the 400 ms busy wait
    other.execute("ROLLBACK")
    other.close()
    asyncio.run(store.write(lambda c: c.execute("INSERT INTO t VALUES (2)")))  # and the lock is not leaked
    assert [r[0] for r in store.read(lambda c: c.execute("SELECT v FROM t").fetchall())] == [2]
    store.close()


def test_a_job_raising_anything_releases_the_write_lock(tmp_path: Path) -> None:
    store = _store(tmp_path)

    def cancelled(conn: sqlite3.Connection) -> None:
        raise asyncio.CancelledError  # a BaseException, not an Exception

    async def scenario() -> None:
        with pytest.raises(asyncio.CancelledError):  # answered, not left waiting forever
            await asyncio.wait_for(store.write(cancelled), 5)

    asyncio.run(scenario())
    assert store._wlock.acquire(timeout=1.0)  # not leaked
    store._wlock.release()
    store.write_sync(lambda c: c.execute("INSERT INTO t VALUES (3)"))
    store.close()


def test_a_lost_background_write_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(tmp_path)

    async def scenario() -> None:
        store.write_nowait(lambda c: c.execute("INSERT INTO missing_table VALUES (1)"))
        await store.write(lambda c: c.execute("INSERT INTO t VALUES (4)"))

    with caplog.at_level(logging.WARNING, logger="js2mail.store"):
        asyncio.run(scenario())
    assert any("background write" in r.getMessage() and "missing_table" in r.getMessage() for r in caplog.records)
    store.close()
