"""Due messages → provider → record the attempt → schedule the next one.

Each mailbox is a lane (js2mail.lanes): at most `[dispatch] concurrency_per_mailbox` of its messages
in flight — its provider's connection pool — and at most `batch_size` in flight overall. Messages
are claimed with a lease (one UPDATE … RETURNING on the single writer) only into free slots, and a
freed slot is refilled at once, so a slow mailbox never delays another. Every outcome is one write
job, so the writer commits many outcomes per fsync.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from js2mail import mail, outcomes
from js2mail.errors import CryptoError, ProviderError
from js2mail.lanes import Lanes
from js2mail.models import new_id
from js2mail.providers.base import OutgoingMessage, Provider, RecipientsRefused, Refused, SendResult
from js2mail.providers.registry import spec_of
from js2mail.redact import RedactingFilter, redact
from js2mail.retry import next_attempt_at, next_utc_midnight, utc_day
from js2mail.service import Context
from js2mail.store import mailboxes as mailbox_rows
from js2mail.store import messages as rows

log = logging.getLogger("js2mail.dispatch")
log.addFilter(RedactingFilter())  # provider errors and tracebacks echo recipient addresses


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    provider: Provider
    row: sqlite3.Row


class ProviderPool:
    """One provider per mailbox, rebuilt when the mailbox row changes (another process may edit it)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cache: dict[str, _Cached] = {}

    async def get(self, mailbox_id: str) -> tuple[Provider, sqlite3.Row] | None:
        row = self.ctx.store.read(mailbox_rows.by_id, mailbox_id)
        if row is None:
            return None
        # A Graph provider re-saves its own rotating token cache; that alone must not rebuild it.
        secret = None if spec_of(row["provider"]).rotates_own_secret else row["secret"]
        fp = (row["settings"], secret, row["provider"], row["status"])
        cached = self._cache.get(mailbox_id)
        if cached is None or cached.fingerprint != fp:
            if cached is not None:
                await cached.provider.close()
            from js2mail.service.mailboxes import build_provider

            cached = _Cached(fp, build_provider(self.ctx, row), row)
            self._cache[mailbox_id] = cached
        return cached.provider, cached.row

    async def close(self) -> None:
        for cached in self._cache.values():
            try:
                await cached.provider.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("provider close failed", exc_info=True)
        self._cache.clear()


