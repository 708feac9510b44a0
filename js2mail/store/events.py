"""The webhook outbox: events are written in the same transaction as the change they report."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from js2mail.models import new_id


def emit(
    conn: sqlite3.Connection, *, workspace_id: str, app_id: str, type: str, data: dict[str, Any], now: float
) -> int:
    """One pending delivery per active endpoint of the application subscribed to `type`."""
    endpoints = conn.execute(
        "SELECT id, events FROM webhook_endpoints WHERE application_id = ? AND status = 'active'", (app_id,)
    ).fetchall()
    targets = [e["id"] for e in endpoints if _subscribed(e["events"], type)]
    if not targets:
        return 0
    from js2mail.webhooks import event_body

    event_id = new_id("evt")
    body = event_body(event_id=event_id, type=type, created_at=now, data=data)
    conn.executemany(
        "INSERT INTO webhook_deliveries (id, endpoint_id, application_id, event_id, event_type, body, status,"
        " attempts, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        [(str(uuid.uuid4()), endpoint_id, app_id, event_id, type, body, now, now) for endpoint_id in targets],
    )
    return len(targets)


def _subscribed(events: str, type: str) -> bool:
    wanted = json.loads(events)
    return wanted == "*" or "*" in wanted or type in wanted
