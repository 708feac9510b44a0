"""An unknown API-key prefix costs what a known prefix with a wrong secret costs: neither reads the
database once the catalog is loaded, so answer times do not reveal which prefixes exist (#18)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from js2mail import apikeys
from js2mail.config import load_settings
from js2mail.service import Context, open_context
from js2mail.service.keys import authenticate, create_key, revoke_key


@pytest.fixture
def ctx(home: Path) -> Iterator[Context]:
    context = open_context(load_settings(home))
    yield context
    context.close()


def _counting_reads(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = ctx.store.read

    def read(fn: Any, *args: Any) -> Any:
        reads.append(fn.__name__)
        return real(fn, *args)

    monkeypatch.setattr(ctx.store, "read", read)
    return reads


def test_known_and_unknown_prefixes_take_the_same_path(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    created = create_key(ctx, "acme", "shop")
    known = apikeys.parse(created.key)
    assert known is not None
    assert authenticate(ctx, created.key) is not None  # loads the catalog
    reads = _counting_reads(ctx, monkeypatch)
    wrong_secret = apikeys.format_key(apikeys.ParsedKey(known.prefix, "x" * 32))
    for _ in range(50):
        unknown = apikeys.format_key(apikeys.ParsedKey(apikeys.random_base62(8), "x" * 32))
        assert authenticate(ctx, unknown) is None
        assert authenticate(ctx, wrong_secret) is None
    assert [r for r in reads if r != "version"] == []  # only the catalog version check, never a key lookup


def test_a_revoked_key_is_refused_at_once(ctx: Context) -> None:
    created = create_key(ctx, "acme", "shop")
    assert authenticate(ctx, created.key) is not None
    revoke_key(ctx, created.info["prefix"])
    assert authenticate(ctx, created.key) is None
    fresh = create_key(ctx, "acme", "shop")
    assert authenticate(ctx, fresh.key) is not None
