"""The webhook outbox: events are written in the same transaction as the change they report.

A delivery's body is personal data (a form's fields, a message's metadata), so it is sealed like a
message body — AAD `webhook_deliveries|payload|<delivery id>` — and wiped once the delivery is final
(store/webhooks). The sealer of a database is registered when a context opens it (`use_sealer`):
the writes that emit events only hold a connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from js2mail.errors import CryptoError
from js2mail.models import new_id

if TYPE_CHECKING:
    from js2mail.crypto import Sealer

PAYLOAD = {"table": "webhook_deliveries", "column": "payload"}
_sealers: dict[str, Sealer] = {}


def use_sealer(db_path: Path | str, sealer: Sealer) -> None:
    """Seal the events written to this database file with `sealer`."""
    _sealers[os.path.realpath(db_path)] = sealer


def sealer_for(conn: sqlite3.Connection) -> Sealer:
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    sealer = (_sealers.get(path) or _sealers.get(os.path.realpath(path))) if path else None
    if sealer is None:
        raise CryptoError("no data key loaded for this database: webhook deliveries cannot be sealed",
                          code="data_key_missing")
    return sealer


def emit(
    conn: sqlite3.Connection, *, workspace_id: str, app_id: str, type: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]], now: float,
) -> int:
    """One pending delivery per active endpoint of the application subscribed to `type`. `data` may
    be a function, called only when some endpoint wants the event."""
    endpoints = conn.execute(
        "SELECT id, events FROM webhook_endpoints WHERE application_id = ? AND status = 'active'", (app_id,)
    ).fetchall()
    targets = [e["id"] for e in endpoints if _subscribed(e["events"], type)]
    if not targets:
        return 0
    from js2mail.webhooks import event_body

    if callable(data):
        data = data()
    sealer = sealer_for(conn)
    event_id = new_id("evt")
    body = event_body(event_id=event_id, type=type, created_at=now, data=data)
    deliveries = [(str(uuid.uuid4()), endpoint_id) for endpoint_id in targets]
    conn.executemany(
        "INSERT INTO webhook_deliveries (id, endpoint_id, application_id, event_id, event_type, body, payload, status,"
        " attempts, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, X'', ?, 'pending', 0, ?, ?)",
        [(delivery_id, endpoint_id, app_id, event_id, type, sealer.seal(body, **PAYLOAD, row_id=delivery_id), now, now)
         for delivery_id, endpoint_id in deliveries],
    )
    return len(targets)


def _subscribed(events: str, type: str) -> bool:
    wanted = json.loads(events)
    return wanted == "*" or "*" in wanted or type in wanted
