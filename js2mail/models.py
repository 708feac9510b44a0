"""Plain data shared by the service, CLI, HTTP and MCP layers. No I/O here."""

from __future__ import annotations

import base64
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MESSAGE_STATUSES = ("queued", "sending", "retrying", "sent", "failed", "cancelled", "dry_run")


BASE62 = string.ascii_letters + string.digits


def random_base62(length: int) -> str:
    """`length` characters of [A-Za-z0-9] from the OS's CSPRNG: key parts, form ids, webhook secrets."""
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_id(prefix: str, length: int = 20) -> str:
    """`prefix_` + `length` base32 characters (5 bits each) from the OS's CSPRNG."""
    return f"{prefix}_" + base64.b32encode(secrets.token_bytes(length * 5 // 8 + 1)).decode()[:length].lower()


def media_type(content_type: str | None) -> str:
    """`Content-Type: Application/JSON; charset=utf-8` → `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_media(content_type: str | None) -> bool:
    media = media_type(content_type)
    return media == "application/json" or media.endswith("+json")


def new_sorted_id(prefix: str, now: float | None = None) -> str:
    """`prefix_` + 32 hex digits: 48 bits of milliseconds since 1970, then 80 random bits, like a
    ULID. Ids sort by creation time, so new rows append to the end of their index instead of
    landing on a random page."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{prefix}_{ms:012x}{secrets.token_hex(10)}"


def camel(name: str) -> str:
    """`webhook_deliveries` → `webhookDeliveries`: JSON keys are camelCase everywhere js2mail prints JSON."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def iso(ts: float | None) -> str | None:
    """Unix seconds to ISO 8601 UTC with a Z, as every API field shows time."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key's (workspace, application)."""

    key_id: str
    prefix: str
    workspace_id: str
    application_id: str
    workspace: str
    application: str


@dataclass(frozen=True)
class Scope:
    workspace_id: str
    application_id: str
    workspace: str
    application: str
