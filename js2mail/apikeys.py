"""API key format, generation and verification (pure; storage lives in store/apikeys.py).

``js2_live_<prefix:8>_<secret:32>``, both parts base62 from `secrets`, so `_` splits unambiguously.
The prefix is stored plain under a unique index for lookup; the secret only as SHA-256 (it holds
~190 bits from a CSPRNG, so a fast hash is right), compared in constant time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from js2mail.models import random_base62

KEY_PREFIX = "js2_live_"
PREFIX_LEN = 8
SECRET_LEN = 32
KEY_RE = re.compile(r"js2_live_([A-Za-z0-9]{8})_([A-Za-z0-9]{32})")


@dataclass(frozen=True)
class ParsedKey:
    prefix: str
    secret: str



def generate() -> tuple[str, ParsedKey]:
    parsed = ParsedKey(random_base62(PREFIX_LEN), random_base62(SECRET_LEN))
    return format_key(parsed), parsed


def format_key(parsed: ParsedKey) -> str:
    return f"{KEY_PREFIX}{parsed.prefix}_{parsed.secret}"


def parse(key: str) -> ParsedKey | None:
    """The key's parts, or None for anything that is not exactly a js2mail key."""
    match = KEY_RE.fullmatch(key)
    return ParsedKey(match.group(1), match.group(2)) if match else None


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def from_headers(x_api_key: str | None, authorization: str | None) -> str | None:
    """X-Api-Key wins; else `Authorization: Bearer KEY`."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
