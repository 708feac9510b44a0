"""The queue and the send log: messages, their encrypted bodies, idempotency records.

Work is claimed with leases (`claimed_by`, `lease_until`) in one `UPDATE … RETURNING`, so a
PostgreSQL backend can do the same with `FOR UPDATE SKIP LOCKED`. A body row exists only while
the message can still be sent; every terminal transition deletes it in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from js2mail.errors import QueueFull
from js2mail.providers.base import Refused
from js2mail.store import events

ACTIVE = ("queued", "retrying")
TERMINAL = ("sent", "failed", "cancelled", "dry_run")  # dry_run: a test send, final at intake


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


@dataclass(frozen=True)
class IdempotencyOutcome:
    state: str  # "accepted" | "replay" | "mismatch"
    response_status: int | None = None
    response_body: str | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    fingerprint: bytes
    response_status: int
    response_body: str


def record_idempotency(conn: sqlite3.Connection, workspace_id: str, app_id: str, record: IdempotencyRecord,
                       now: float) -> IdempotencyOutcome:
    """Claim the key by a UNIQUE insert of the finished record — never check-then-insert. The
    insert shares the transaction of the message it answers for, so nobody ever sees a key
    claimed for a message that is not queued, and a concurrent duplicate waits for the first
    request's commit and replays it. No claim is ever left unfinished, so the SPEC's 409 for an
    abandoned claim cannot arise (m016 removed what earlier development builds left)."""
    inserted = conn.execute(
        "INSERT INTO idempotency_keys (workspace_id, application_id, key, fingerprint, state, response_status,"
        " response_body, created_at) VALUES (?, ?, ?, ?, 'done', ?, ?, ?) ON CONFLICT DO NOTHING",
        (workspace_id, app_id, record.key, record.fingerprint, record.response_status, record.response_body, now),
    ).rowcount
    if inserted:
        return IdempotencyOutcome("accepted")
    row = conn.execute(
        "SELECT * FROM idempotency_keys WHERE workspace_id = ? AND application_id = ? AND key = ?",
        (workspace_id, app_id, record.key),
    ).fetchone()
    if row["fingerprint"] != record.fingerprint:
        return IdempotencyOutcome("mismatch")
    return IdempotencyOutcome("replay", row["response_status"], row["response_body"])


@dataclass(frozen=True)
class NewMessage:
    id: str
    workspace_id: str
    application_id: str
    mailbox_id: str
    source: str
    scheduled_at: float | None
    recipient_domains: list[str]
    metadata: dict[str, str]
    size: int
    payload: bytes  # sealed envelope (empty for a dry run: nothing is kept to send)
    dry_run: bool = False


@dataclass(frozen=True)
class QueueCaps:
    messages: int
    bytes: int


def queue_usage(conn: sqlite3.Connection, app_id: str) -> tuple[int, int]:
    """The application's messages not yet final, and their total size (kept by triggers, m009)."""
    row = conn.execute("SELECT messages, bytes FROM queue_usage WHERE application_id = ?", (app_id,)).fetchone()
    return (row[0], row[1]) if row is not None else (0, 0)


def over_caps(usage: tuple[int, int], size: int, caps: QueueCaps) -> bool:
    return usage[0] + 1 > caps.messages or usage[1] + size > caps.bytes


def enqueue(
    conn: sqlite3.Connection,
    msg: NewMessage,
    now: float,
    idempotency: IdempotencyRecord | None = None,
    extra_event: tuple[str, dict[str, Any]] | None = None,
    caps: QueueCaps | None = None,
) -> IdempotencyOutcome:
    """Queue the message, its sealed body, its `mail.queued` event (and `extra_event`) in one go;
    with an idempotency record, only if the key is new — otherwise queue nothing and say why.
    A dry run is recorded in its final status `dry_run` instead, with no body and a `mail.dry_run` event."""
    if idempotency is not None:
        outcome = record_idempotency(conn, msg.workspace_id, msg.application_id, idempotency, now)
        if outcome.state != "accepted":
            return outcome
    if caps is not None and over_caps(queue_usage(conn, msg.application_id), msg.size, caps):
        raise QueueFull.for_caps(caps)  # raising rolls the idempotency claim back with the job
    due = None if msg.dry_run else max(now, msg.scheduled_at or now)
    status = "dry_run" if msg.dry_run else "queued"
    conn.execute(
        "INSERT INTO messages (id, workspace_id, application_id, mailbox_id, source, status, attempts, created_at,"
        " updated_at, scheduled_at, next_attempt_at, recipient_domains, metadata, size)"
        " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
        (msg.id, msg.workspace_id, msg.application_id, msg.mailbox_id, msg.source, status, now, now, msg.scheduled_at,
         due, _json(msg.recipient_domains), _json(msg.metadata), msg.size),
    )
    if not msg.dry_run:
        conn.execute("INSERT INTO message_bodies (message_id, payload) VALUES (?, ?)", (msg.id, msg.payload))
    data = event_data(msg.id, status, 0, None, msg.recipient_domains, msg.metadata)
    events.emit(conn, workspace_id=msg.workspace_id, app_id=msg.application_id, type=f"mail.{status}", data=data,
                now=now)
    if extra_event is not None:
        events.emit(conn, workspace_id=msg.workspace_id, app_id=msg.application_id, type=extra_event[0],
                    data=extra_event[1], now=now)
    return IdempotencyOutcome("accepted")


