"""Domain errors with stable codes; HTTP statuses live only in `js2mail.http.errors`.

    Js2MailError                    code, message, details, hint
    ├── BadRequest                  malformed input that is not a validation problem (bad JSON, ...)
    ├── ValidationError             well-formed input breaking a rule (422)
    ├── Unauthorized                missing, malformed, unknown or revoked credentials
    ├── Forbidden                   allowed credentials, refused action (form origin, ...)
    ├── NotFound                    unknown id, or another tenant's id
    ├── Conflict                    state conflict (idempotent request still in flight, ...)
    ├── TooLarge                    size caps
    ├── UnsupportedMediaType        content type we do not read
    ├── RateLimited                 retry_after seconds
    │   └── QueueFull               the application's queue is at its cap (messages or bytes)
    ├── ServiceUnavailable          busy right now (database write lock, request-body budget); retry_after
    ├── ConfigError                 bad config file / environment
    ├── CryptoError                 master key missing, envelope cannot be opened
    └── ProviderError               a mailbox provider refused or failed; retryable or not

The `kind` class attribute is what the HTTP edge maps to a status code.
"""

from __future__ import annotations

from typing import Any


class Js2MailError(Exception):
    kind = "error"
    code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or []
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        if self.hint:
            body["hint"] = self.hint
        return body


class BadRequest(Js2MailError):
    kind = "bad_request"
    code = "bad_request"


class ValidationError(Js2MailError):
    kind = "validation"
    code = "validation_error"


class Unauthorized(Js2MailError):
    kind = "unauthorized"
    code = "unauthorized"


class Forbidden(Js2MailError):
    kind = "forbidden"
    code = "forbidden"


class NotFound(Js2MailError):
    kind = "not_found"
    code = "not_found"


class Conflict(Js2MailError):
    kind = "conflict"
    code = "conflict"


class TooLarge(Js2MailError):
    kind = "too_large"
    code = "too_large"


class UnsupportedMediaType(Js2MailError):
    kind = "unsupported_media_type"
    code = "unsupported_media_type"


class RateLimited(Js2MailError):
    kind = "rate_limited"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class QueueFull(RateLimited):
    code = "queue_full"

    @classmethod
    def for_caps(cls, caps: Any) -> QueueFull:
        return cls(f"this application already has as many messages waiting to be sent as it may "
                   f"({caps.messages} messages or {caps.bytes} bytes); wait until some are sent, or cancel some",
                   retry_after=60)


class ServiceUnavailable(Js2MailError):
    kind = "unavailable"
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


def is_database_busy(exc: BaseException) -> bool:
    """SQLite's SQLITE_BUSY/SQLITE_LOCKED: another connection holds the lock we waited for."""
    import sqlite3

    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def database_busy(exc: BaseException | None = None) -> ServiceUnavailable:
    return ServiceUnavailable("The database is busy; retry shortly.", code="database_busy", retry_after=1)


class ConfigError(Js2MailError):
    kind = "config"
    code = "config_error"


class CryptoError(Js2MailError):
    kind = "crypto"
    code = "crypto_error"


class ProviderError(Js2MailError):
    """A send (or connect) through a mailbox provider failed.

    retryable      transient: network, timeout, SMTP 4xx, HTTP 408/429/5xx
    retry_after    seconds the provider asked us to wait (pushes the next attempt later, never earlier)
    needs_reconnect the grant/credentials are dead: mark the mailbox, fail its mail permanently
    defer_until    unix time: quota window exhausted, try again then without counting an attempt
    """

    kind = "provider"
    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        needs_reconnect: bool = False,
        defer_until: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.retryable = retryable
        self.retry_after = retry_after
        self.needs_reconnect = needs_reconnect
        self.defer_until = defer_until
