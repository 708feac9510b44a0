"""SQLite connections and the single write path.

Every write runs on one writer thread. Concurrent jobs (HTTP requests, the dispatcher, the webhook
worker) are grouped into one transaction — *group commit* — each job inside its own SAVEPOINT so a
failing job rolls back alone. One fsync then covers the whole group, nobody ever sees "database is
locked" from a sibling, and WAL checkpoints run on the writer thread instead of stalling the event
loop. Reads use a per-thread connection in autocommit mode: cheap indexed lookups only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MAX_BATCH = 512
CHECKPOINT_EVERY = 1.0  # seconds between passive WAL checkpoints on the writer


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: concurrent.futures.Future[Any]


class Store:
    def __init__(self, path: Path, *, synchronous: str = "FULL", busy_timeout_ms: int = 5000) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("database.synchronous must be FULL, NORMAL or EXTRA")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    # connections -------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer checkpoints, see _maybe_checkpoint
        conn.execute("PRAGMA journal_size_limit = 67108864")
        return conn

    def migrate(self) -> list[str]:
        from js2mail.store.schema import apply_migrations

        conn = self.connect()
        try:
            return apply_migrations(conn)
        finally:
            conn.close()

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # public API --------------------------------------------------------------------------
    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._reader(), *args, **kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.wrap_future(self._submit(fn, args, kwargs))

    def write_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._submit(fn, args, kwargs).result()

    def write_nowait(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Queue a write nobody waits for (bookkeeping such as last-used times)."""
        return self._submit(fn, args, kwargs)

    def close(self) -> None:
        with self._start_lock:
            self._closed = True
            thread = self._thread
            self._thread = None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.ProgrammingError):  # closed from another thread already
                    conn.close()
            self._readers.clear()
        self._local = threading.local()

    # the writer --------------------------------------------------------------------------
    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._start_lock:
            if self._closed:
                raise RuntimeError("store is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="js2mail-writer", daemon=True)
                self._thread.start()
        self._queue.put(_Job(fn, args, kwargs, future))
        return future

    def _run(self) -> None:
        conn = self.connect()
        last_checkpoint = time.monotonic()
        stop = False
        try:
            while not stop:
                job = self._queue.get()
                if job is None:
                    break
                batch = [job]
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                self._run_batch(conn, batch)
                now = time.monotonic()
                if now - last_checkpoint >= CHECKPOINT_EVERY or (stop or self._queue.empty()) and now - last_checkpoint > 0.2:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    last_checkpoint = now
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in live:
                job.future.set_exception(exc)
            return
        for job in live:
            conn.execute("SAVEPOINT job")
            try:
                result = job.fn(conn, *job.args, **job.kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through its future
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((job, None, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((job, result, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in live:
                job.future.set_exception(exc)
            return
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
