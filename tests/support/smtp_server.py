"""A real SMTP server on 127.0.0.1 (aiosmtpd) for tests: STARTTLS, implicit TLS or plain, AUTH,
scripted failures, and a record of every message received."""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        refusal = self.server.refuse.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.server.data_delay:
            await asyncio.sleep(self.server.data_delay)
        with self.server.lock:
            if self.server.failures:
                self.server.failures -= 1
                return self.server.failure_reply
            raw = envelope.original_content or envelope.content
            msg = email.message_from_bytes(raw, policy=policy.default)
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, msg))  # type: ignore[arg-type]
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    def __init__(self, *, tls: str = "starttls", auth: tuple[str, str] | None = None,
                 data_size_limit: int = 33554432, smtputf8: bool = True) -> None:
        self.tls = tls
        self.auth = auth
        self.port = _free_port()
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.failures = 0
        self.failure_reply = "451 4.3.0 Try again later"
        self.data_delay = 0.0  # seconds to sit on DATA before answering (a slow or hung server)
        self._dir = tempfile.TemporaryDirectory()
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = Path(self._dir.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port, "data_size_limit": data_size_limit,
                                  "enable_SMTPUTF8": smtputf8}
        if tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
        elif tls == "tls":
            kwargs.update(ssl_context=ctx, auth_require_tls=False)
        else:
            kwargs.update(auth_require_tls=False)
        if auth:
            kwargs.update(auth_required=True, authenticator=self._authenticate)
        self.controller = Controller(_Handler(self), **kwargs)
        self._client_ctx = ssl.create_default_context(cafile=str(self.ca_path))

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.auth is not None and \
            auth_data.login == self.auth[0].encode() and auth_data.password == self.auth[1].encode()
        return AuthResult(success=ok, handled=False)

    def fail_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        with self.lock:
            self.failures, self.failure_reply = count, reply

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s), got {len(self.messages)} within {timeout}s")

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
        self._dir.cleanup()
