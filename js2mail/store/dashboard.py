"""Dashboard sign-in links and sessions (hashed tokens only), and the overview's chart query."""

from __future__ import annotations

import sqlite3

_SESSION = ("SELECT s.*, w.slug AS workspace FROM dashboard_sessions s"
            " LEFT JOIN workspaces w ON w.id = s.workspace_id")


def insert_link(conn: sqlite3.Connection, token_hash: str, workspace_id: str | None, now: float,
                expires_at: float) -> None:
    conn.execute("INSERT INTO dashboard_links (token_hash, workspace_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                 (token_hash, workspace_id, now, expires_at))


def live_link(conn: sqlite3.Connection, token_hash: str, now: float) -> bool:
    return conn.execute("SELECT 1 FROM dashboard_links WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                        (token_hash, now)).fetchone() is not None


def use_link(conn: sqlite3.Connection, token_hash: str, now: float) -> sqlite3.Row | None:
    """Mark an unused, unexpired link used and return it; None for any other link."""
    row: sqlite3.Row | None = conn.execute(
        "UPDATE dashboard_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?"
        " RETURNING workspace_id", (now, token_hash, now)).fetchone()
    conn.execute("DELETE FROM dashboard_links WHERE expires_at <= ?", (now,))
    return row


def insert_session(conn: sqlite3.Connection, session_id: str, token_hash: str, workspace_id: str | None,
                   now: float, expires_at: float) -> None:
    conn.execute("DELETE FROM dashboard_sessions WHERE expires_at <= ? OR revoked_at IS NOT NULL", (now,))
    conn.execute("INSERT INTO dashboard_sessions (id, token_hash, workspace_id, created_at, expires_at)"
                 " VALUES (?, ?, ?, ?, ?)", (session_id, token_hash, workspace_id, now, expires_at))


def live_session(conn: sqlite3.Connection, token_hash: str, now: float) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        _SESSION + " WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?", (token_hash, now)
    ).fetchone()
    return row


def sessions(conn: sqlite3.Connection, now: float) -> list[sqlite3.Row]:
    return conn.execute(_SESSION + " WHERE s.revoked_at IS NULL AND s.expires_at > ? ORDER BY s.created_at",
                        (now,)).fetchall()


def revoke_session(conn: sqlite3.Connection, session_id: str, now: float) -> int:
    return conn.execute("UPDATE dashboard_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                        (now, session_id)).rowcount


def touch_session(conn: sqlite3.Connection, session_id: str, now: float) -> None:
    conn.execute("UPDATE dashboard_sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))


def sends_by_hour(conn: sqlite3.Connection, workspace_id: str | None, since: float) -> list[sqlite3.Row]:
    """(hour index since `since`, status, count) for messages created since `since`."""
    sql = ("SELECT CAST((created_at - ?) / 3600 AS INTEGER) AS hour, status, COUNT(*) AS n FROM messages"
           " WHERE created_at >= ?")
    params: list[object] = [since, since]
    if workspace_id is not None:
        sql += " AND workspace_id = ?"
        params.append(workspace_id)
    return conn.execute(sql + " GROUP BY hour, status", params).fetchall()


def status_counts(conn: sqlite3.Connection, workspace_id: str | None) -> dict[str, int]:
    sql = "SELECT status, COUNT(*) AS n FROM messages"
    params: list[object] = []
    if workspace_id is not None:
        sql += " WHERE workspace_id = ?"
        params.append(workspace_id)
    return {r["status"]: r["n"] for r in conn.execute(sql + " GROUP BY status", params).fetchall()}


def sent_since(conn: sqlite3.Connection, since: float) -> dict[str, int]:
    """Messages sent since `since`, per mailbox (quota use is counted only for mailboxes with a quota)."""
    return {r["mailbox_id"]: r["n"] for r in conn.execute(
        "SELECT mailbox_id, COUNT(*) AS n FROM messages WHERE status = 'sent' AND sent_at >= ? GROUP BY mailbox_id",
        (since,)).fetchall()}


def workspaces(conn: sqlite3.Connection, workspace_id: str | None) -> list[sqlite3.Row]:
    if workspace_id is None:
        return conn.execute("SELECT * FROM workspaces ORDER BY slug").fetchall()
    return conn.execute("SELECT * FROM workspaces WHERE id = ?", (workspace_id,)).fetchall()


def applications(conn: sqlite3.Connection, workspace_id: str | None) -> list[sqlite3.Row]:
    sql = "SELECT a.*, w.slug AS workspace FROM applications a JOIN workspaces w ON w.id = a.workspace_id"
    if workspace_id is None:
        return conn.execute(sql + " ORDER BY w.slug, a.slug").fetchall()
    return conn.execute(sql + " WHERE a.workspace_id = ? ORDER BY a.slug", (workspace_id,)).fetchall()


def messages(conn: sqlite3.Connection, *, workspace_id: str | None, app_id: str | None, status: str | None,
             domain: str | None, since: float | None, limit: int) -> list[sqlite3.Row]:
    """Newest first, filtered by application, status, a recipient domain and a start time."""
    sql = ("SELECT m.*, a.slug AS application, w.slug AS workspace FROM messages m"
           " JOIN applications a ON a.id = m.application_id JOIN workspaces w ON w.id = m.workspace_id WHERE 1=1")
    params: list[object] = []
    for clause, value in (("m.workspace_id = ?", workspace_id), ("m.application_id = ?", app_id),
                          ("m.status = ?", status), ("m.created_at >= ?", since)):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    if domain:
        sql += " AND EXISTS (SELECT 1 FROM json_each(m.recipient_domains) WHERE value = ?)"
        params.append(domain)
    sql += " ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
    params.append(limit)
    return conn.execute(sql, params).fetchall()


def message(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
    return row