def event_data(
    message_id: str, status: str, attempt: int, error: str | None, domains: list[str], metadata: dict[str, str],
    refused: Refused | None = None,
) -> dict[str, Any]:
    """A mail.* event's data; outcomes (sent, retrying, failed) also say how many recipients were
    refused and at which domains."""
    data: dict[str, Any] = {"messageId": message_id, "status": status, "attempt": attempt, "error": error,
                            "recipientDomains": domains, "metadata": metadata}
    if refused is not None:
        data.update(refusedRecipients=refused.count, refusedDomains=list(refused.domains))
    return data


CLAIM_COLUMNS = "id, workspace_id, application_id, mailbox_id, attempts, recipient_domains, metadata, created_at"


def claim_due(conn: sqlite3.Connection, worker: str, now: float, lease_until: float, limit: int,
              per_lane: int | None = None, busy: Mapping[str, int] | None = None,
              with_body: bool = False) -> list[sqlite3.Row]:
    """Lease up to `limit` due messages, at most `per_lane` in flight per mailbox counting `busy`
    (this worker's sends per mailbox id, "" for a removed mailbox): each mailbox's earliest due
    mail first, round-robin across mailboxes, so a mailbox with a backlog never crowds out another.
    `with_body`: each row also carries its sealed body as `payload` (None if it is gone), read in
    the same statement instead of once per message afterwards."""
    body = ", (SELECT payload FROM message_bodies WHERE message_id = messages.id) AS payload" if with_body else ""
    return conn.execute(
        f"WITH busy(lane, n) AS (SELECT key, value FROM json_each(:busy)),"
        f" lanes(lane, held) AS (SELECT l.id, COALESCE(b.n, 0) FROM (SELECT id FROM mailboxes UNION ALL SELECT NULL) l"
        f"  LEFT JOIN busy b ON b.lane = COALESCE(l.id, '')),"
        f" picked AS (SELECT m.id, m.next_attempt_at, l.held,"
        f"  ROW_NUMBER() OVER (PARTITION BY l.lane ORDER BY m.next_attempt_at, m.id) AS n"
        f"  FROM lanes l JOIN messages m ON m.id IN (SELECT id FROM messages WHERE mailbox_id IS l.lane"
        f"   AND status IN ('queued', 'retrying') AND next_attempt_at <= :now ORDER BY next_attempt_at LIMIT :per_lane)"
        f"  WHERE l.held < :per_lane)"
        f" UPDATE messages SET status = 'sending', claimed_by = :worker, lease_until = :lease, updated_at = :now"
        f" WHERE id IN (SELECT id FROM picked WHERE n + held <= :per_lane ORDER BY n, next_attempt_at LIMIT :limit)"
        f" RETURNING {CLAIM_COLUMNS}{body}",
        {"busy": _json(dict(busy or {})), "now": now, "per_lane": limit if per_lane is None else per_lane,
         "worker": worker, "lease": lease_until, "limit": limit},
    ).fetchall()


def release_claims(conn: sqlite3.Connection, now: float, worker: str | None = None, expired_only: bool = True) -> int:
    """Give claimed work back: a crashed worker's expired leases, or (at start-up) all of them."""
    sql = "UPDATE messages SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'retrying' END, claimed_by = NULL," \
          " lease_until = NULL, updated_at = ? WHERE status = 'sending'"
    params: list[Any] = [now]
    if worker is not None:
        sql += " AND claimed_by = ?"
        params.append(worker)
    if expired_only:
        sql += " AND lease_until < ?"
        params.append(now)
    return conn.execute(sql, params).rowcount


def body_of(conn: sqlite3.Connection, message_id: str) -> bytes | None:
    row = conn.execute("SELECT payload FROM message_bodies WHERE message_id = ?", (message_id,)).fetchone()
    return None if row is None else bytes(row["payload"])


def _finish(conn: sqlite3.Connection, row: sqlite3.Row, status: str, attempt: int, error: str | None, now: float,
            refused: Refused) -> None:
    etype = {"sent": "mail.sent", "failed": "mail.failed", "retrying": "mail.retrying"}[status]
    events.emit(conn, workspace_id=row["workspace_id"], app_id=row["application_id"], type=etype, now=now,
                data=lambda: event_data(row["id"], status, attempt, error, json.loads(row["recipient_domains"]),
                                        json.loads(row["metadata"]), refused))


