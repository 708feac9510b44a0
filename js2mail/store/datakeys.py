"""Wrapped data keys (the master key wraps them; it is never stored here)."""

from __future__ import annotations

import sqlite3


def all_wrapped(conn: sqlite3.Connection) -> dict[int, bytes]:
    return {row["id"]: row["wrapped"] for row in conn.execute("SELECT id, wrapped FROM data_keys")}


def next_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM data_keys").fetchone()[0])


def insert(conn: sqlite3.Connection, key_id: int, wrapped: bytes, now: float) -> None:
    conn.execute("INSERT INTO data_keys (id, wrapped, created_at) VALUES (?, ?, ?)", (key_id, wrapped, now))


def newest_created_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MAX(created_at) FROM data_keys").fetchone()
    return None if row[0] is None else float(row[0])
