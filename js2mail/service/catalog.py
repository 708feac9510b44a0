"""A per-process cache of the rows every request reads and that rarely change: API keys by
prefix, and the mailbox each (application, from) pair resolves to.

The whole cache is dropped whenever the catalog version (`store.catalog`) moves, so a key
revoked or a mailbox disconnected by another process — the CLI, say — counts from the next
request on. The version itself is re-read at most once per `MAX_AGE` seconds, which under load
spreads one indexed read over several requests; a change is therefore seen within a
millisecond of its commit, as if the request had arrived that much earlier.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from js2mail.store import Store
from js2mail.store import apikeys as key_rows
from js2mail.store import catalog as catalog_rows

if TYPE_CHECKING:
    from js2mail.service import Context

MAX_AGE = 0.001
MAX_ENTRIES = 10_000  # per map; a process serving more keys or mailboxes than this just reads more


class Catalog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.version: int | None = None
        self.checked = float("-inf")
        self.keys: dict[str, sqlite3.Row] = {}
        self.keys_complete = False  # True when `keys` holds every key, so a miss needs no read
        self.mailboxes: dict[tuple[str, str | None], sqlite3.Row] = {}

    def fresh(self) -> Catalog:
        """Itself, after dropping everything if the catalog changed since it was filled."""
        now = time.monotonic()
        if now - self.checked >= MAX_AGE:
            current = self.store.read(catalog_rows.version)
            self.checked = now
            if current != self.version:
                self.keys.clear()
                self.keys_complete = False
                self.mailboxes.clear()
                self.version = current
        return self

    def changed(self) -> None:
        """This process changed the catalog: re-read the version at the next lookup."""
        self.checked = float("-inf")

    def key(self, prefix: str) -> sqlite3.Row | None:
        """The key row with this prefix, or None. The whole key table is loaded at once (up to
        `MAX_ENTRIES` keys), so an unknown prefix costs what a known one does — a dict lookup — and
        answer times do not tell an attacker which prefixes exist."""
        if not self.keys_complete:
            rows = self.store.read(key_rows.all_keys, MAX_ENTRIES + 1)
            if len(rows) <= MAX_ENTRIES:
                self.keys = {row["prefix"]: row for row in rows}
                self.keys_complete = True
            else:  # a very large key table: one indexed read per lookup, known or not
                return self.store.read(key_rows.by_prefix, prefix)  # type: ignore[no-any-return]
        return self.keys.get(prefix)

    def remember(self, rows: dict[Any, sqlite3.Row], key: Any, row: sqlite3.Row) -> None:
        if len(rows) >= MAX_ENTRIES:
            rows.clear()
        rows[key] = row


def catalog_of(ctx: Context) -> Catalog:
    catalog = ctx.catalog
    if catalog is None:
        catalog = ctx.catalog = Catalog(ctx.store)
    return catalog
