"""Each delivery and webhook outcome, once recorded, becomes one log line and a bump of the
counters (js2mail/metrics.py). A line names ids, the mailbox, recipient domains, the status,
the provider's code, the attempt and its latency — never an address, a subject or a body.

The dispatcher and the webhook worker hand each attempt's coroutine to `delivery` / `webhook`,
which time it. A delivery attempt returns what it wrote to the message row (`Recorded`), so its
line needs no read; when it returns None (a rare path, or its claim was lost to a cancel) the
row is read back instead (one primary-key read), as webhook outcomes always are."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from js2mail import metrics
from js2mail.store import health

if TYPE_CHECKING:
    from js2mail.service import Context

delivery_log = logging.getLogger("js2mail.delivery")
webhook_log = logging.getLogger("js2mail.webhook")
_CODE = re.compile(r"^([a-z][a-z0-9_]*): ")
_REPLY = re.compile(r"^(\d{3}|\d\.\d{1,3}\.\d{1,3})\b")  # an HTTP status, or SMTP's enhanced status code
_ADDRESS = re.compile(r"[^\s<>\"'(),;:@]+@[^\s<>\"'(),;:@]+")


def _read_back(ctx: Context, fn: Callable[[sqlite3.Connection, str], sqlite3.Row | None],
               row_id: str) -> sqlite3.Row | None:
    try:
        return ctx.store.read(fn, row_id)
    except Exception:  # noqa: BLE001 - observing must never break delivery
        delivery_log.debug("could not read an outcome back", exc_info=True)
        return None


@dataclass(frozen=True)
class Recorded:
    """The columns of a message row an attempt just wrote, as `health.message_outcome` would read them."""
    status: str  # sent | failed | retrying | queued (deferred before its first attempt)
    attempts: int
    provider: str
    last_error: str | None = None
    provider_response: str | None = None


async def delivery(ctx: Context, claimed: sqlite3.Row, attempt: Awaitable[Recorded | None]) -> None:
    started = time.perf_counter()
    recorded: Recorded | None = None
    try:
        recorded = await attempt
    finally:
        row: Mapping[str, Any] | sqlite3.Row | None
        if recorded is not None:
            row = {"id": claimed["id"], "mailbox_id": claimed["mailbox_id"],
                   "recipient_domains": claimed["recipient_domains"], "status": recorded.status,
                   "attempts": recorded.attempts, "provider": recorded.provider, "last_error": recorded.last_error,
                   "provider_response": recorded.provider_response}
        else:
            row = _read_back(ctx, health.message_outcome, claimed["id"])
        if row is not None:
            _delivery_line(row, claimed["attempts"], time.perf_counter() - started)


def _delivery_line(row: Mapping[str, Any] | sqlite3.Row, attempts_before: int, seconds: float) -> None:
    status = row["status"]
    if status in ("queued", "retrying"):
        status = "retrying" if row["attempts"] > attempts_before else "deferred"
    elif status not in ("sent", "failed"):
        return  # cancelled meanwhile, or still claimed (its write failed and was logged)
    found = _REPLY.match(row["provider_response"] or "") if status == "sent" else _CODE.match(row["last_error"] or "")
    code = found.group(1) if found else ""
    provider = row["provider"]
    metrics.SENDS.labels(status, provider).inc()
    if status != "deferred":
        metrics.ATTEMPT_SECONDS.labels(provider, status).observe(seconds)
    level = logging.WARNING if status in ("retrying", "failed") else logging.INFO
    if not delivery_log.isEnabledFor(level):
        return  # e.g. `serve --log-level warning`: sent mail costs no line
    domains = json.loads(row["recipient_domains"] or "[]")
    fields = {"event": "delivery", "status": status, "message_id": row["id"], "mailbox_id": row["mailbox_id"],
              "provider": provider, "recipient_domains": domains, "provider_code": code,
              "attempt": row["attempts"], "latency_ms": round(seconds * 1000, 1)}
    delivery_log.log(level, "delivery %s message=%s mailbox=%s provider=%s domains=%s code=%s attempt=%d "
                     "latency_ms=%.1f", status, row["id"], row["mailbox_id"], provider, ",".join(domains),
                     code or "-", row["attempts"], seconds * 1000, extra=fields)


async def webhook(ctx: Context, claimed: sqlite3.Row, attempt: Awaitable[None]) -> None:
    started = time.perf_counter()
    try:
        await attempt
    finally:
        row = _read_back(ctx, health.delivery_outcome, claimed["id"])
        if row is not None and row["attempts"] > claimed["attempts"]:
            _webhook_line(row, time.perf_counter() - started)


def _webhook_line(row: sqlite3.Row, seconds: float) -> None:
    outcome = {"pending": "retrying"}.get(row["status"], row["status"])
    error = _ADDRESS.sub("<address>", (row["last_error"] or "")[:300]) if outcome != "delivered" else ""
    metrics.WEBHOOKS.labels(outcome).inc()
    fields = {"event": "webhook", "outcome": outcome, "delivery_id": row["id"], "endpoint_id": row["endpoint_id"],
              "event_type": row["event_type"], "http_status": row["last_status"], "attempt": row["attempts"],
              "latency_ms": round(seconds * 1000, 1), "error": error}
    level = logging.INFO if outcome == "delivered" else logging.WARNING
    webhook_log.log(level, "webhook %s delivery=%s endpoint=%s event=%s http_status=%s attempt=%d latency_ms=%.1f%s",
                    outcome, row["id"], row["endpoint_id"], row["event_type"], row["last_status"] or "-",
                    row["attempts"], seconds * 1000, f" error={error!r}" if error else "", extra=fields)
