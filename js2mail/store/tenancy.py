"""Workspaces and applications."""

from __future__ import annotations

import sqlite3

from js2mail.models import new_id


def ensure_workspace(conn: sqlite3.Connection, slug: str, now: float) -> tuple[str, bool]:
    row = conn.execute("SELECT id FROM workspaces WHERE slug = ?", (slug,)).fetchone()
    if row:
        return row["id"], False
    ws_id = new_id("ws")
    conn.execute("INSERT INTO workspaces (id, slug, created_at) VALUES (?, ?, ?)", (ws_id, slug, now))
    return ws_id, True


def ensure_application(conn: sqlite3.Connection, workspace_id: str, slug: str, now: float) -> tuple[str, bool]:
    row = conn.execute(
        "SELECT id FROM applications WHERE workspace_id = ? AND slug = ?", (workspace_id, slug)
    ).fetchone()
    if row:
        return row["id"], False
    app_id = new_id("app")
    conn.execute(
        "INSERT INTO applications (id, workspace_id, slug, created_at) VALUES (?, ?, ?, ?)",
        (app_id, workspace_id, slug, now),
    )
    return app_id, True


def workspace_by_slug(conn: sqlite3.Connection, slug: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM workspaces WHERE slug = ?", (slug,)).fetchone()
    return row


def application(conn: sqlite3.Connection, workspace_id: str, slug: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM applications WHERE workspace_id = ? AND slug = ?", (workspace_id, slug)
    ).fetchone()
    return row


def applications_by_slug(conn: sqlite3.Connection, slug: str) -> list[sqlite3.Row]:
    """Every application with this slug, across workspaces."""
    return conn.execute("SELECT * FROM applications WHERE slug = ? ORDER BY workspace_id", (slug,)).fetchall()


def application_by_id(conn: sqlite3.Connection, app_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT a.*, w.slug AS workspace_slug FROM applications a JOIN workspaces w ON w.id = a.workspace_id"
        " WHERE a.id = ?",
        (app_id,),
    ).fetchone()
    return row


def set_default_mailbox(conn: sqlite3.Connection, app_id: str, mailbox_id: str | None) -> None:
    conn.execute("UPDATE applications SET default_mailbox_id = ? WHERE id = ?", (mailbox_id, app_id))
