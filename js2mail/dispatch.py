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
from js2mail.outcomes import Recorded
from js2mail.providers.base import OutgoingMessage, Provider, RecipientsRefused, Refused, SendResult
from js2mail.providers.registry import spec_of
from js2mail.redact import RedactingFilter, redact
from js2mail.retry import next_attempt_at, next_utc_midnight, utc_day
from js2mail.service import Context
from js2mail.store import catalog as catalog_rows
from js2mail.store import mailboxes as mailbox_rows
from js2mail.store import messages as rows

log = logging.getLogger("js2mail.dispatch")
log.addFilter(RedactingFilter())  # provider errors and tracebacks echo recipient addresses


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    provider: Provider
    row: sqlite3.Row
    version: int | None  # the catalog version `row` was read at


class ProviderPool:
    """One provider per mailbox, with its mailbox row. The row is read again only when the catalog
    version (store.catalog: it moves whenever any mailbox row changes, in any process) is not the one
    it was read at; the provider is rebuilt only when the row's settings, secret or status changed."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cache: dict[str, _Cached] = {}
        self.version: int | None = None  # the newest catalog version seen; None: read every time

    def at_version(self, version: int) -> None:
        """The catalog version read in the transaction that claimed the messages about to be sent."""
        self.version = version

    async def get(self, mailbox_id: str) -> tuple[Provider, sqlite3.Row] | None:
        cached = self._cache.get(mailbox_id)
        if cached is not None and cached.version is not None and cached.version == self.version:
            return cached.provider, cached.row
        version = self.version
        row = self.ctx.store.read(mailbox_rows.by_id, mailbox_id)
        if row is None:
            return None
        # A Graph provider re-saves its own rotating token cache; that alone must not rebuild it.
        secret = None if spec_of(row["provider"]).rotates_own_secret else row["secret"]
        fp = (row["settings"], secret, row["provider"], row["status"])
        if cached is None or cached.fingerprint != fp:
            from js2mail.service.mailboxes import build_provider

            stale, cached = cached, _Cached(fp, build_provider(self.ctx, row), row, version)
            self._cache[mailbox_id] = cached  # before awaiting: the mailbox's other sends use the new one
            if stale is not None:
                await stale.provider.close()
        else:
            cached.row, cached.version = row, version
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
        version, claimed = await self.ctx.store.write(
            _claim_with_bodies, self.worker, now, now + self.cfg.lease_seconds, room,
            max(1, self.cfg.concurrency_per_mailbox), busy)
        self.providers.at_version(version)
        return claimed

    async def _attempt(self, row: sqlite3.Row) -> Recorded | None:
        """Attempt one claimed message and record the outcome; what was recorded (None: read it back)."""
        store, clock, msg_id = self.ctx.store, self.ctx.clock, row["id"]
        attempt = row["attempts"] + 1
        if self.stopping:
            await store.write(rows.record_deferred, msg_id, self.worker, clock.now(), "", clock.now())
            return None
        try:
            got = await self.providers.get(row["mailbox_id"]) if row["mailbox_id"] else None
        except Exception as exc:  # noqa: BLE001 - a mailbox that cannot be opened fails its mail, visibly
            log.exception("cannot open mailbox %s", row["mailbox_id"])
            await store.write(rows.record_failed, msg_id, self.worker, attempt,
                              redact(f"mailbox cannot be used: {type(exc).__name__}: {exc}"), clock.now())
            return None
        if got is None:
            await store.write(rows.record_failed, msg_id, self.worker, attempt, "mailbox was removed", clock.now())
            return None
        provider, mailbox = got
        quota = mailbox["daily_quota"]
        day = utc_day(clock.now()) if quota else ""
        if quota and not await store.write(rows.reserve_quota, mailbox["id"], day, quota):
            reason = f"daily quota of {quota} reached; deferred to the next window"
            if not await store.write(rows.record_deferred, msg_id, self.worker, next_utc_midnight(clock.now()),
                                     reason, clock.now()):
                return None
            return Recorded("queued" if row["attempts"] == 0 else "retrying", row["attempts"], mailbox["provider"],
                            last_error=reason)
        try:
            result = await self._send_in_lane(provider, mailbox, row)
        except ProviderError as exc:
            if quota:
                await store.write(rows.release_quota, mailbox["id"], day)
            return await self._failed(row, attempt, exc, mailbox["provider"])
        if result is None:
            await store.write(rows.record_failed, msg_id, self.worker, attempt, "message body is gone", clock.now())
            return None
        response = redact(result.response)
        if not await store.write(rows.record_sent, msg_id, self.worker, attempt, response, clock.now(), result.refused):
            return None
        return Recorded("sent", attempt, mailbox["provider"], provider_response=response[:500])

    async def _send_in_lane(self, provider: Provider, mailbox: sqlite3.Row, row: sqlite3.Row) -> SendResult | None:
        try:
            return await self._send(provider, mailbox, row)
        finally:
            self.lanes.release(row)  # the connection is free: the lane claims its next while this outcome is written

    async def _send(self, provider: Provider, mailbox: sqlite3.Row, row: sqlite3.Row) -> SendResult | None:
        """One attempt; every failure comes back as a classified ProviderError."""
        msg_id = row["id"]
        try:
            outgoing = self._build(row, mailbox)
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

    def _build(self, row: sqlite3.Row, mailbox: sqlite3.Row) -> OutgoingMessage | None:
        msg_id, sealed = row["id"], row["payload"]  # read with the claim
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

    async def _failed(self, row: sqlite3.Row, attempt: int, exc: ProviderError, provider: str) -> Recorded | None:
        store, now, msg_id = self.ctx.store, self.ctx.clock.now(), row["id"]
        error = redact(f"{exc.code}: {exc.message}" if exc.code not in exc.message else exc.message)
        refused = exc.refused if isinstance(exc, RecipientsRefused) else Refused()
        if exc.needs_reconnect:
            await store.write(_dead_grant, row["mailbox_id"], msg_id, self.worker, attempt, error, now)
            return None
        if exc.defer_until is not None:
            await store.write(rows.record_deferred, msg_id, self.worker, max(exc.defer_until, now), error, now)
            return None
        next_at = next_attempt_at(attempt, self.cfg.retry_schedule, now, exc.retry_after) if exc.retryable else None
        if next_at is None:
            recorded = await store.write(rows.record_failed, msg_id, self.worker, attempt, error, now, refused)
        else:
            recorded = await store.write(rows.record_retry, msg_id, self.worker, attempt, error, next_at, now, refused)
        if not recorded:
            return None
        return Recorded("failed" if next_at is None else "retrying", attempt, provider, last_error=error[:1000])


def _claim_with_bodies(conn: sqlite3.Connection, worker: str, now: float, lease_until: float, limit: int,
                       per_lane: int, busy: dict[str, int]) -> tuple[int, list[sqlite3.Row]]:
    """The claim, with each message's sealed body, and the catalog version in the same transaction:
    a mailbox row cached at that version is the row as these messages were claimed."""
    return catalog_rows.version(conn), rows.claim_due(conn, worker, now, lease_until, limit, per_lane, busy,
                                                      with_body=True)


def _dead_grant(conn: sqlite3.Connection, mailbox_id: str, msg_id: str, worker: str, attempt: int, error: str,
                now: float) -> None:
    mailbox_rows.set_status(conn, mailbox_id, "needs_reconnect", error)
    rows.record_failed(conn, msg_id, worker, attempt, error, now)
    rows.fail_active_for_mailbox(conn, mailbox_id, f"mailbox needs to be reconnected: {error}", now)
