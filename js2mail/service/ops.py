"""Operations: key rotation, data export and deletion."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from js2mail import crypto
from js2mail.errors import NotFound, ValidationError
from js2mail.models import iso
from js2mail.service import Context
from js2mail.store import datakeys, sealed, tenancy


def rotate_data_key(ctx: Context) -> dict[str, Any]:
    """Add a data key and re-seal every secret with it, in one transaction."""
    master: crypto.MasterKey = ctx.extras["master_key"]
    now = ctx.clock.now()

    def run(conn: sqlite3.Connection) -> tuple[int, int]:
        key_id = datakeys.next_id(conn)
        data_key = crypto.generate_key()
        datakeys.insert(conn, key_id, crypto.wrap_data_key(master.key, key_id, data_key), now)
        keys = {k: crypto.unwrap_data_key(master.key, k, w) for k, w in datakeys.all_wrapped(conn).items()}
        sealer = crypto.Sealer(keys)

        def reseal(envelope: bytes, table: str, column: str, row_id: str) -> bytes | None:
            if sealer.key_id_of(envelope) == key_id:
                return None
            plain = sealer.open(envelope, table=table, column=column, row_id=row_id)
            return sealer.seal(plain, table=table, column=column, row_id=row_id)

        return key_id, sealed.reseal_all(conn, reseal)

    key_id, count = ctx.store.write_sync(run)
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
    "forms": "workspace_id = ?",
    "webhook_endpoints": "workspace_id = ?",
    "webhook_deliveries": "endpoint_id IN (SELECT id FROM webhook_endpoints WHERE workspace_id = ?)",
    "messages": "workspace_id = ?",
    "message_bodies": "message_id IN (SELECT id FROM messages WHERE workspace_id = ?)",
    "idempotency_keys": "workspace_id = ?",
}
JSON_COLUMNS = {"settings", "origins", "events", "recipient_domains", "refused_domains", "metadata"}
HASHED = {("api_keys", "secret_hash")}
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
    if (table, column) in sealed_columns | HASHED | UNSEALED_LEGACY:
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
            out[table] = [{key: _export_value(table, key, value, sealed_columns)
                           for key, value in zip(columns, row, strict=True)} for row in cursor.fetchall()]
        return out

    return ctx.store.read(run)


def delete_workspace(ctx: Context, workspace: str, confirm: str | None) -> dict[str, Any]:
    if confirm != workspace:
        raise ValidationError(f"deleting is permanent: repeat the workspace name with --yes {workspace}",
                              code="confirmation_required")

    def run(conn: sqlite3.Connection) -> dict[str, int]:
        ws = _workspace(conn, workspace)
        counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table} WHERE workspace_id = ?", (ws["id"],)).fetchone()[0]
                  for table in ("applications", "api_keys", "mailboxes", "forms", "webhook_endpoints", "messages")}
        conn.execute("DELETE FROM idempotency_keys WHERE workspace_id = ?", (ws["id"],))
        conn.execute("DELETE FROM workspaces WHERE id = ?", (ws["id"],))  # everything else cascades
        return counts

    return {"workspace": workspace, "deleted": ctx.store.write_sync(run)}