class Dispatcher:
    def __init__(self, ctx: Context, providers: ProviderPool | None = None) -> None:
        self.ctx = ctx
        self.cfg = ctx.settings.dispatch
        self.providers = providers or ProviderPool(ctx)
        self.worker = new_id("wrk", 12)
        # one lane per mailbox, as wide as its provider's connection pool: a claimed message has a
        # connection to go to at once, so the send timeout never counts a wait for one
        self.lanes: Lanes[sqlite3.Row] = Lanes("dispatch", claim=self._claim, lane_of=lambda row: row["mailbox_id"] or "",
                                               work=lambda row: outcomes.delivery(ctx, row, self._attempt(row)),
                                               total=self.cfg.batch_size)

    @property
    def stopping(self) -> bool:
        return self.lanes.stopping

    # scheduling --------------------------------------------------------------------------
    def kick(self) -> None:
        """Claim now (or right after the claim under way): accepted mail is attempted at once."""
        self.lanes.kick()

    async def tick(self) -> None:
        """The scheduler's poll: mail that became due (retries, scheduled sends) starts if its lane has room."""
        self.lanes.kick()

    async def drain(self, timeout: float) -> None:
        if not await self.lanes.drain(timeout):
            log.warning("dispatch did not finish within %.0fs; leases will be released at start-up", timeout)

    async def run_once(self) -> int:
        """Attempt everything due now, lane by lane, and wait for it; how many attempts started."""
        return await self.lanes.run_until_idle()

    async def _claim(self, busy: dict[str, int], room: int) -> list[sqlite3.Row]:
        now = self.ctx.clock.now()
        claimed: list[sqlite3.Row] = await self.ctx.store.write(
            rows.claim_due, self.worker, now, now + self.cfg.lease_seconds, room,
            max(1, self.cfg.concurrency_per_mailbox), busy)
        return claimed

    async def _attempt(self, row: sqlite3.Row) -> None:
        store, clock, msg_id = self.ctx.store, self.ctx.clock, row["id"]
        attempt = row["attempts"] + 1
        if self.stopping:
            await store.write(rows.record_deferred, msg_id, self.worker, clock.now(), "", clock.now())
            return
        try:
            got = await self.providers.get(row["mailbox_id"]) if row["mailbox_id"] else None
        except Exception as exc:  # noqa: BLE001 - a mailbox that cannot be opened fails its mail, visibly
            log.exception("cannot open mailbox %s", row["mailbox_id"])
            await store.write(rows.record_failed, msg_id, self.worker, attempt,
                              redact(f"mailbox cannot be used: {type(exc).__name__}: {exc}"), clock.now())
            return
        if got is None:
            await store.write(rows.record_failed, msg_id, self.worker, attempt, "mailbox was removed", clock.now())
            return
        provider, mailbox = got
        quota, day = mailbox["daily_quota"], utc_day(clock.now())
        if quota and not await store.write(rows.reserve_quota, mailbox["id"], day, quota):
            await store.write(rows.record_deferred, msg_id, self.worker, next_utc_midnight(clock.now()),
                              f"daily quota of {quota} reached; deferred to the next window", clock.now())
            return
        try:
            result = await self._send_in_lane(provider, mailbox, row)
        except ProviderError as exc:
            if quota:
                await store.write(rows.release_quota, mailbox["id"], day)
            await self._failed(row, attempt, exc)
            return
        if result is None:
            await store.write(rows.record_failed, msg_id, self.worker, attempt, "message body is gone", clock.now())
            return
        await store.write(rows.record_sent, msg_id, self.worker, attempt, redact(result.response), clock.now(),
                          result.refused)

    async def _send_in_lane(self, provider: Provider, mailbox: sqlite3.Row, row: sqlite3.Row) -> SendResult | None:
        try:
            return await self._send(provider, mailbox, row["id"])
        finally:
            self.lanes.release(row)  # the connection is free: the lane claims its next while this outcome is written

    async def _send(self, provider: Provider, mailbox: sqlite3.Row, msg_id: str) -> SendResult | None:
        """One attempt; every failure comes back as a classified ProviderError."""
        try:
            outgoing = self._build(msg_id, mailbox)
            if outgoing is None:
                return None
            async with asyncio.timeout(self.cfg.send_timeout + 5):  # unlike wait_for, no task per send
                return await provider.send(outgoing)
        except ProviderError:
            raise
        except TimeoutError:
            raise ProviderError("send timed out", code="timeout", retryable=True) from None
        except CryptoError as exc:
            raise ProviderError(exc.message, code=exc.code, retryable=False) from None
        except Exception as exc:  # noqa: BLE001 - an unexpected provider bug must not kill the loop
            log.exception("unexpected error sending %s", msg_id)
            raise ProviderError(f"{type(exc).__name__}: {exc}", code="unexpected", retryable=True) from None

    def _build(self, msg_id: str, mailbox: sqlite3.Row) -> OutgoingMessage | None:
        sealed = self.ctx.store.read(rows.body_of, msg_id)
        if sealed is None:
            return None
        payload = self.ctx.sealer.open(sealed, table="message_bodies", column="payload", row_id=msg_id)
        from js2mail.service.messages import from_header

        try:
            req = mail.deserialize(payload)
            domain = mail.ascii_domain(mailbox["address"].rsplit("@", 1)[1])
            email = mail.build_email(req, from_header=from_header(req, mailbox), message_id=f"<{msg_id}@{domain}>",
                                     date=self.ctx.clock.now())
            return OutgoingMessage(msg_id, mail.wire_address(mailbox["address"]), mail.envelope_recipients(req),
                                   email)
        except Exception as exc:  # noqa: BLE001 - building again gives the same answer: fail at once, no retries
            log.exception("cannot build message %s", msg_id)
            raise ProviderError(f"message cannot be built: {type(exc).__name__}: {exc}", code="build_failed",
                                retryable=False) from None

    async def _failed(self, row: sqlite3.Row, attempt: int, exc: ProviderError) -> None:
        store, now, msg_id = self.ctx.store, self.ctx.clock.now(), row["id"]
        error = redact(f"{exc.code}: {exc.message}" if exc.code not in exc.message else exc.message)
        refused = exc.refused if isinstance(exc, RecipientsRefused) else Refused()
        if exc.needs_reconnect:
            await store.write(_dead_grant, row["mailbox_id"], msg_id, self.worker, attempt, error, now)
            return
        if exc.defer_until is not None:
            await store.write(rows.record_deferred, msg_id, self.worker, max(exc.defer_until, now), error, now)
            return
        next_at = next_attempt_at(attempt, self.cfg.retry_schedule, now, exc.retry_after) if exc.retryable else None
        if next_at is None:
            await store.write(rows.record_failed, msg_id, self.worker, attempt, error, now, refused)
        else:
            await store.write(rows.record_retry, msg_id, self.worker, attempt, error, next_at, now, refused)


def _dead_grant(conn: sqlite3.Connection, mailbox_id: str, msg_id: str, worker: str, attempt: int, error: str,
                now: float) -> None:
    mailbox_rows.set_status(conn, mailbox_id, "needs_reconnect", error)
    rows.record_failed(conn, msg_id, worker, attempt, error, now)
    rows.fail_active_for_mailbox(conn, mailbox_id, f"mailbox needs to be reconnected: {error}", now)
