"""Operations: key rotation, data export and deletion."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from js2mail import crypto
from js2mail.errors import NotFound, ValidationError
from js2mail.models import camel, iso
from js2mail.service import Context
from js2mail.store import datakeys, sealed, tenancy

CHUNK_ROWS = 1000  # rows per transaction: the API waits for SQLite's write lock at most one chunk
CHUNK_PAUSE_SECONDS = 0.01  # between chunks the lock is free long enough for a waiting server to take it


def _pause() -> None:
    time.sleep(CHUNK_PAUSE_SECONDS)


def rotate_data_key(ctx: Context) -> dict[str, Any]:
    """Add a data key, then re-seal every secret with it, a chunk of rows per transaction (the
    values are decrypted and encrypted between transactions, not while holding the lock)."""
    master = ctx.master_key
    if master is None:
        raise RuntimeError("rotate_data_key needs a context opened with the master key (open_context)")
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


# Every table holding something about a workspace, and how its rows are found. Rows come out whole:
# every column, JSON decoded, times in ISO 8601; sealed values and hashes are described, never opened.
EXPORT_SCOPES = {
    "applications": "workspace_id = ?",
    "api_keys": "workspace_id = ?",
    "mailboxes": "workspace_id = ?",
    "mailbox_usage": "mailbox_id IN (SELECT id FROM mailboxes WHERE workspace_id = ?)",
    "queue_usage": "application_id IN (SELECT id FROM applications WHERE workspace_id = ?)",
    "forms": "workspace_id = ?",
    "webhook_endpoints": "workspace_id = ?",
    "webhook_deliveries": "endpoint_id IN (SELECT id FROM webhook_endpoints WHERE workspace_id = ?)",
    "messages": "workspace_id = ?",
    "message_bodies": "message_id IN (SELECT id FROM messages WHERE workspace_id = ?)",
    "idempotency_keys": "workspace_id = ?",
    "dashboard_links": "workspace_id = ?",  # links and sessions limited to this workspace
    "dashboard_sessions": "workspace_id = ?",
}
JSON_COLUMNS = {"settings", "origins", "events", "recipient_domains", "refused_domains", "metadata"}
HASHED = {("api_keys", "secret_hash"), ("dashboard_links", "token_hash"), ("dashboard_sessions", "token_hash")}
UNSEALED_LEGACY = {("webhook_deliveries", "body")}  # only ever non-empty for a pending pre-m007 delivery


def _described(table: str, column: str, value: bytes) -> dict[str, Any]:
    if (table, column) in HASHED:
        return {"hashed": True, "bytes": len(value)}
    if (table, column) in UNSEALED_LEGACY:
        return {"sealed": False, "bytes": len(value)}
    return {"sealed": True, "keyId": crypto.parse_header(value)[1], "bytes": len(value)}


def _export_value(table: str, column: str, value: Any, sealed_columns: set[tuple[str, str]]) -> Any:
    if value is None:
        return None
    if (table, column) in HASHED:  # api_keys keep raw digests, dashboard tables hex ones
        return {"hashed": True, "bytes": len(value) if isinstance(value, bytes) else len(value) // 2}
    if (table, column) in sealed_columns | UNSEALED_LEGACY:
        return _described(table, column, bytes(value)) if len(value) else None
    if isinstance(value, bytes):
        return value.hex()  # an idempotency record's request fingerprint (SHA-256)
    if column in JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)
    if column.endswith(("_at", "_until")):
        return iso(value)
    return value


def export_workspace(ctx: Context, workspace: str) -> dict[str, Any]:
    """Everything js2mail keeps about a workspace, table by table, without secrets (which are never
    shown again) and without opening any sealed value (message bodies, delivery payloads)."""
    sealed_columns = {(table, column) for table, _, column, _ in sealed.SEALED_COLUMNS}

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        ws = _workspace(conn, workspace)
        out: dict[str, Any] = {"workspace": ws["slug"], "workspaceId": ws["id"], "createdAt": iso(ws["created_at"]),
                               "exportedAt": iso(ctx.clock.now())}
        for table, where in EXPORT_SCOPES.items():
            cursor = conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY rowid", (ws["id"],))
            columns = [d[0] for d in cursor.description]
            out[camel(table)] = [{camel(key): _export_value(table, key, value, sealed_columns)
                                  for key, value in zip(columns, row, strict=True)} for row in cursor.fetchall()]
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
    return {"workspace": workspace, "deleted": {camel(table): n for table, n in counts.items()}}
