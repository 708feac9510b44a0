"""Every provider kind js2mail can send through, and what the rest of the code needs to know about
it, in one table: how to build it, its message size cap, its default daily quota, the settings it
may show, and how it behaves. Adding a provider is one module with a `from_parts` factory, one
entry here, its CLI `mailboxes add` command and its docs. Pure: provider modules (and their
libraries) are imported only when a provider is built."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from js2mail.config import Settings
    from js2mail.providers.base import Provider


@dataclass(frozen=True)
class ProviderParts:
    """Everything a factory needs, already looked up and opened: it does no I/O of its own."""

    mailbox_id: str
    address: str
    settings: dict[str, Any]  # the mailbox's public settings (host, port, client_id, …)
    secret: bytes | None  # opened: an SMTP password, a Google grant, an MSAL token cache
    config: Settings
    save_secret: Callable[[bytes], Awaitable[None]]  # for providers that rotate their own secret


@dataclass(frozen=True)
class ProviderSpec:
    kind: str
    label: str  # how messages name it
    factory: str  # "module:function" taking ProviderParts, imported when a provider is built
    max_message_bytes: int  # the raw RFC 5322 size it accepts (an SMTP server may announce less)
    default_daily_quota: int | None  # applied when `mailboxes add` is given none
    public_settings: tuple[str, ...]  # settings shown by `mailboxes list` and the API
    eai: Literal["yes", "no", "if_offered"]  # non-ASCII local parts: always, never, if the server offers SMTPUTF8
    drops_bcc: bool  # True: the Bcc header must not travel (SMTP); False: the API reads it and strips it
    rotates_own_secret: bool = False  # it re-saves its secret itself (MSAL's cache): a changed secret needs no rebuild

    def build(self, parts: ProviderParts) -> Provider:
        module, _, function = self.factory.partition(":")
        factory: Callable[[ProviderParts], Provider] = getattr(importlib.import_module(module), function)
        return factory(parts)


SMTP = ProviderSpec("smtp", "SMTP", "js2mail.providers.smtp:from_parts", 25 * 1024 * 1024, None,
                    ("host", "port", "username", "security", "tls_ca", "insecure_allow_plaintext", "smtputf8"),
                    eai="if_offered", drops_bcc=True)
GMAIL = ProviderSpec("gmail", "Gmail", "js2mail.providers.gmail:from_parts", 36_700_160, 500, (),
                     eai="yes", drops_bcc=False)
MICROSOFT = ProviderSpec("microsoft", "Microsoft Graph", "js2mail.providers.graph:from_parts", 4_000_000 // 4 * 3,
                         10_000, ("tenant", "client_id"), eai="no", drops_bcc=False, rotates_own_secret=True)

PROVIDERS: dict[str, ProviderSpec] = {spec.kind: spec for spec in (SMTP, GMAIL, MICROSOFT)}


def spec_of(kind: str) -> ProviderSpec:
    """The spec of a provider kind; a kind this build does not know is an error, never a default."""
    try:
        return PROVIDERS[kind]
    except KeyError:
        raise ValueError(f"unknown provider {kind!r}; this js2mail knows {', '.join(PROVIDERS)}") from None


def public_settings(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key in spec_of(kind).public_settings}
