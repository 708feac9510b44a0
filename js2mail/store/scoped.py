"""The one query shape the tenancy-scoped listings share: filters by workspace/application slug."""

from __future__ import annotations

import sqlite3
from typing import Any


def scoped_rows(conn: sqlite3.Connection, select_from: str, order_by: str, **filters: str | None) -> list[sqlite3.Row]:
    """`SELECT … FROM …` (joined to `w` workspaces and `a` applications) filtered by the given
    `column=value` pairs (`w.slug`, `a.slug`, `x.application_id`…); None values are ignored."""
    clauses, params = [], []
    for column, value in filters.items():
        if value:
            clauses.append(f"{column.replace('__', '.')} = ?")
            params.append(value)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    rows: list[Any] = conn.execute(f"{select_from}{where} ORDER BY {order_by}", params).fetchall()
    return rows
