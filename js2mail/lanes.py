"""Lanes: claimed work runs with bounded concurrency per lane (a mailbox, a webhook endpoint) and a
global cap, and a new claim goes out as soon as a slot frees — so one slow lane never holds up
another, and nothing waits in memory for a slot.

The claim itself is the caller's (one `UPDATE … RETURNING` with a lease): it is handed how many
items each lane has in flight here and how much room is left under the global cap, and must not
return more for a lane than its free slots. One pump claims at a time; wake-ups that arrive while a
claim is out (a finished item, a new message, a poll) coalesce into one more claim.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("js2mail.lanes")

Claim = Callable[[dict[str, int], int], Awaitable[list[T]]]  # (in flight per lane, room) -> claimed items


class Lanes(Generic[T]):
    def __init__(self, name: str, *, claim: Claim[T], lane_of: Callable[[T], str],
                 work: Callable[[T], Awaitable[None]], total: int) -> None:
        self.name = name
        self._claim = claim
        self._lane_of = lane_of
        self._work = work
        self.total = max(1, total)
        self.busy: dict[str, int] = {}  # slots held per lane (lanes with none are absent)
        self.started = 0
        self.stopping = False
        self._held: dict[int, str] = {}  # id(item) -> its lane, while it holds a slot
        self._running: set[asyncio.Task[None]] = set()  # items' tasks, until their last write is done
        self._pump: asyncio.Task[None] | None = None
        self._again = False

    @property
    def in_flight(self) -> int:
        return len(self._held)

    def kick(self) -> None:
        """Claim now (or right after the claim under way): due work starts as soon as it fits."""
        if self.stopping:
            return
        if self._pump is not None and not self._pump.done():
            self._again = True
            return
        self._pump = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        while not self.stopping:
            self._again = False
            room = self.total - len(self._held)
            if room <= 0:
                return  # the next item to finish kicks again
            try:
                items = await self._claim(dict(self.busy), room)
            except Exception:  # noqa: BLE001 - a failed claim is retried at the next kick or poll
                log.exception("%s: claiming due work failed", self.name)
                return
            for item in items:
                self._start(item)
            if not self._again:
                return

    def _start(self, item: T) -> None:
        lane = self._lane_of(item)
        self.busy[lane] = self.busy.get(lane, 0) + 1
        self._held[id(item)] = lane
        self.started += 1
        task = asyncio.get_running_loop().create_task(self._run(item))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def release(self, item: T) -> None:
        """The item's slot is free (its connection is): claim the lane's next while it records its outcome.
        Called at the latest when its work returns; again is a no-op."""
        lane = self._held.pop(id(item), None)
        if lane is None:
            return
        left = self.busy.pop(lane, 1) - 1
        if left:
            self.busy[lane] = left
        self.kick()

    async def _run(self, item: T) -> None:
        try:
            await self._work(item)
        except Exception:  # noqa: BLE001 - one item's bug must not stop its lane
            log.exception("%s: unexpected error in lane %s", self.name, self._lane_of(item) or "-")
        finally:
            self.release(item)

    def _pending(self) -> set[asyncio.Task[None]]:
        pending = set(self._running)
        if self._pump is not None and not self._pump.done():
            pending.add(self._pump)
        return pending

    async def run_until_idle(self) -> int:
        """Claim and work until nothing due fits any more and nothing is in flight; how many started."""
        before = self.started
        self.kick()
        while pending := self._pending():
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        return self.started - before

    async def drain(self, timeout: float) -> bool:
        """Stop claiming and wait for the work in flight; False if some was still running at the timeout."""
        self.stopping = True
        pending = self._pending()
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        return not pending
