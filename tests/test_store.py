from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from js2mail.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "t.db", synchronous="NORMAL")
    s.migrate()
    s.write_sync(lambda c: c.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"))
    yield s
    s.close()


def test_migrations_apply_once_and_use_wal(tmp_path: Path) -> None:
    s = Store(tmp_path / "m.db")
    assert s.migrate()
    assert s.migrate() == []
    assert s.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    s.close()


@pytest.mark.parametrize("position", [0, 25, 50])
def test_a_failing_job_rolls_back_alone(store: Store, position: int) -> None:
    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES ('bad', 1)")
        raise ValueError("boom")

    async def main() -> list[object]:
        jobs = [store.write(lambda c, i=i: c.execute("INSERT INTO t VALUES (?, ?)", (f"k{i}", i)).rowcount)
                for i in range(50)]
        jobs.insert(position, store.write(bad))
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[position], ValueError)
    assert [r for i, r in enumerate(results) if i != position] == [1] * 50  # each good job ran, once
    keys = {r[0] for r in store.read(lambda c: c.execute("SELECT k FROM t").fetchall())}
    assert keys == {f"k{i}" for i in range(50)}


def test_concurrent_threads_never_see_database_locked(store: Store) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(200):
                store.write_sync(lambda c: c.execute("INSERT INTO t VALUES (?, ?)", (f"{n}-{i}", i)))
                store.read(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert store.read(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 1600


def test_another_process_writing_at_the_same_time(store: Store) -> None:
    code = (
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)\n"
        "for i in range(300): c.execute('INSERT INTO t VALUES (?, ?)', ('p'+str(i), i))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(store.path)])
    for i in range(300):
        store.write_sync(lambda c, i=i: c.execute("INSERT INTO t VALUES (?, ?)", (f"s{i}", i)))
    assert proc.wait(60) == 0
    assert store.read(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 600


def test_close_does_not_hang_on_a_batch_whose_loop_stopped_mid_write(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop closed while its batch was committing never runs the callback that frees the write
    lock (in-process ASGI clients do this); closing the store must still finish."""
    import time

    from js2mail.store import db

    monkeypatch.setattr(db, "CLOSE_WAIT_SECONDS", 0.3)
    store = db.Store(tmp_path / "t.db")
    store.write_sync(lambda conn: conn.execute("CREATE TABLE t (x)"))

    async def leave_mid_write() -> None:
        store.write_nowait(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
        await asyncio.sleep(0)  # the flush starts: lock taken, COMMIT handed to the committer thread

    asyncio.run(leave_mid_write())
    assert store._wlock.locked()  # the leaked lock: the old close() waited for it forever
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 5
