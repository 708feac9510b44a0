"""Webhook endpoints and their delivery outbox (rows are written by store/events.emit).

A delivery's sealed `payload` is kept while the delivery is pending. `delivered` wipes it in the
same statement; `failed` (given up, endpoint disabled) keeps it, sealed, for the redelivery window
(`[webhooks] redeliver_window_hours`, from `failed_at`), after which `wipe_expired` empties it;
removing an endpoint deletes its deliveries. What stays, until the retention purge, is the
delivery's metadata: ids, event type, status, attempts, times, latency, last HTTP status and error."""

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
KEEP_SEALED_ONLY = ", body = X''"  # a given-up delivery keeps only its sealed payload, never an unsealed body


def record_attempt(conn: sqlite3.Connection, delivery_id: str, *, status: str, attempts: int, now: float,
                   next_at: float | None, http_status: int | None, error: str | None,
                   latency_ms: int | None = None) -> None:
    """A delivered delivery is wiped at once; a failed one keeps its sealed payload (see the module)."""
    conn.execute(
        "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?,"
        " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, claimed_by = NULL, lease_until = NULL,"
        " last_attempt_at = ?, latency_ms = ?, failed_at = CASE WHEN ? = 'failed' THEN ? END"
        f"{', ' + WIPE if status == 'delivered' else ''}{KEEP_SEALED_ONLY if status == 'failed' else ''} WHERE id = ?",
        (status, attempts, next_at, http_status, error, status, now, now, latency_ms, status, now, delivery_id),
    )


def fail_pending_of(conn: sqlite3.Connection, endpoint_id: str, reason: str, now: float | None = None) -> int:
    """Give up the endpoint's pending deliveries; their payloads stay sealed for the redelivery window."""
    return conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = ?, next_attempt_at = NULL,"
        " failed_at = COALESCE(?, last_attempt_at, created_at), claimed_by = NULL, lease_until = NULL, body = X''"
        " WHERE endpoint_id = ? AND status = 'pending'", (reason, now, endpoint_id)).rowcount


# --- operations: deliveries, redeliver, expiry of kept payloads, auto-disable ---------------------
DELIVERY_COLUMNS = ("id, endpoint_id, event_id, event_type, status, attempts, created_at, last_attempt_at,"
                    " next_attempt_at, delivered_at, failed_at, redelivered_at, last_status, last_error, latency_ms,"
                    " payload IS NOT NULL AS has_payload")  # never the payload itself


def deliveries(conn: sqlite3.Connection, endpoint_id: str | None, status: str | None = None,
               limit: int = 20) -> list[sqlite3.Row]:
    """The most recent deliveries (metadata only) of one endpoint, or of all, newest first."""
    where = [clause for clause, value in (("endpoint_id = ?", endpoint_id), ("status = ?", status)) if value]
    params = [value for value in (endpoint_id, status) if value]
    return conn.execute(f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries"
                        f"{' WHERE ' + ' AND '.join(where) if where else ''}"
                        " ORDER BY created_at DESC, rowid DESC LIMIT ?", (*params, limit)).fetchall()


def delivery(conn: sqlite3.Connection, delivery_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone()
    return row


def failed_since(conn: sqlite3.Connection, endpoint_id: str, since: float) -> list[sqlite3.Row]:
    return conn.execute(f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?"
                        " AND status = 'failed' AND created_at >= ? ORDER BY created_at", (endpoint_id, since)).fetchall()


def redeliver(conn: sqlite3.Connection, delivery_id: str, now: float) -> bool:
    """Put a given-up delivery back in the outbox under the same id (the worker signs it afresh);
    False when it is not failed or its payload was wiped."""
    return conn.execute(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, failed_at = NULL,"
        " redelivered_at = ?, claimed_by = NULL, lease_until = NULL"
        " WHERE id = ? AND status = 'failed' AND payload IS NOT NULL",
        (now, now, delivery_id)).rowcount == 1


def wipe_expired(conn: sqlite3.Connection, failed_before: float) -> int:
    """Wipe the kept payloads of deliveries given up before `failed_before` (the redelivery window)."""
    return conn.execute(
        f"UPDATE webhook_deliveries SET {WIPE} WHERE status = 'failed' AND payload IS NOT NULL"
        " AND (failed_at IS NULL OR failed_at < ?)", (failed_before,)).rowcount


def failing_too_long(conn: sqlite3.Connection, streak: float) -> list[sqlite3.Row]:
    """Active endpoints whose every attempt has failed for at least `streak` seconds."""
    return conn.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINT_FROM} WHERE e.status = 'active' AND e.failing_since IS NOT NULL"
        " AND e.last_attempt_at - e.failing_since >= ?", (streak,)).fetchall()


def enable_endpoint(conn: sqlite3.Connection, endpoint_id: str) -> int:
    return conn.execute(
        "UPDATE webhook_endpoints SET status = 'active', status_detail = NULL, failing_since = NULL,"
        " consecutive_failures = 0 WHERE id = ?", (endpoint_id,)).rowcount
