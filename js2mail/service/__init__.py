"""The use cases the CLI, the HTTP API and MCP all call. `Context` carries what they need."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from js2mail import crypto
from js2mail.clock import Clock, SystemClock
from js2mail.config import Settings
from js2mail.errors import ConfigError, ValidationError
from js2mail.models import SLUG_RE
from js2mail.service.catalog import Catalog
from js2mail.store import Store, datakeys, events


@dataclass
class Context:
    settings: Settings
    store: Store
    sealer: crypto.Sealer
    clock: Clock = field(default_factory=SystemClock)
    key_source: str = ""
    master_key: crypto.MasterKey | None = None  # what `crypto rotate` wraps new data keys with
    catalog: Catalog | None = None  # the per-process cache of keys and mailbox resolutions (service.catalog)
    keys_touched: dict[str, float] = field(default_factory=dict)  # key id → when `last_used_at` was last written
    # Installed by the runtime in `serve`: wakes the dispatcher when a message is due now. None elsewhere
    # (the CLI, MCP): mail is then sent by the next `serve` scan.
    on_enqueued: Callable[[], None] | None = None
    held: list[Any] = field(default_factory=list)  # kept alive as long as the context (serve's lock)

    def close(self) -> None:
        self.store.close()


def check_slug(value: str, what: str) -> str:
    if not SLUG_RE.match(value or ""):
        raise ValidationError(
            f"{what} {value!r} is not a valid slug: use lowercase letters, digits and '-' (max 63)",
            code=f"invalid_{what}",
        )
    return value


def _store_for(settings: Settings) -> Store:
    return Store(
        settings.db_path,
        synchronous=settings.database.synchronous,
        busy_timeout_ms=settings.database.busy_timeout_ms,
    )


def _migrate(store: Store, settings: Settings) -> list[str]:
    """Bring the schema up to date; a file that is not an SQLite database is one clear error."""
    try:
        return store.migrate()
    except sqlite3.OperationalError as exc:
        store.close()
        raise ConfigError(f"cannot open the database {settings.db_path}: {exc}", code="database_unavailable") from exc
    except sqlite3.DatabaseError as exc:
        store.close()
        raise ConfigError(f"{settings.db_path} is not a js2mail database ({exc})", code="database_corrupt",
                          hint="restore it from a backup, or point --home / database.url elsewhere") from exc


def init_home(settings: Settings, *, use_keyring: bool = False, clock: Clock | None = None) -> dict[str, Any]:
    """Create the home, database and master key. Running it again changes nothing and says so."""
    now = (clock or SystemClock()).now()
    report: dict[str, Any] = {"home": str(settings.home), "database": str(settings.db_path), "created": []}
    if not settings.home.exists():
        settings.home.mkdir(parents=True, mode=0o700)
        report["created"].append("home")
    try:
        master = crypto.load_master_key(settings.home)
    except crypto.CryptoError as exc:
        if exc.code != "master_key_missing":
            raise
        master = crypto.create_master_key(settings.home, to_keyring=use_keyring)
        report["created"].append("master_key")
    report["masterKeySource"] = master.source
    if master.source == "file":
        report["masterKeyFile"] = str(settings.key_file)
    db_existed = settings.db_path.exists()
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    store = _store_for(settings)
    try:
        applied = _migrate(store, settings)
        if not db_existed:
            report["created"].append("database")
            os.chmod(settings.db_path, 0o600)
        elif applied:
            report["migrated"] = applied

        def ensure_data_key(conn: Any) -> bool:
            wrapped = datakeys.all_wrapped(conn)
            if wrapped:
                for key_id, blob in wrapped.items():
                    crypto.unwrap_data_key(master.key, key_id, blob)  # the master key must fit
                return False
            datakeys.insert(conn, 1, crypto.wrap_data_key(master.key, 1, crypto.generate_key()), now)
            return True

        if store.write_sync(ensure_data_key):
            report["created"].append("data_key")
    finally:
        store.close()
    report["changed"] = bool(report["created"] or report.get("migrated"))
    return report


def open_context(settings: Settings, *, clock: Clock | None = None) -> Context:
    if not settings.db_path.exists():
        raise ConfigError(
            f"no database at {settings.db_path}",
            code="not_initialized",
            hint="run `js2mail init` first (or set JS2MAIL_HOME / --home)",
        )
    master = crypto.load_master_key(settings.home)
    store = _store_for(settings)
    _migrate(store, settings)

    def load_keys() -> dict[int, bytes]:
        wrapped = store.read(datakeys.all_wrapped)
        return {key_id: crypto.unwrap_data_key(master.key, key_id, blob) for key_id, blob in wrapped.items()}

    ctx = Context(settings, store, crypto.Sealer(load_keys(), load_keys), clock or SystemClock(), master.source,
                  master_key=master)
    events.use_sealer(settings.db_path, ctx.sealer)  # webhook deliveries are sealed where they are written
    return ctx
