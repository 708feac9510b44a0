"""API key rows: looked up by their plain prefix (unique index), secrets kept only as SHA-256."""

from __future__ import annotations

import sqlite3

from js2mail.store.scoped import scoped_rows

KEY_COLUMNS = """k.id, k.prefix, k.secret_hash, k.name, k.created_at, k.last_used_at, k.revoked_at,
    k.replaced_by, k.workspace_id, k.application_id, w.slug AS workspace, a.slug AS application"""
KEY_FROM = """api_keys k JOIN workspaces w ON w.id = k.workspace_id
    JOIN applications a ON a.id = k.application_id"""


def insert(
    conn: sqlite3.Connection,
    *,
    key_id: str,
    prefix: str,
    secret_hash: bytes,
    workspace_id: str,
    application_id: str,
    name: str | None,
    now: float,
) -> None:
    conn.execute(
        "INSERT INTO api_keys (id, prefix, secret_hash, workspace_id, application_id, name, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key_id, prefix, secret_hash, workspace_id, application_id, name, now),
    )


def by_prefix(conn: sqlite3.Connection, prefix: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.prefix = ?", (prefix,)
    ).fetchone()
    return row


def all_keys(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    """Every key row (revoked ones too: a grace period may still be running), at most `limit`."""
    return conn.execute(f"SELECT {KEY_COLUMNS} FROM {KEY_FROM} LIMIT ?", (limit,)).fetchall()


def listing(conn: sqlite3.Connection, workspace: str | None, application: str | None) -> list[sqlite3.Row]:
    return scoped_rows(conn, f"SELECT {KEY_COLUMNS} FROM {KEY_FROM}", "k.created_at, k.prefix",
                       w__slug=workspace, a__slug=application)


def revoke(conn: sqlite3.Connection, prefix: str, at: float, replaced_by: str | None = None) -> int:
    """Revoke at `at` (in the future for a rotation grace period); never un-revokes or delays."""
    return conn.execute(
        "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, ?), ?), replaced_by = COALESCE(?, replaced_by)"
        " WHERE prefix = ?",
        (at, at, replaced_by, prefix),
    ).rowcount


def touch(conn: sqlite3.Connection, key_id: str, now: float) -> None:
    conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key_id))
