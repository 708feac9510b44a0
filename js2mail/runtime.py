"""What runs beside the HTTP API in `serve`: the APScheduler loop driving dispatch, webhook
deliveries and the retention purge. Started and stopped in the app's lifespan; stop drains."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from js2mail.dispatch import Dispatcher
from js2mail.ratelimit import TokenBuckets
from js2mail.service import Context
from js2mail.store import messages as rows
from js2mail.webhook_worker import WebhookWorker

log = logging.getLogger("js2mail.runtime")
PURGE_EVERY = timedelta(hours=24)
LEASE_CHECK_EVERY = 60.0


class Runtime:
    def __init__(self, ctx: Context, buckets: Sequence[TokenBuckets] = ()) -> None:
        self.ctx = ctx
        self.buckets = tuple(buckets)  # the HTTP side's rate-limit buckets, pruned by the daily purge
        self.dispatcher = Dispatcher(ctx)
        self.webhooks: WebhookWorker | None = None
        self.scheduler: Any = None
        self.running = False

    async def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        released = await self.ctx.store.write(rows.release_claims, self.ctx.clock.now(), None, False)
        if released:
            log.info("picked up %d message(s) left in 'sending' by an earlier run", released)
        self.webhooks = WebhookWorker(self.ctx)
        scheduler = AsyncIOScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        now = datetime.now()
        scheduler.add_job(self.dispatcher.tick, "interval", seconds=self.ctx.settings.dispatch.poll_interval,
                          id="dispatch", next_run_time=now)
        scheduler.add_job(self.webhooks.tick, "interval", seconds=self.ctx.settings.webhooks.poll_interval,
                          id="webhooks", next_run_time=now)
        scheduler.add_job(self.release_expired, "interval", seconds=LEASE_CHECK_EVERY, id="leases")
        scheduler.add_job(self.purge, "interval", seconds=PURGE_EVERY.total_seconds(), id="purge",
                          next_run_time=now + timedelta(seconds=30))
        scheduler.start()
        self.scheduler = scheduler
        self.running = True
        self.ctx.on_enqueued = self.kick  # accepted mail that is due now wakes the dispatcher

    async def release_expired(self) -> int:
        """Claims whose lease ran out belong to a worker that died (another node, or a hung send)."""
        released: int = await self.ctx.store.write(rows.release_claims, self.ctx.clock.now(), None, True)
        return released

    def kick(self) -> None:
        if self.running:
            self.dispatcher.kick()

    async def purge(self) -> dict[str, int]:
        before = self.ctx.clock.now() - self.ctx.settings.privacy.retention_days * 86400
        counts: dict[str, int] = await self.ctx.store.write(rows.purge, before)
        for buckets in self.buckets:
            buckets.prune(buckets.refill_seconds)
        if any(counts.values()):
            log.info("retention purge: %s", counts)
        return counts

    async def stop(self) -> None:
        self.running = False
        self.ctx.on_enqueued = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        await self.dispatcher.drain(self.ctx.settings.dispatch.send_timeout)
        if self.webhooks is not None:
            await self.webhooks.drain(self.ctx.settings.webhooks.timeout + 2)
        await self.dispatcher.providers.close()