def _update_claimed(conn: sqlite3.Connection, message_id: str, worker: str, assignments: str,
                    params: tuple[Any, ...]) -> sqlite3.Row | None:
    """Apply `assignments` only if this worker still holds the claim (a cancel or a takeover wins);
    the row as claimed, or None. One statement: the check and the change cannot drift apart."""
    row: sqlite3.Row | None = conn.execute(
        f"UPDATE messages SET {assignments} WHERE id = ? AND status = 'sending' AND claimed_by = ?"
        f" RETURNING {CLAIM_COLUMNS}",
        (*params, message_id, worker),
    ).fetchone()
    return row


def record_sent(conn: sqlite3.Connection, message_id: str, worker: str, attempt: int, response: str, now: float,
                refused: Refused = Refused()) -> bool:
    row = _update_claimed(
        conn, message_id, worker,
        "status = 'sent', attempts = ?, sent_at = ?, updated_at = ?, provider_response = ?, last_error = NULL,"
        " next_attempt_at = NULL, claimed_by = NULL, lease_until = NULL, refused_recipients = ?, refused_domains = ?",
        (attempt, now, now, response[:500], refused.count, _json(refused.domains)),
    )
    if row is None:
        return False
    conn.execute("DELETE FROM message_bodies WHERE message_id = ?", (message_id,))
    _finish(conn, row, "sent", attempt, None, now, refused)
    return True


def record_retry(
    conn: sqlite3.Connection, message_id: str, worker: str, attempt: int, error: str, next_at: float, now: float,
    refused: Refused = Refused(),
) -> bool:
    row = _update_claimed(
        conn, message_id, worker,
        "status = 'retrying', attempts = ?, next_attempt_at = ?, updated_at = ?, last_error = ?, claimed_by = NULL,"
        " lease_until = NULL, refused_recipients = ?, refused_domains = ?",
        (attempt, next_at, now, error[:1000], refused.count, _json(refused.domains)),
    )
    if row is None:
        return False
    _finish(conn, row, "retrying", attempt, error, now, refused)
    return True


def record_failed(conn: sqlite3.Connection, message_id: str, worker: str | None, attempt: int, error: str, now: float,
                  refused: Refused = Refused()) -> bool:
    assignments = ("status = 'failed', attempts = ?, updated_at = ?, last_error = ?, next_attempt_at = NULL,"
                   " claimed_by = NULL, lease_until = NULL, refused_recipients = ?, refused_domains = ?")
    params = (attempt, now, error[:1000], refused.count, _json(refused.domains))
    if worker is None:
        row = conn.execute(f"SELECT {CLAIM_COLUMNS}, status FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None or row["status"] in TERMINAL:
            return False
        conn.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*params, message_id))
    else:
        row = _update_claimed(conn, message_id, worker, assignments, params)
        if row is None:
            return False
    conn.execute("DELETE FROM message_bodies WHERE message_id = ?", (message_id,))
    _finish(conn, row, "failed", attempt, error, now, refused)
    return True


def record_deferred(conn: sqlite3.Connection, message_id: str, worker: str, until: float, reason: str, now: float) -> bool:
    """Put a claimed message back for later without counting an attempt (quota windows, shutdown)."""
    return _update_claimed(
        conn, message_id, worker,
        "status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'retrying' END, next_attempt_at = ?, updated_at = ?,"
        " last_error = COALESCE(?, last_error), claimed_by = NULL, lease_until = NULL",
        (until, now, reason or None),
    ) is not None


def fail_active_for_mailbox(conn: sqlite3.Connection, mailbox_id: str, error: str, now: float) -> int:
    """A dead grant: every waiting message of that mailbox fails permanently, with its event."""
    rows = conn.execute(
        "SELECT id, attempts FROM messages WHERE mailbox_id = ? AND status IN ('queued', 'retrying')", (mailbox_id,)
    ).fetchall()
    for row in rows:
        record_failed(conn, row["id"], None, row["attempts"], error, now)
    return len(rows)


def cancel(conn: sqlite3.Connection, app_id: str, message_id: str, now: float) -> tuple[str, bool] | None:
    """Cancel a message not yet sent: (status afterwards, whether this call cancelled it); None if unknown."""
    row = conn.execute("SELECT status FROM messages WHERE id = ? AND application_id = ?", (message_id, app_id)).fetchone()
    if row is None:
        return None
    if row["status"] in TERMINAL:
        return str(row["status"]), False
    conn.execute(
        "UPDATE messages SET status = 'cancelled', updated_at = ?, next_attempt_at = NULL, claimed_by = NULL,"
        " lease_until = NULL WHERE id = ?",
        (now, message_id),
    )
    conn.execute("DELETE FROM message_bodies WHERE message_id = ?", (message_id,))
    return "cancelled", True


