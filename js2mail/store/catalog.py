"""The catalog version: one number that moves whenever an API key, an application or a mailbox
is created, changed or deleted (cascades included), kept by triggers (migrations m004, m005)."""

from __future__ import annotations

import sqlite3


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT version FROM catalog_version WHERE id = 1").fetchone()[0])
