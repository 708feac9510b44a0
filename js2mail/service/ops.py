"""Operations: key rotation, data export and deletion."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from js2mail import crypto
from js2mail.errors import NotFound, ValidationError
from js2mail.models import iso
from js2mail.service import Context
from js2mail.store import datakeys, sealed, tenancy

CHUNK_ROWS = 1000  # rows per transaction: the API waits for SQLite's write lock at most one chunk
CHUNK_PAUSE_SECONDS = 0.01  # between chunks the lock is free long enough for a waiting server to take it


def _pause() -> None:
    time.sleep(CHUNK_PAUSE_SECONDS)


def rotate_data_key(ctx: Context) -> dict[str, Any]:
    """Add a data key, then re-seal every secret with it, a chunk of rows per transaction (the
    values are decrypted and encrypted between transactions, not while holding the lock)."""
    master: crypto.MasterKey = ctx.extras["master_key"]
    now = ctx.clock.now()

    def add_key(conn: sqlite3.Connection) -> int:
        key_id = datakeys.next_id(conn)
        datakeys.insert(conn, key_id, crypto.wrap_data_key(master.key, key_id, crypto.generate_key()), now)
        return key_id

    key_id = ctx.store.write_sync(add_key)
    keys = {k: crypto.unwrap_data_key(master.key, k, w) for k, w in ctx.store.read(datakeys.all_wrapped).items()}
    sealer = crypto.Sealer(keys)
    count = 0
    for table, id_col, col, aad_col in sealed.SEALED_COLUMNS:
        after = 0
        while rows := ctx.store.read(sealed.sealed_chunk, table, id_col, col, after, CHUNK_ROWS):
            after = rows[-1]["rowid"]
            updates = []
            for row in rows:
                envelope = bytes(row["v"])
                if sealer.key_id_of(envelope) != key_id:
                    plain = sealer.open(envelope, table=table, column=aad_col, row_id=row["id"])
                    updates.append((sealer.seal(plain, table=table, column=aad_col, row_id=row["id"]), row["rowid"], envelope))
            if updates:
                count += ctx.store.write_sync(sealed.replace_sealed, table, col, updates)
                _pause()
    ctx.sealer.refresh()
    return {"activeKeyId": key_id, "resealed": count, "rotatedAt": iso(now)}


def _workspace(conn: sqlite3.Connection, slug: str) -> sqlite3.Row:
    ws = tenancy.workspace_by_slug(conn, slug)
    if ws is None:
        raise NotFound(f"no workspace {slug!r}", code="workspace_not_found")
    return ws


EXPORT_TABLES = {
    "applications": ("SELECT id, slug, default_mailbox_id, created_at FROM applications WHERE workspace_id = ?"),
    "apiKeys": ("SELECT prefix, application_id, name, created_at, last_used_at, revoked_at FROM api_keys"
                " WHERE workspace_id = ?"),
    "mailboxes": ("SELECT id, address, provider, display_name, settings, status, daily_quota, created_at"
                  " FROM mailboxes WHERE workspace_id = ?"),
    "forms": ("SELECT public_id, application_id, name, to_address, redirect_url, origins, status, created_at"
              " FROM forms WHERE workspace_id = ?"),
    "webhooks": ("SELECT id, application_id, url, events, status, created_at FROM webhook_endpoints"
                 " WHERE workspace_id = ?"),
    "messages": ("SELECT id, application_id, source, status, attempts, created_at, sent_at, last_error,"
                 " recipient_domains, metadata FROM messages WHERE workspace_id = ? ORDER BY created_at"),
}


def export_workspace(ctx: Context, workspace: str) -> dict[str, Any]:
    """Everything js2mail keeps about a workspace, without secrets (which are never shown again)."""

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        ws = _workspace(conn, workspace)
        out: dict[str, Any] = {"workspace": ws["slug"], "createdAt": iso(ws["created_at"]), "exportedAt": iso(ctx.clock.now())}
        for name, sql in EXPORT_TABLES.items():
            items = []
            for row in conn.execute(sql, (ws["id"],)).fetchall():
                item = dict(row)
                for key in ("settings", "origins", "events", "recipient_domains", "metadata"):
                    if key in item and isinstance(item[key], str):
                        item[key] = json.loads(item[key])
                for key in [k for k in item if k.endswith("_at")]:
                    item[key] = iso(item[key])
                items.append(item)
            out[name] = items
        return out

    return ctx.store.read(run)


def delete_workspace(ctx: Context, workspace: str, confirm: str | None) -> dict[str, Any]:
    """Delete a workspace and everything in it. Its messages (the bulk) go first, a chunk of rows
    per transaction, so the API keeps writing between chunks; then the rest in one transaction."""
    if confirm != workspace:
        raise ValidationError(f"deleting is permanent: repeat the workspace name with --yes {workspace}",
                              code="confirmation_required")

    def counts_of(conn: sqlite3.Connection) -> tuple[str, list[str], dict[str, int]]:
        ws = _workspace(conn, workspace)
        counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table} WHERE workspace_id = ?", (ws["id"],)).fetchone()[0]
                  for table in ("applications", "api_keys", "mailboxes", "forms", "webhook_endpoints", "messages")}
        apps = [r[0] for r in conn.execute("SELECT id FROM applications WHERE workspace_id = ?", (ws["id"],))]
        return ws["id"], apps, counts

    ws_id, apps, counts = ctx.store.read(counts_of)
    started = ctx.clock.now()  # messages arriving meanwhile go with the workspace, so the loop ends
    for app_id in apps:
        while ids := [r[0] for r in ctx.store.read(lambda conn, a=app_id: conn.execute(
                "SELECT id FROM messages WHERE application_id = ? AND created_at <= ? LIMIT ?",
                (a, started, CHUNK_ROWS)).fetchall())]:
            ctx.store.write_sync(lambda conn, chunk=ids: conn.execute(
                f"DELETE FROM messages WHERE id IN ({','.join('?' * len(chunk))})", chunk))
            _pause()
    while ctx.store.write_sync(lambda conn: conn.execute(
            "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE workspace_id = ?"
            " LIMIT ?)", (ws_id, CHUNK_ROWS)).rowcount):
        _pause()

    def remove(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM idempotency_keys WHERE workspace_id = ?", (ws_id,))
        conn.execute("DELETE FROM workspaces WHERE id = ?", (ws_id,))  # everything else cascades

    ctx.store.write_sync(remove)
    return {"workspace": workspace, "deleted": counts}
