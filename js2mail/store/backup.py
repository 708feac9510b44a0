"""Copies of the whole database with SQLite's online backup API: a consistent snapshot even while
`serve` writes (in WAL mode the copy reads one snapshot and never blocks the writer), and the way
back. What a copy holds is read here too, so a restore can check it before it replaces anything."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_TABLE = "_sqlite_migrations"


@dataclass(frozen=True)
class Contents:
    migrations: list[tuple[str, str]]  # (migration set, name), in the order applied
    wrapped_keys: dict[int, bytes]  # data keys, wrapped by the master key the copy was made under
    messages: int


def copy(source: sqlite3.Connection, target_path: Path) -> None:
    """Write a copy of `source` to `target_path`, a new file, as one self-contained database."""
    target = sqlite3.connect(target_path, isolation_level=None)
    try:
        source.backup(target)  # all pages in one step: one read snapshot of the source
        target.execute("PRAGMA journal_mode = DELETE")  # no -wal file beside the copy
    finally:
        target.close()


def read_contents(path: Path) -> Contents:
    """What a database file holds, opened read-only; raises sqlite3.DatabaseError when it is not a
    sound SQLite database and LookupError when it is not a js2mail one."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check reports damage")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {MIGRATIONS_TABLE, "data_keys", "messages"} <= tables:
            raise LookupError("not a js2mail database")
        migrations = [(row[0], row[1]) for row in conn.execute(
            f"SELECT migration_set, name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]
        keys = {int(row[0]): bytes(row[1]) for row in conn.execute("SELECT id, wrapped FROM data_keys")}
        messages = int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        return Contents(migrations, keys, messages)
    finally:
        conn.close()


def replace(target: sqlite3.Connection, source_path: Path) -> None:
    """Overwrite the database behind `target` with the file at `source_path`, through the backup
    API (so the target's WAL and other connections see a consistent switch), then fold the WAL."""
    source = sqlite3.connect(f"{source_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        source.backup(target)
    finally:
        source.close()
    target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
