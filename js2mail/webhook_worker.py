"""Delivers the webhook outbox: signed POSTs with a stable delivery id, retried on the schedule."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import TYPE_CHECKING

from js2mail import outcomes, webhooks
from js2mail.errors import CryptoError
from js2mail.lanes import Lanes
from js2mail.models import new_id
from js2mail.retry import next_attempt_at
from js2mail.service import Context
from js2mail.service.webhooks import active_secrets, housekeeping, policy
from js2mail.store import events
from js2mail.store import webhooks as rows

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("js2mail.webhooks")
IN_FLIGHT = 64  # deliveries in flight at once, all endpoints together (below httpx's pool of 100)
HOUSEKEEPING_EVERY = 60.0


class WebhookWorker:
    """Each endpoint is a lane (js2mail.lanes): at most `[webhooks] concurrency_per_endpoint` of its
    deliveries in flight, refilled as soon as one finishes, so a hanging receiver only holds up itself."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cfg = ctx.settings.webhooks
        self.policy = policy(ctx)
        self.worker = new_id("whw", 12)
        self.lanes: Lanes[sqlite3.Row] = Lanes("webhooks", claim=self._claim, lane_of=lambda d: d["endpoint_id"],
                                               work=lambda d: outcomes.webhook(ctx, d, self._deliver(d)),
                                               total=IN_FLIGHT)
        self._limit = asyncio.Semaphore(IN_FLIGHT)  # the lanes stay under it; a guard for any other caller
        self._http: httpx.AsyncClient | None = None  # one client: one TLS context, pooled connections
        self._housekept = float("-inf")

    @property
    def stopping(self) -> bool:
        return self.lanes.stopping

    def kick(self) -> None:
        self.lanes.kick()

    async def tick(self) -> None:
        """The scheduler's poll: due deliveries start if their endpoint's lane has room; then the
        housekeeping (auto-disable, the redelivery window's wipe), at most once a minute."""
        self.lanes.kick()
        await self._housekeeping()

    async def run_once(self) -> int:
        """Deliver everything due now and wait for it; how many deliveries started."""
        started = await self.lanes.run_until_idle()
        await self._housekeeping()
        return started

    async def _housekeeping(self) -> None:
        """Auto-disable and the redelivery window's wipe, at most once a minute (of the clock)."""
        if self.ctx.clock.now() - self._housekept >= HOUSEKEEPING_EVERY:
            self._housekept = self.ctx.clock.now()
            await housekeeping(self.ctx)

    async def _claim(self, busy: dict[str, int], room: int) -> list[sqlite3.Row]:
        now = self.ctx.clock.now()
        lease = now + self.cfg.timeout * 3 + 30
        claimed: list[sqlite3.Row] = await self.ctx.store.write(
            rows.claim_due, self.worker, now, lease, room, max(1, self.cfg.concurrency_per_endpoint), busy)
        return claimed

    async def drain(self, timeout: float) -> None:
        await self.lanes.drain(timeout)
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
            log.info("webhook %s %s to %s (attempt %d): %s", d["event_type"], d["id"], target.host, attempt,
                     "delivered" if result.delivered else result.error)  # the host only: paths carry tokens
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
