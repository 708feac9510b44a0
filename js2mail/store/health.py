"""What operators watch: queue depth and age per mailbox, quota left, and the outcome a delivery
or a webhook attempt just recorded (read back for its log line and counters)."""

from __future__ import annotations

import sqlite3


def queue_by_mailbox(conn: sqlite3.Connection, now: float) -> list[sqlite3.Row]:
    """Every mailbox with its waiting (queued, retrying) and in-flight (sending) counts, and the
    oldest `next_attempt_at` already due. Each half matches a partial index of `messages`."""
    return conn.execute(
        "SELECT mb.id AS mailbox_id, mb.provider, COALESCE(w.queued, 0) AS queued, COALESCE(w.retrying, 0) AS retrying,"
        " COALESCE(s.sending, 0) AS sending, w.oldest_due FROM mailboxes mb"
        " LEFT JOIN (SELECT mailbox_id, SUM(status = 'queued') AS queued, SUM(status = 'retrying') AS retrying,"
        "  MIN(CASE WHEN next_attempt_at <= ? THEN next_attempt_at END) AS oldest_due FROM messages"
        "  WHERE status IN ('queued', 'retrying') GROUP BY mailbox_id) w ON w.mailbox_id = mb.id"
        " LEFT JOIN (SELECT mailbox_id, COUNT(*) AS sending FROM messages WHERE status = 'sending'"
        "  GROUP BY mailbox_id) s ON s.mailbox_id = mb.id ORDER BY mb.id",
        (now,),
    ).fetchall()


def quota_remaining(conn: sqlite3.Connection, day: str) -> list[sqlite3.Row]:
    """Mailboxes with a daily quota, and how many sends are left of it on `day` (UTC)."""
    return conn.execute(
        "SELECT mb.id AS mailbox_id, mb.provider, MAX(mb.daily_quota - COALESCE(u.sent, 0), 0) AS remaining"
        " FROM mailboxes mb LEFT JOIN mailbox_usage u ON u.mailbox_id = mb.id AND u.day = ?"
        " WHERE mb.daily_quota IS NOT NULL AND mb.daily_quota > 0 ORDER BY mb.id",
        (day,),
    ).fetchall()


def message_outcome(conn: sqlite3.Connection, message_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT m.id, m.status, m.attempts, m.mailbox_id, m.recipient_domains, m.last_error, m.provider_response,"
        " COALESCE(mb.provider, '') AS provider FROM messages m LEFT JOIN mailboxes mb ON mb.id = m.mailbox_id"
        " WHERE m.id = ?",
        (message_id,),
    ).fetchone()
    return row


def delivery_outcome(conn: sqlite3.Connection, delivery_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, endpoint_id, event_type, status, attempts, last_status, last_error FROM webhook_deliveries"
        " WHERE id = ?",
        (delivery_id,),
    ).fetchone()
    return row


def failing_endpoints(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Webhook endpoints whose last attempt did not deliver, or that were disabled."""
    return conn.execute(
        "SELECT id, url, status, status_detail, last_outcome, last_error, last_http_status, consecutive_failures"
        " FROM webhook_endpoints WHERE consecutive_failures > 0 OR status != 'active' ORDER BY id"
    ).fetchall()
