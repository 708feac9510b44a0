"""Contact-form endpoints."""

from __future__ import annotations

import json
import sqlite3

from js2mail.store.scoped import scoped_rows

FORM_COLUMNS = "f.*, w.slug AS workspace, a.slug AS application, m.address AS mailbox_address"
FORM_FROM = ("forms f JOIN workspaces w ON w.id = f.workspace_id JOIN applications a ON a.id = f.application_id"
             " LEFT JOIN mailboxes m ON m.id = f.mailbox_id")


def insert(conn: sqlite3.Connection, *, form_id: str, public_id: str, workspace_id: str, app_id: str,
           mailbox_id: str | None, name: str, to_address: str, redirect_url: str | None, origins: list[str],
           now: float) -> None:
    conn.execute(
        "INSERT INTO forms (id, public_id, workspace_id, application_id, mailbox_id, name, to_address, redirect_url,"
        " origins, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (form_id, public_id, workspace_id, app_id, mailbox_id, name, to_address, redirect_url, json.dumps(origins),
         now),
    )


def by_public_id(conn: sqlite3.Connection, public_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {FORM_COLUMNS} FROM {FORM_FROM} WHERE f.public_id = ?", (public_id,)).fetchone()
    return row


def listing(conn: sqlite3.Connection, *, app_id: str | None = None, workspace: str | None = None,
            application: str | None = None) -> list[sqlite3.Row]:
    return scoped_rows(conn, f"SELECT {FORM_COLUMNS} FROM {FORM_FROM}", "f.created_at",
                       f__application_id=app_id, w__slug=workspace, a__slug=application)


def delete(conn: sqlite3.Connection, public_id: str, app_id: str | None) -> int:
    if app_id is None:
        return conn.execute("DELETE FROM forms WHERE public_id = ?", (public_id,)).rowcount
    return conn.execute("DELETE FROM forms WHERE public_id = ? AND application_id = ?", (public_id, app_id)).rowcount
