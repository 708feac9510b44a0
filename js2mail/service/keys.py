"""API keys: create, list, revoke, rotate, authenticate."""

from __future__ import annotations

import hmac
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from js2mail import apikeys
from js2mail.errors import NotFound, ValidationError
from js2mail.models import Principal, Scope, iso, new_id
from js2mail.service import Context, check_slug
from js2mail.service.catalog import catalog_of
from js2mail.store import apikeys as key_rows
from js2mail.store import tenancy

_DUMMY_HASH = apikeys.hash_secret("0" * apikeys.SECRET_LEN)
TOUCH_EVERY = 60.0  # seconds between last_used_at writes per key: one write per request would be waste


@dataclass(frozen=True)
class CreatedKey:
    key: str
    info: dict[str, Any]


def ensure_scope(ctx: Context, workspace: str, application: str) -> Scope:
    check_slug(workspace, "workspace")
    check_slug(application, "application")
    now = ctx.clock.now()

    def run(conn: sqlite3.Connection) -> Scope:
        ws_id, _ = tenancy.ensure_workspace(conn, workspace, now)
        app_id, _ = tenancy.ensure_application(conn, ws_id, application, now)
        return Scope(ws_id, app_id, workspace, application)

    return ctx.store.write_sync(run)


def key_info(row: sqlite3.Row, now: float) -> dict[str, Any]:
    revoked_at = row["revoked_at"]
    return {
        "prefix": row["prefix"],
        "workspace": row["workspace"],
        "application": row["application"],
        "name": row["name"],
        "createdAt": iso(row["created_at"]),
        "lastUsedAt": iso(row["last_used_at"]),
        "revoked": revoked_at is not None and revoked_at <= now,
        "revokesAt": iso(revoked_at) if revoked_at is not None and revoked_at > now else None,
        "revokedAt": iso(revoked_at) if revoked_at is not None and revoked_at <= now else None,
    }


def create_key(ctx: Context, workspace: str, application: str, name: str | None = None) -> CreatedKey:
    scope = ensure_scope(ctx, workspace, application)
    now = ctx.clock.now()

    def run(conn: sqlite3.Connection) -> tuple[str, sqlite3.Row]:
        while True:
            key, parsed = apikeys.generate()
            if key_rows.by_prefix(conn, parsed.prefix) is None:
                break
        key_rows.insert(
            conn,
            key_id=new_id("key"),
            prefix=parsed.prefix,
            secret_hash=apikeys.hash_secret(parsed.secret),
            workspace_id=scope.workspace_id,
            application_id=scope.application_id,
            name=name,
            now=now,
        )
        row = key_rows.by_prefix(conn, parsed.prefix)
        assert row is not None
        return key, row

    key, row = ctx.store.write_sync(run)
    catalog_of(ctx).changed()
    return CreatedKey(key, key_info(row, now))


def list_keys(ctx: Context, workspace: str | None = None, application: str | None = None) -> list[dict[str, Any]]:
    now = ctx.clock.now()
    return [key_info(row, now) for row in ctx.store.read(key_rows.listing, workspace, application)]


def _normalize_prefix(prefix: str) -> str:
    """Accept the bare prefix, `js2_live_PREFIX`, or a whole key."""
    value = prefix.strip()
    if value.startswith(apikeys.KEY_PREFIX):
        value = value[len(apikeys.KEY_PREFIX) :].split("_", 1)[0]
    return value


def revoke_key(ctx: Context, prefix: str) -> dict[str, Any]:
    bare = _normalize_prefix(prefix)
    now = ctx.clock.now()

    def run(conn: sqlite3.Connection) -> sqlite3.Row:
        if key_rows.revoke(conn, bare, now) == 0:
            raise NotFound(f"no API key with prefix {bare!r}", code="key_not_found")
        row = key_rows.by_prefix(conn, bare)
        assert row is not None
        return row

    info = key_info(ctx.store.write_sync(run), now)
    catalog_of(ctx).changed()
    return info


def rotate_key(ctx: Context, prefix: str, grace_seconds: float = 0.0) -> CreatedKey:
    """A new key with the same scope; the old one is revoked now, or when the grace period ends."""
    grace_seconds = check_grace(grace_seconds)
    bare = _normalize_prefix(prefix)
    old = ctx.store.read(key_rows.by_prefix, bare)
    now = ctx.clock.now()
    if old is None:
        raise NotFound(f"no API key with prefix {bare!r}", code="key_not_found")
    if old["revoked_at"] is not None and old["revoked_at"] <= now:
        raise NotFound(f"API key {bare!r} is already revoked", code="key_revoked")
    created = create_key(ctx, old["workspace"], old["application"], old["name"])
    new_prefix = created.info["prefix"]
    ctx.store.write_sync(key_rows.revoke, bare, now + grace_seconds, new_prefix)
    catalog_of(ctx).changed()
    return created


def authenticate(ctx: Context, key: str | None) -> Principal | None:
    """The caller's principal, or None. Unknown, malformed and revoked keys are indistinguishable."""
    parsed = apikeys.parse(key) if key else None
    if parsed is None:
        return None
    row = _lookup(ctx, parsed.prefix)
    digest = apikeys.hash_secret(parsed.secret)
    if row is None:
        hmac.compare_digest(digest, _DUMMY_HASH)
        return None
    if not hmac.compare_digest(digest, row["secret_hash"]):
        return None
    now = ctx.clock.now()
    if row["revoked_at"] is not None and row["revoked_at"] <= now:
        return None
    last = row["last_used_at"]
    if last is None or now - last > TOUCH_EVERY:
        touched = ctx.keys_touched
        if now - touched.get(row["id"], 0.0) > TOUCH_EVERY:
            touched[row["id"]] = now
            ctx.store.write_nowait(key_rows.touch, row["id"], now)
    return Principal(
        key_id=row["id"],
        prefix=row["prefix"],
        workspace_id=row["workspace_id"],
        application_id=row["application_id"],
        workspace=row["workspace"],
        application=row["application"],
    )


def _lookup(ctx: Context, prefix: str) -> sqlite3.Row | None:
    """The key row, through the per-process catalog cache."""
    return catalog_of(ctx).fresh().key(prefix)


MAX_GRACE = 365 * 86400.0  # a key or secret kept alive longer than a year after rotation is a mistake
_DURATION_HELP = "a duration from 0 to 365d, like 90s, 30m, 24h or 7d"


def parse_duration(text: str) -> float:
    """'90s', '15m', '24h', '7d' or plain seconds: finite, from 0 to MAX_GRACE."""
    value = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(value[:-1]) * units[value[-1]] if value and value[-1] in units else float(value)
    except ValueError:
        raise ValidationError(f"{text!r} is not {_DURATION_HELP}", code="invalid_duration") from None
    return check_grace(seconds, shown=text)


def check_grace(seconds: float, *, shown: str | None = None) -> float:
    """A grace period, checked before anything is written: finite and from 0 to MAX_GRACE seconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            math.isfinite(seconds) and 0 <= seconds <= MAX_GRACE):
        raise ValidationError(f"{shown if shown is not None else seconds!r} is not {_DURATION_HELP}",
                              code="invalid_duration")
    return float(seconds)
