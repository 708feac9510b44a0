"""SMTP provider on aiosmtplib: pooled, authenticated sessions reused across sends.

- One `ssl.SSLContext` per provider, built once (a new default context per connection costs ~30 ms
  of CA loading: 27 vs 140 msg/s measured here).
- `security="starttls"` *requires* STARTTLS (`start_tls=True`): a server that does not offer it is
  an error, never a silent downgrade. `"tls"` is implicit TLS (465). `"none"` is plain (loopback
  relays only).
- Up to `connections` sessions per mailbox, each carrying one send at a time; a session idle for a
  while is checked with NOOP before reuse, so a server that dropped it costs a reconnect, never a
  blind resend (a failure after DATA is ambiguous and is reported, not repeated here).
- The dispatcher's lane for a mailbox is exactly `connections` wide (both are
  `[dispatch] concurrency_per_mailbox`) and frees a slot only once `send` has returned its
  session, so a dispatched send never waits here for a session: its timeout times the send,
  not a queue (tests/abuse/test_lanes.py, the burst on a small pool).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import aiosmtplib

from js2mail.errors import ProviderError
from js2mail.loopback import is_loopback_ip, resolves_only_to_loopback_async
from js2mail.mail import flatten
from js2mail.providers import registry
from js2mail.providers.base import OutgoingMessage, RecipientsRefused, Refused, SendResult
from js2mail.redact import redact

DEFAULT_MAX_BYTES = registry.SMTP.max_message_bytes  # until the server announces its SIZE
IDLE_CHECK_AFTER = 2.0  # seconds idle before a pooled session is checked with NOOP
AUTH_CODES = {530, 534, 535, 538}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    security: str  # "starttls" | "tls" | "none"
    tls_ca: str | None = None
    timeout: float = 30.0
    insecure_allow_plaintext: bool = False  # security "none" to a host that is not loopback


def _tls_failure(exc: BaseException) -> bool:
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(chain):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def classify_smtp_error(exc: BaseException) -> ProviderError:
    """Transient (network, timeouts, 4xx) vs permanent (5xx, auth, TLS, size) — one place, pure."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = Refused.of(r.recipient for r in exc.recipients)
        codes = sorted({r.code for r in exc.recipients})
        retryable = any(400 <= c < 500 for c in codes)
        text = (f"all {refused.count} recipient(s) refused at {', '.join(refused.domains)}: "
                + "; ".join(redact(f"{r.code} {r.message}") for r in exc.recipients))
        return RecipientsRefused(text, refused=refused, code="smtp_recipients_refused", retryable=retryable)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, f"{exc.code} {exc.message}".strip()
        if code in AUTH_CODES or isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return ProviderError(f"SMTP login refused: {text}", code="smtp_auth_failed", retryable=False)
        if code == 552:
            return ProviderError(f"message too large for the server: {text}", code="message_too_large",
                                 retryable=False)
        if 400 <= code < 500:
            return ProviderError(f"SMTP server answered {text}", code="smtp_transient", retryable=True)
        if 500 <= code < 600:
            return ProviderError(f"SMTP server answered {text}", code="smtp_rejected", retryable=False)
        return ProviderError(f"SMTP server answered {text}", code="smtp_error", retryable=True)
    if _tls_failure(exc):
        return ProviderError(f"TLS with the SMTP server failed: {exc}", code="smtp_tls_failed", retryable=False)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return ProviderError(f"the SMTP server does not support what this mailbox requires: {exc}",
                             code="smtp_not_supported", retryable=False)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, TimeoutError)):
        return ProviderError(f"SMTP connection problem: {type(exc).__name__}: {exc}", code="smtp_network",
                             retryable=True)
    return ProviderError(f"unexpected SMTP failure: {type(exc).__name__}: {exc}", code="smtp_error", retryable=True)


def _plaintext_refused(host: str) -> ProviderError:
    return ProviderError(f"refusing to send the SMTP password unencrypted to {host}, which is not loopback",
                         code="smtp_plaintext_auth_refused", retryable=False)


