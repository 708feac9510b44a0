"""`js2mail backup` and `js2mail restore`: the database only — never the master key, which must be
kept apart (a backup is useless without it, and a thief with both has everything).

`serve` holds a shared lock on `<database>.lock` while it runs; `restore` takes it exclusively,
so it refuses while a serve uses the database, and a serve cannot start in the middle of a restore."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from js2mail import crypto
from js2mail.config import Settings
from js2mail.errors import ConfigError, CryptoError, ValidationError
from js2mail.store import Store
from js2mail.store import backup as copies
from js2mail.store.schema import MIGRATION_SETS


def lock_path(settings: Settings) -> Path:
    return settings.db_path.with_name(settings.db_path.name + ".lock")


def _lock(settings: Settings, mode: int, busy: str) -> IO[bytes]:
    path = lock_path(settings)
    handle = path.open("ab")
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(busy, code="database_busy") from None
    return handle


def serve_lock(settings: Settings) -> IO[bytes]:
    """Held (shared) for as long as `serve` runs; the lock goes with the process, however it ends."""
    return _lock(settings, fcntl.LOCK_SH, "a `js2mail restore` is replacing this database; start serve after it")


@contextlib.contextmanager
def _exclusive(settings: Settings) -> Iterator[None]:
    handle = _lock(settings, fcntl.LOCK_EX, f"a `js2mail serve` is running on {settings.db_path}; stop it first "
                                            "(e.g. systemctl stop js2mail), then restore")
    try:
        yield
    finally:
        handle.close()


def _store(settings: Settings) -> Store:
    if not settings.db_path.exists():
        raise ConfigError(f"no database at {settings.db_path}", code="not_initialized",
                          hint="run `js2mail init` first (or set JS2MAIL_HOME / --home)")
    return Store(settings.db_path, synchronous=settings.database.synchronous,
                 busy_timeout_ms=settings.database.busy_timeout_ms)


def backup(settings: Settings, target: Path, *, force: bool = False) -> dict[str, Any]:
    """A consistent copy of the database at `target` (mode 0600), safe while serve runs."""
    target = target.expanduser()
    if target.exists() and not force:
        raise ValidationError(f"{target} exists; choose a new file (or --force to overwrite it)", code="backup_exists")
    if target.resolve() == settings.db_path.resolve():
        raise ValidationError("the backup cannot be the live database itself", code="backup_is_database")
    if not target.parent.is_dir():
        raise ValidationError(f"folder {target.parent} does not exist", code="backup_folder_missing")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private from the first byte
    os.close(fd)
    store = _store(settings)
    started = time.monotonic()
    try:
        conn = store.connect()
        try:
            copies.copy(conn, partial)
        finally:
            conn.close()
        contents = copies.read_contents(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        store.close()
    return {"backup": str(target), "database": str(settings.db_path), "bytes": target.stat().st_size,
            "messages": contents.messages, "seconds": round(time.monotonic() - started, 3),
            "note": "the master key is not in the backup: keep it apart, you need it to restore"}


def check(settings: Settings, source: Path) -> copies.Contents:
    """Refuse a file that is not a js2mail database, comes from a newer js2mail, or whose data keys
    the master key in use here cannot open."""
    if not source.is_file():
        raise ValidationError(f"no file at {source}", code="backup_missing")
    try:
        contents = copies.read_contents(source)
    except (sqlite3.DatabaseError, LookupError) as exc:
        raise ValidationError(f"{source} is not a js2mail database ({exc})", code="backup_invalid") from None
    known = {(m.name, step.name) for m in MIGRATION_SETS for step in m._migrations}  # sqlite-utils lists no other way
    unknown = [f"{s}:{n}" for s, n in contents.migrations if s.startswith("js2mail.") and (s, n) not in known]
    if unknown:
        raise ValidationError(f"{source} comes from a newer js2mail (migrations {', '.join(unknown)}); upgrade first",
                              code="backup_too_new")
    if not contents.wrapped_keys:
        raise ValidationError(f"{source} holds no data keys: not a js2mail database", code="backup_invalid")
    master = crypto.load_master_key(settings.home)
    try:
        for key_id, wrapped in contents.wrapped_keys.items():
            crypto.unwrap_data_key(master.key, key_id, wrapped)
    except CryptoError as exc:
        raise CryptoError(f"the master key in use here ({master.source}) does not fit {source}",
                          code="master_key_mismatch",
                          hint="put back the master key that was in use when the backup was taken") from exc
    return contents


def restore(settings: Settings, source: Path) -> dict[str, Any]:
    """Replace the database with the backup at `source`, after saving the current one beside it."""
    source = source.expanduser()
    contents = check(settings, source)
    with _exclusive(settings):
        store = _store(settings)
        try:
            conn = store.connect()
            try:
                saved = settings.db_path.with_name(f"{settings.db_path.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}")
                fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
                copies.copy(conn, saved)
                copies.replace(conn, source)
            finally:
                conn.close()
            migrated = store.migrate()  # a backup from an older js2mail comes up to date
        finally:
            store.close()
    return {"restored": str(source), "database": str(settings.db_path), "messages": contents.messages,
            "previous": str(saved), "migrated": migrated}
