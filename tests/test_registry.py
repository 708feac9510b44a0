"""The provider registry: one entry per kind, and the facts the rest of the code reads from it (#15)."""

from __future__ import annotations

import json

import pytest

from js2mail.config import Settings
from js2mail.providers import registry
from js2mail.providers.registry import PROVIDERS, ProviderParts, spec_of


async def _no_save(blob: bytes) -> None:
    raise AssertionError("not expected")


SECRETS = {
    "smtp": (b"pw", {"host": "127.0.0.1", "port": 2525, "username": "u", "security": "starttls", "tls_ca": None}),
    "gmail": (json.dumps({"client_id": "c", "client_secret": "s", "refresh_token": "r"}).encode(), {}),
    "microsoft": (b"", {"client_id": "c", "tenant": "common"}),
}


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
async def test_every_kind_builds_its_provider_with_the_registered_cap(kind: str) -> None:
    secret, settings = SECRETS[kind]
    spec = spec_of(kind)
    provider = spec.build(ProviderParts("mbx_1", "shop@example.com", settings, secret, Settings(), _no_save))
    try:
        assert provider.kind == kind
        assert provider.max_message_bytes == spec.max_message_bytes
    finally:
        await provider.close()


def test_an_unknown_kind_is_an_error_not_a_default() -> None:
    with pytest.raises(ValueError, match="unknown provider 'fax'"):
        spec_of("fax")


def test_public_settings_never_show_what_is_not_listed() -> None:
    shown = registry.public_settings("smtp", {"host": "h", "password": "p", "client_secret": "x"})
    assert shown == {"host": "h"}
    assert registry.public_settings("gmail", {"client_secret": "x"}) == {}
