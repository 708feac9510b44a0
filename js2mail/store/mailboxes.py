"""Connected mailboxes. `secret` is a sealed envelope (SMTP password, refresh token, token cache)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def insert(
    conn: sqlite3.Connection,
    *,
    mailbox_id: str,
    workspace_id: str,
    address: str,
    provider: str,
    display_name: str | None,
    settings: dict[str, Any],
    secret: bytes | None,
    daily_quota: int | None,
    now: float,
) -> None:
    conn.execute(
        "INSERT INTO mailboxes (id, workspace_id, address, provider, display_name, settings, secret, daily_quota,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (mailbox_id, workspace_id, address, provider, display_name, json.dumps(settings), secret, daily_quota, now),
    )


def by_address(conn: sqlite3.Connection, workspace_id: str, address: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM mailboxes WHERE workspace_id = ? AND lower(address) = lower(?)", (workspace_id, address)
    ).fetchone()
    return row


def everywhere(conn: sqlite3.Connection, address: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM mailboxes WHERE lower(address) = lower(?)", (address,)).fetchall()


def by_id(conn: sqlite3.Connection, mailbox_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
    return row


def default_for(conn: sqlite3.Connection, app_id: str) -> sqlite3.Row | None:
    """The application's default mailbox, if it has one."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT m.* FROM applications a JOIN mailboxes m ON m.id = a.default_mailbox_id WHERE a.id = ?", (app_id,)
    ).fetchone()
    return row


def listing(conn: sqlite3.Connection, workspace: str | None) -> list[sqlite3.Row]:
    sql = "SELECT m.*, w.slug AS workspace FROM mailboxes m JOIN workspaces w ON w.id = m.workspace_id"
    params: list[str] = []
    if workspace:
        sql += " WHERE w.slug = ?"
        params.append(workspace)
    return conn.execute(sql + " ORDER BY w.slug, m.address", params).fetchall()


def in_workspace(conn: sqlite3.Connection, workspace_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM mailboxes WHERE workspace_id = ? ORDER BY created_at", (workspace_id,)).fetchall()


def delete(conn: sqlite3.Connection, mailbox_id: str) -> None:
    conn.execute("UPDATE applications SET default_mailbox_id = NULL WHERE default_mailbox_id = ?", (mailbox_id,))
    conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))


def set_secret(conn: sqlite3.Connection, mailbox_id: str, secret: bytes) -> None:
    conn.execute("UPDATE mailboxes SET secret = ? WHERE id = ?", (secret, mailbox_id))


def set_status(conn: sqlite3.Connection, mailbox_id: str, status: str, detail: str | None) -> None:
    conn.execute("UPDATE mailboxes SET status = ?, status_detail = ? WHERE id = ?", (status, detail, mailbox_id))
