"""Webhook endpoints and their delivery outbox (rows are written by store/events.emit).

A delivery's sealed `payload` is kept only while the delivery is pending: the transition to
`delivered` or `failed` (given up, endpoint disabled or removed) wipes it in the same statement;
removing an endpoint deletes its deliveries. What stays, until the retention purge, is the
delivery's metadata: ids, event type, status, attempts, times, last HTTP status and error."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from js2mail.store.scoped import scoped_rows


def insert_endpoint(conn: sqlite3.Connection, *, endpoint_id: str, workspace_id: str, app_id: str, url: str,
                    events: list[str] | str, secret: bytes, now: float) -> None:
    conn.execute(
        "INSERT INTO webhook_endpoints (id, workspace_id, application_id, url, events, secret, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (endpoint_id, workspace_id, app_id, url, json.dumps(events), secret, now),
    )


ENDPOINT_COLUMNS = "e.*, w.slug AS workspace, a.slug AS application"
ENDPOINT_FROM = ("webhook_endpoints e JOIN workspaces w ON w.id = e.workspace_id"
                 " JOIN applications a ON a.id = e.application_id")


def endpoint(conn: sqlite3.Connection, endpoint_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINT_FROM} WHERE e.id = ?", (endpoint_id,)).fetchone()
    return row


def endpoints(conn: sqlite3.Connection, workspace: str | None, application: str | None) -> list[sqlite3.Row]:
    return scoped_rows(conn, f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINT_FROM}", "e.created_at",
                       w__slug=workspace, a__slug=application)


def delete_endpoint(conn: sqlite3.Connection, endpoint_id: str) -> int:
    return conn.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,)).rowcount


def rotate_secret(conn: sqlite3.Connection, endpoint_id: str, new_secret: bytes, old_until: float | None) -> None:
    """The current secret becomes the previous one (signed alongside until `old_until`)."""
    conn.execute(
        "UPDATE webhook_endpoints SET previous_secret = CASE WHEN ? IS NULL THEN NULL ELSE secret END,"
        " previous_secret_until = ?, secret = ? WHERE id = ?",
        (old_until, old_until, new_secret, endpoint_id),
    )


def set_endpoint_status(conn: sqlite3.Connection, endpoint_id: str, status: str, detail: str | None) -> None:
    conn.execute("UPDATE webhook_endpoints SET status = ?, status_detail = ? WHERE id = ?", (status, detail, endpoint_id))


def claim_due(conn: sqlite3.Connection, worker: str, now: float, lease_until: float, limit: int,
              per_lane: int | None = None, busy: Mapping[str, int] | None = None) -> list[sqlite3.Row]:
    """Lease up to `limit` due deliveries, at most `per_lane` in flight per endpoint counting `busy`
    (this worker's deliveries per endpoint id): round-robin across endpoints, earliest due first."""
    return conn.execute(
        "WITH busy(lane, n) AS (SELECT key, value FROM json_each(:busy)),"
        " lanes(lane, held) AS (SELECT e.id, COALESCE(b.n, 0) FROM webhook_endpoints e LEFT JOIN busy b ON b.lane = e.id),"
        " picked AS (SELECT d.id, d.next_attempt_at, l.held,"
        "  ROW_NUMBER() OVER (PARTITION BY l.lane ORDER BY d.next_attempt_at, d.id) AS n"
        "  FROM lanes l JOIN webhook_deliveries d ON d.id IN (SELECT id FROM webhook_deliveries WHERE endpoint_id = l.lane"
        "   AND status = 'pending' AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now)"
        "   ORDER BY next_attempt_at LIMIT :per_lane)"
        "  WHERE l.held < :per_lane)"
        " UPDATE webhook_deliveries SET claimed_by = :worker, lease_until = :lease"
        " WHERE id IN (SELECT id FROM picked WHERE n + held <= :per_lane ORDER BY n, next_attempt_at LIMIT :limit)"
        " RETURNING *",
        {"busy": json.dumps(dict(busy or {})), "now": now, "per_lane": limit if per_lane is None else per_lane,
         "worker": worker, "lease": lease_until, "limit": limit},
    ).fetchall()


WIPE = "payload = NULL, body = X''"  # a final delivery keeps no body (sealed, or left unsealed by an old build)


def record_attempt(conn: sqlite3.Connection, delivery_id: str, *, status: str, attempts: int, now: float,
                   next_at: float | None, http_status: int | None, error: str | None) -> None:
    final = status != "pending"
    conn.execute(
        "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?,"
        " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, claimed_by = NULL, lease_until = NULL"
        f"{', ' + WIPE if final else ''} WHERE id = ?",
        (status, attempts, next_at, http_status, error, status, now, delivery_id),
    )


def fail_pending_of(conn: sqlite3.Connection, endpoint_id: str, reason: str) -> int:
    return conn.execute(
        f"UPDATE webhook_deliveries SET status = 'failed', last_error = ?, next_attempt_at = NULL, {WIPE}"
        " WHERE endpoint_id = ? AND status = 'pending'", (reason, endpoint_id)).rowcount


def deliveries(conn: sqlite3.Connection, endpoint_id: str, limit: int = 20) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY created_at DESC LIMIT ?",
                        (endpoint_id, limit)).fetchall()