MESSAGE_COLUMNS = """id, status, attempts, created_at, sent_at, next_attempt_at, last_error, recipient_domains,
    metadata, scheduled_at, source, mailbox_id, application_id, provider_response, refused_recipients,
    refused_domains"""


def get(conn: sqlite3.Connection, app_id: str | None, message_id: str) -> sqlite3.Row | None:
    sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?"
    params: list[Any] = [message_id]
    if app_id is not None:
        sql += " AND application_id = ?"
        params.append(app_id)
    row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
    return row


def _scope_filter(app_id: str | None, workspace_id: str | None) -> tuple[str, list[Any]]:
    """` AND …` for an operator's listing: one application, one workspace, or everything."""
    sql, params = "", []
    for column, value in (("application_id", app_id), ("workspace_id", workspace_id)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    return sql, params


def listing(
    conn: sqlite3.Connection, app_id: str | None, status: str | None, limit: int, before: tuple[float, str] | None,
    workspace_id: str | None = None,
) -> list[sqlite3.Row]:
    """Newest first; the cursor is (created_at, id) of the last row seen."""
    scope, params = _scope_filter(app_id, workspace_id)
    sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE 1=1{scope}"
    if status:
        sql += " AND status = ?"
        params.append(status)
    if before is not None:
        sql += " AND (created_at < ? OR (created_at = ? AND id < ?))"
        params.extend([before[0], before[0], before[1]])
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return conn.execute(sql, params).fetchall()


def changed_since(conn: sqlite3.Connection, since: float, after_id: str, app_id: str | None,
                  workspace_id: str | None, limit: int) -> list[sqlite3.Row]:
    """Messages whose row changed at or after `since` (queued, attempted, finished), oldest change
    first; `after_id` continues past the rows already seen at exactly `since`. New mail is found by
    `created_at` (a queued row's `updated_at` is its `created_at`) and every later change through a
    partial index that inserts never touch, so following the log costs the ingest path nothing."""
    scope, params = _scope_filter(app_id, workspace_id)
    after = "(updated_at > ? OR (updated_at = ? AND id > ?))"
    return conn.execute(
        f"SELECT * FROM (SELECT {MESSAGE_COLUMNS}, updated_at FROM messages INDEXED BY messages_changed"
        f" WHERE status != 'queued' AND {after}{scope}"
        f" UNION ALL SELECT {MESSAGE_COLUMNS}, updated_at FROM messages WHERE status = 'queued'"
        f" AND (created_at > ? OR (created_at = ? AND id > ?)) AND {after}{scope})"
        f" ORDER BY updated_at, id LIMIT ?",
        [since, since, after_id, *params, since, since, after_id, since, since, after_id, *params, limit]).fetchall()


def usage_today(conn: sqlite3.Connection, mailbox_id: str, day: str) -> int:
    row = conn.execute("SELECT sent FROM mailbox_usage WHERE mailbox_id = ? AND day = ?", (mailbox_id, day)).fetchone()
    return 0 if row is None else int(row["sent"])


def reserve_quota(conn: sqlite3.Connection, mailbox_id: str, day: str, quota: int) -> bool:
    """Take one send from the mailbox's daily quota, atomically; False when it is used up."""
    conn.execute("INSERT INTO mailbox_usage (mailbox_id, day, sent) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                 (mailbox_id, day))
    return conn.execute("UPDATE mailbox_usage SET sent = sent + 1 WHERE mailbox_id = ? AND day = ? AND sent < ?",
                        (mailbox_id, day, quota)).rowcount == 1


def release_quota(conn: sqlite3.Connection, mailbox_id: str, day: str) -> None:
    conn.execute("UPDATE mailbox_usage SET sent = sent - 1 WHERE mailbox_id = ? AND day = ? AND sent > 0",
                 (mailbox_id, day))


def purge(conn: sqlite3.Connection, before: float) -> dict[str, int]:
    """Retention: finished send logs, idempotency records and webhook deliveries older than `before`."""
    counts = {
        "messages": conn.execute(
            "DELETE FROM messages WHERE created_at < ? AND status IN ('sent', 'failed', 'cancelled', 'dry_run')",
            (before,)
        ).rowcount,
        "idempotency_keys": conn.execute(
            "DELETE FROM idempotency_keys WHERE created_at < ? AND state = 'done'", (before,)
        ).rowcount,
        "webhook_deliveries": conn.execute(
            "DELETE FROM webhook_deliveries WHERE created_at < ? AND status IN ('delivered', 'failed')", (before,)
        ).rowcount,
    }
    conn.execute("DELETE FROM mailbox_usage WHERE day < date(?, 'unixepoch', '-2 days')", (before,))
    return counts
