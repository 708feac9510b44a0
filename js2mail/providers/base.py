"""The one interface every mailbox provider implements.

A provider owns its connections (an SMTP session, an httpx client, a token) and reuses them across
sends. It raises `js2mail.errors.ProviderError` for every failure, already classified
(retryable or not, retry_after, needs_reconnect, defer_until), so the dispatcher never looks at
provider-specific exceptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from typing import Protocol

from js2mail.errors import ProviderError
from js2mail.mime import Rendered
from js2mail.redact import domains_of


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str  # our id, "msg_..."
    envelope_from: str  # bare address of the mailbox
    recipients: tuple[str, ...]  # every To, Cc and Bcc bare address
    email: Message | Rendered  # complete message; carries a Bcc header, which SMTP strips and APIs use


@dataclass(frozen=True)
class Refused:
    """Recipients the provider refused: how many, and their domains — never the addresses."""

    count: int = 0
    domains: tuple[str, ...] = ()

    @classmethod
    def of(cls, addresses: Iterable[str]) -> Refused:
        found = list(addresses)
        return cls(len(found), tuple(domains_of(found)))


@dataclass(frozen=True)
class SendResult:
    response: str  # the provider's answer, e.g. "250 2.0.0 Ok: queued as ABC" or "202 Accepted"
    provider_message_id: str | None = None
    refused: Refused = Refused()  # some recipients refused, the others accepted


class RecipientsRefused(ProviderError):
    """Every recipient was refused; `refused` says how many and at which domains."""

    def __init__(self, message: str, *, refused: Refused, retryable: bool, code: str = "recipients_refused") -> None:
        super().__init__(message, code=code, retryable=retryable)
        self.refused = refused


class Provider(Protocol):
    kind: str  # "smtp" | "gmail" | "microsoft"

    @property
    def max_message_bytes(self) -> int:
        """Raw RFC 5322 size limit this provider accepts."""
        ...

    async def send(self, message: OutgoingMessage) -> SendResult: ...

    async def close(self) -> None: ...
