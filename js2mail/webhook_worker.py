"""Delivers the webhook outbox: signed POSTs with a stable delivery id, retried on the schedule."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import TYPE_CHECKING

from js2mail import outcomes, webhooks
from js2mail.errors import CryptoError
from js2mail.models import new_id
from js2mail.retry import next_attempt_at
from js2mail.service import Context
from js2mail.service.webhooks import active_secrets, housekeeping, policy
from js2mail.store import events
from js2mail.store import webhooks as rows

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("js2mail.webhooks")
BATCH = 100
PARALLEL = 16
HOUSEKEEPING_EVERY = 60.0


class WebhookWorker:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cfg = ctx.settings.webhooks
        self.policy = policy(ctx)
        self.worker = new_id("whw", 12)
        self.stopping = False
        self._running = False
        self._limit = asyncio.Semaphore(PARALLEL)
        self._http: httpx.AsyncClient | None = None  # one client: one TLS context, pooled connections
        self._housekept = float("-inf")

    async def tick(self) -> None:
        if self._running or self.stopping:
            return
        self._running = True
        try:
            while not self.stopping:
                now = self.ctx.clock.now()
                lease = now + self.cfg.timeout * 3 + 30
                due = await self.ctx.store.write(rows.claim_due, self.worker, now, lease, BATCH)
                if not due:
                    break
                await asyncio.gather(*(outcomes.webhook(self.ctx, d, self._deliver(d)) for d in due))
                if len(due) < BATCH:
                    break
            await self._housekeeping()
        finally:
            self._running = False

    async def _housekeeping(self) -> None:
        """Auto-disable and the redelivery window's wipe, at most once a minute (of the clock)."""
        if self.ctx.clock.now() - self._housekept >= HOUSEKEEPING_EVERY:
            self._housekept = self.ctx.clock.now()
            await housekeeping(self.ctx)

    async def drain(self, timeout: float) -> None:
        self.stopping = True
        deadline = asyncio.get_running_loop().time() + timeout
        while self._running and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._http

    async def _deliver(self, d: sqlite3.Row) -> None:
        async with self._limit:
            store, now = self.ctx.store, self.ctx.clock.now()
            attempt = d["attempts"] + 1
            endpoint = store.read(rows.endpoint, d["endpoint_id"])
            if endpoint is None or endpoint["status"] != "active":
                await store.write(rows.record_attempt, d["id"], status="failed", attempts=d["attempts"], now=now,
                                  next_at=None, http_status=None, error="endpoint disabled or removed")
                return
            try:
                secrets = active_secrets(self.ctx, endpoint, now)
                body = _body_of(self.ctx, d)
                target = await webhooks.resolve_target(endpoint["url"], self.policy)
            except webhooks.WebhookUrlRefused as exc:
                await self._retry_or_fail(d, attempt, None, exc.message, None)
                return
            except CryptoError as exc:
                await store.write(rows.record_attempt, d["id"], status="failed", attempts=attempt, now=now,
                                  next_at=None, http_status=None, error=exc.message)
                return
            headers = webhooks.delivery_headers(body=body, event_type=d["event_type"], delivery_id=d["id"],
                                                secrets=secrets, now=self.ctx.clock.now())
            started = time.monotonic()
            result = await webhooks.deliver(target, body, headers, timeout=self.cfg.timeout, client=self._client())
            latency = round((time.monotonic() - started) * 1000)
            now = self.ctx.clock.now()
            if result.delivered:
                await store.write(rows.record_attempt, d["id"], status="delivered", attempts=attempt, now=now,
                                  next_at=None, http_status=result.status_code, error=None, latency_ms=latency)
            elif result.gone:
                await store.write(_gone, d["id"], endpoint["id"], attempt, now, result.status_code)
                log.warning("webhook endpoint %s answered 410 Gone: disabled", endpoint["id"])
            else:
                await self._retry_or_fail(d, attempt, result.status_code, result.error or "failed", result.retry_after,
                                          latency)

    async def _retry_or_fail(self, d: sqlite3.Row, attempt: int, status: int | None, error: str,
                             retry_after: float | None, latency_ms: int | None = None) -> None:
        now = self.ctx.clock.now()
        next_at = next_attempt_at(attempt, self.cfg.retry_schedule, now, retry_after)
        await self.ctx.store.write(rows.record_attempt, d["id"], status="pending" if next_at else "failed",
                                   attempts=attempt, now=now, next_at=next_at, http_status=status, error=error,
                                   latency_ms=latency_ms)


def _body_of(ctx: Context, d: sqlite3.Row) -> bytes:
    """The delivery's body, unsealed; one an earlier build left unsealed (pending at the upgrade) as it is."""
    if d["payload"] is not None:
        return ctx.sealer.open(bytes(d["payload"]), **events.PAYLOAD, row_id=d["id"])
    if d["body"]:
        return bytes(d["body"])
    raise CryptoError(f"webhook delivery {d['id']} has no body", code="envelope_invalid")


def _gone(conn: sqlite3.Connection, delivery_id: str, endpoint_id: str, attempt: int, now: float,
          status: int | None) -> None:
    rows.record_attempt(conn, delivery_id, status="failed", attempts=attempt, now=now, next_at=None,
                        http_status=status, error="410 Gone: endpoint disabled")
    rows.set_endpoint_status(conn, endpoint_id, "disabled", "receiver answered 410 Gone")
    rows.fail_pending_of(conn, endpoint_id, "endpoint disabled (410 Gone)")
