"""SQLite connections and the single write path.

One write connection per process. In `serve`, writes are *group-committed*: the statements of
every `await store.write(fn)` waiting at a flush run on the event loop in one transaction, then
only the COMMIT — the fsync, which releases the GIL — runs on a committer thread. Writes arriving
meanwhile queue for the next batch, so one fsync covers many requests, and no writer thread
fights the loop for the GIL on a small machine. The jobs of a batch run together; only when one
raises is the batch rolled back and replayed with a SAVEPOINT per job, so a failing job rolls
back alone. Synchronous callers (the CLI, handlers running in a worker thread) take the same
connection under a lock with a transaction of their own, so HTTP handlers and the scheduler
never race for SQLite's lock.

The event loop never waits for SQLite's lock: the write connection's busy timeout is 0, so when
another process holds the write lock, BEGIN is retried on the committer thread for up to the
configured busy timeout, and a lock still held after it is `database_busy` (HTTP 503).

WAL checkpoints are SQLite's own automatic ones (every 1,000 pages), which run inside COMMIT —
on the committer thread, never on the loop — while no other write of this process can begin,
so each one backfills the whole log and the next transaction rewinds the WAL to its start
instead of growing the file (appending to an ever-growing file cost a third of the CPU: the
kernel zeroes every new block). Reads use a per-thread connection in autocommit mode: cheap
indexed lookups only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from js2mail.errors import ServiceUnavailable, database_busy, is_database_busy

T = TypeVar("T")
log = logging.getLogger("js2mail.store")
LOCK_RETRY_SECONDS = 0.005
CLOSE_WAIT_SECONDS = 5.0
BUSY_POLL_SECONDS = 0.002


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any] | None


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
        self._wconn: sqlite3.Connection | None = None
        self._wlock = threading.Lock()
        self._pending: dict[int, list[_Job]] = {}  # per event loop
        self._committing: set[int] = set()
        self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="js2mail-commit")
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
        conn.execute("PRAGMA temp_store = MEMORY")  # savepoint journals: a temp file halved insert speed
        conn.execute("PRAGMA wal_autocheckpoint = 1000")  # in COMMIT: on the committer thread for the loop's writes
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

    def _writer(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("store is closed")
        if self._wconn is None:
            conn = self.connect()
            conn.execute("PRAGMA busy_timeout = 0")  # waits for other processes happen in _begin, off the loop
            self._wconn = conn
        return self._wconn

    # public API --------------------------------------------------------------------------
    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._reader(), *args, **kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` in the transaction shared by this loop iteration's writes."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(loop, _Job(fn, args, kwargs, future))
        return await future

    def write_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` in a transaction of its own (CLI, worker threads)."""
        with self._wlock:
            conn = self._writer()
            self._begin(conn, wait=True)
            try:
                result = fn(conn, *args, **kwargs)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            try:
                self._commit(conn)
            except sqlite3.OperationalError as exc:
                if is_database_busy(exc):
                    raise database_busy(exc) from exc
                raise
        return result

    def write_nowait(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A write nobody waits for (bookkeeping such as last-used times)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write_sync(fn, *args, **kwargs)
            return
        self._enqueue(loop, _Job(fn, args, kwargs, None))

    def close(self) -> None:
        self._closed = True
        self._committer.shutdown(wait=True)  # every COMMIT handed over has finished
        # A batch whose event loop stopped before its commit callback ran (a loop closed mid-write)
        # still holds the lock; nothing can use it any more, so closing must not wait for it forever.
        locked = self._wlock.acquire(timeout=CLOSE_WAIT_SECONDS)
        if not locked:
            log.warning("closing the database while a write batch of a stopped event loop holds the write lock")
        try:
            if self._wconn is not None:
                with contextlib.suppress(sqlite3.Error):
                    if self._wconn.in_transaction:
                        self._wconn.execute("ROLLBACK")
                    self._wconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._wconn.close()
                self._wconn = None
        finally:
            if locked:
                self._wlock.release()
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.ProgrammingError):  # closed from another thread already
                    conn.close()
            self._readers.clear()
        self._local = threading.local()

    # group commit on the loop -----------------------------------------------------------
    def _enqueue(self, loop: asyncio.AbstractEventLoop, job: _Job) -> None:
        key = id(loop)
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = [job]
            if key not in self._committing:
                loop.call_soon(self._flush, loop)
        else:
            pending.append(job)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the next batch: take the write lock, BEGIN, run the jobs, hand COMMIT to the
        committer thread. From here until `_finish` the batch owns `_wlock`; every path ends in
        exactly one `_finish`, which releases it."""
        key = id(loop)
        if key in self._committing or not self._pending.get(key):
            return
        if not self._wlock.acquire(blocking=False):  # a worker thread's write_sync has the connection
            loop.call_later(LOCK_RETRY_SECONDS, self._flush, loop)
            return
        batch = self._pending.pop(key)
        self._committing.add(key)
        try:
            conn = self._writer()
            try:
                self._begin(conn, wait=False)
            except ServiceUnavailable:  # another process holds SQLite's write lock: wait off the loop
                waited = loop.run_in_executor(self._committer, self._begin, conn, True)
                waited.add_done_callback(lambda f: self._began(loop, f, conn, batch))
                return
            self._run_and_commit(loop, conn, batch)
        except BaseException as exc:
            self._finish(loop, [(job, None, exc) for job in batch])
            if not isinstance(exc, Exception):
                raise

    def _begin(self, conn: sqlite3.Connection, wait: bool) -> None:
        """BEGIN IMMEDIATE. The write connection never waits for another process's lock unless
        `wait` (the committer thread, the CLI, worker threads): then it retries every couple of
        milliseconds for up to busy_timeout_ms — SQLite's own busy handler backs off to 100 ms
        sleeps and loses every race against a process writing in chunks. A lock still held
        after that is `database_busy` (503), not an internal error."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_database_busy(exc):
                    raise
                if not wait or time.monotonic() >= deadline:
                    raise database_busy() from exc
            time.sleep(BUSY_POLL_SECONDS)

    def _began(self, loop: asyncio.AbstractEventLoop, waited: asyncio.Future[None], conn: sqlite3.Connection,
               batch: list[_Job]) -> None:
        error = waited.exception()
        if error is not None:
            self._finish(loop, [(job, None, error) for job in batch])
            return
        try:
            self._run_and_commit(loop, conn, batch)
        except BaseException as exc:
            self._finish(loop, [(job, None, exc) for job in batch])
            if not isinstance(exc, Exception):
                raise

    def _run_and_commit(self, loop: asyncio.AbstractEventLoop, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        try:
            outcomes = self._run(conn, batch)
        except BaseException:  # nothing of this batch stands
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        done = loop.run_in_executor(self._committer, self._commit, conn)
        done.add_done_callback(lambda f: self._committed(loop, f, outcomes))

    def _run(self, conn: sqlite3.Connection, batch: list[_Job]) -> list[tuple[_Job, Any, BaseException | None]]:
        """Run the batch's jobs in the open transaction. Optimistically all together; if one
        raises, undo the whole batch and run each job again inside a SAVEPOINT of its own, so
        the failing job rolls back alone (jobs are plain statements, safe to run again)."""
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            for job in batch:
                outcomes.append((job, job.fn(conn, *job.args, **job.kwargs), None))
            return outcomes
        except Exception:  # noqa: BLE001 - rerun below, each job isolated
            conn.execute("ROLLBACK")
            self._begin(conn, wait=False)
        outcomes.clear()
        for job in batch:
            conn.execute("SAVEPOINT job")
            try:
                result = job.fn(conn, *job.args, **job.kwargs)
            except Exception as exc:  # noqa: BLE001 - handed to the caller through its future
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((job, None, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((job, result, None))
        return outcomes

    @staticmethod
    def _commit(conn: sqlite3.Connection) -> None:
        """On the committer thread: the fsync happens here, with the GIL released."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _committed(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None],
                   outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        error = done.exception()
        self._finish(loop, outcomes if error is None else [(job, None, error) for job, _, _ in outcomes])

    def _finish(self, loop: asyncio.AbstractEventLoop, outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        """The batch is over (committed or not): release the write lock, answer, start the next."""
        self._committing.discard(id(loop))
        self._wlock.release()
        self._settle(outcomes)
        if self._pending.get(id(loop)):
            self._flush(loop)

    @staticmethod
    def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        for job, result, error in outcomes:
            if error is not None and is_database_busy(error):
                error = database_busy(error)
            if job.future is None:
                if error is not None:
                    log.warning("background write %s failed: %s", getattr(job.fn, "__qualname__", job.fn), error)
                continue
            if job.future.done():
                continue
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
