"""Every sealed column in the schema, for `crypto rotate` (re-seal under the newest data key), read
and rewritten a chunk at a time so the rotation never holds the write lock for long."""

from __future__ import annotations

import sqlite3

# (table, id column, sealed column, AAD column name). The AAD names the column the value belongs to
# logically: a webhook's previous secret is sealed as its `secret`, so it can become current.
SEALED_COLUMNS = [
    ("mailboxes", "id", "secret", "secret"),
    ("message_bodies", "message_id", "payload", "payload"),
    ("webhook_endpoints", "id", "secret", "secret"),
    ("webhook_endpoints", "id", "previous_secret", "secret"),
    ("webhook_deliveries", "id", "payload", "payload"),
]


def sealed_chunk(conn: sqlite3.Connection, table: str, id_col: str, col: str, after: int,
                 limit: int) -> list[sqlite3.Row]:
    """Up to `limit` rows of `table` with a value in `col`, by rowid after `after`: (rowid, id, v)."""
    return conn.execute(f"SELECT rowid AS rowid, {id_col} AS id, {col} AS v FROM {table}"
                        f" WHERE rowid > ? AND {col} IS NOT NULL ORDER BY rowid LIMIT ?", (after, limit)).fetchall()


def replace_sealed(conn: sqlite3.Connection, table: str, col: str, updates: list[tuple[bytes, int, bytes]]) -> int:
    """Write (new value, rowid, old value) triples; a row changed meanwhile keeps its newer value."""
    count = 0
    for fresh, rowid, old in updates:
        count += conn.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = ? AND {col} = ?", (fresh, rowid, old)).rowcount
    return count
