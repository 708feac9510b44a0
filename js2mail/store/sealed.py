"""Every sealed column in the schema, for `crypto rotate` (re-seal under the newest data key)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# (table, id column, sealed column, AAD column name). The AAD names the column the value belongs to
# logically: a webhook's previous secret is sealed as its `secret`, so it can become current.
SEALED_COLUMNS = [
    ("mailboxes", "id", "secret", "secret"),
    ("message_bodies", "message_id", "payload", "payload"),
    ("webhook_endpoints", "id", "secret", "secret"),
    ("webhook_endpoints", "id", "previous_secret", "secret"),
    ("webhook_deliveries", "id", "payload", "payload"),
]


def reseal_all(conn: sqlite3.Connection, reseal: Callable[[bytes, str, str, str], bytes | None]) -> int:
    """Re-seal every value whose envelope `reseal` returns anew (None: leave it). Returns the count."""
    count = 0
    for table, id_col, col, aad_col in SEALED_COLUMNS:
        for row in conn.execute(f"SELECT {id_col} AS id, {col} AS v FROM {table} WHERE {col} IS NOT NULL").fetchall():
            fresh = reseal(bytes(row["v"]), table, aad_col, row["id"])
            if fresh is not None:
                conn.execute(f"UPDATE {table} SET {col} = ? WHERE {id_col} = ?", (fresh, row["id"]))
                count += 1
    return count