class SmtpProvider:
    kind = "smtp"

    def __init__(self, settings: SmtpSettings, *, connections: int = 4) -> None:
        if settings.security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security mode {settings.security!r}")
        self.settings = settings
        self.connections = max(1, connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._slots: asyncio.Semaphore | None = None
        self._tls: ssl.SSLContext | None = None
        self._server_limit: int | None = None
        self.smtputf8: bool | None = None  # whether the server advertises SMTPUTF8; known after a connect

    @property
    def max_message_bytes(self) -> int:
        return self._server_limit or DEFAULT_MAX_BYTES

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=self.settings.tls_ca)  # honours SSL_CERT_FILE
        return self._tls

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        plain_auth = s.security == "none" and bool(s.username) and not s.insecure_allow_plaintext
        if plain_auth and not await resolves_only_to_loopback_async(s.host, s.port):
            raise _plaintext_refused(s.host)
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout,
            use_tls=s.security == "tls", start_tls=s.security == "starttls",
            tls_context=self._context() if s.security != "none" else None,
        )
        try:
            await client.connect()
            if plain_auth and not is_loopback_ip(str((client.get_transport_info("peername") or ("",))[0])):
                raise _plaintext_refused(s.host)
            if s.username:
                await client.login(s.username, s.password or "")
            elif client.is_ehlo_or_helo_needed:  # learn the extensions (SIZE, SMTPUTF8) now, as login does
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except BaseException:
            client.close()
            raise
        self.smtputf8 = client.supports_extension("smtputf8")
        size = client.esmtp_extensions.get("size", "")
        if size.strip().isdigit() and int(size) > 0:
            self._server_limit = int(size)
        return client

    async def _session(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, since = self._idle.pop()
            if not client.is_connected:
                continue
            if time.monotonic() - since > IDLE_CHECK_AFTER:
                try:
                    await client.noop()
                except (TimeoutError, aiosmtplib.SMTPException, OSError):
                    client.close()
                    continue
            return client
        return await self._connect()

    async def send(self, message: OutgoingMessage) -> SendResult:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.connections)
        raw = flatten(message.email, drop_bcc=True)  # recipients are in the envelope; Bcc must not travel
        # RFC 6531: an address with a non-ASCII local part (in the envelope or a header) needs SMTPUTF8;
        # aiosmtplib refuses it (SMTPNotSupported, permanent) when the server does not offer it.
        utf8 = not (raw.isascii() and message.envelope_from.isascii() and all(r.isascii() for r in message.recipients))
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._session()
                if self._server_limit and len(raw) > self._server_limit:
                    raise ProviderError(f"message is {len(raw)} bytes; the server accepts at most {self._server_limit}",
                                        code="message_too_large", retryable=False)
                refused, reply = await client.sendmail(message.envelope_from, list(message.recipients), raw,
                                                       mail_options=["SMTPUTF8"] if utf8 else None)
            except BaseException as exc:
                if client is not None and client.is_connected and isinstance(exc, aiosmtplib.SMTPResponseException):
                    self._idle.append((client, time.monotonic()))  # aiosmtplib sent RSET: still usable
                elif client is not None:
                    client.close()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise classify_smtp_error(exc) from exc
            self._idle.append((client, time.monotonic()))
        return SendResult(response=reply.strip(), refused=Refused.of(refused))

    async def verify(self) -> str:
        try:
            client = await self._connect()
        except BaseException as exc:
            raise classify_smtp_error(exc) from exc
        try:
            mode = {"starttls": "STARTTLS", "tls": "implicit TLS", "none": "no TLS"}[self.settings.security]
            who = f", logged in as {self.settings.username}" if self.settings.username else ""
            return f"connected to {self.settings.host}:{self.settings.port} ({mode}{who})"
        finally:
            await self._quit(client)

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            await asyncio.wait_for(client.quit(), 5)
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(c) for c, _ in idle if c.is_connected), return_exceptions=True)


def from_parts(parts: registry.ProviderParts) -> SmtpProvider:
    """The registry's factory: an SMTP mailbox from its settings and sealed password."""
    s, dispatch = parts.settings, parts.config.dispatch
    return SmtpProvider(
        SmtpSettings(host=s["host"], port=int(s["port"]), username=s.get("username"),
                     password=parts.secret.decode() if parts.secret else None, security=s["security"],
                     tls_ca=s.get("tls_ca"), timeout=dispatch.send_timeout,
                     insecure_allow_plaintext=bool(s.get("insecure_allow_plaintext"))),
        connections=dispatch.concurrency_per_mailbox,
    )
