"""uvicorn, hardened for the public internet: what a client without a key can hold open.

`GuardedHttpProtocol` is uvicorn's httptools protocol with three limits it lacks:

* a connection beyond `server.max_connections` is answered 503 (at its first bytes, or closed
  after a second of silence) and never counted, so slow clients cannot use up the file
  descriptors and lock out everyone else — /healthz included;
* a request whose line and headers have not fully arrived `server.header_timeout` seconds
  after the connection opened (or after the request's first byte, on a kept-alive connection)
  is closed: slowloris connections and silent ones die;
* a request body from which nothing arrives for `server.header_timeout` seconds is closed too,
  so a stalled upload does not hold its share of the request-body budget;
* request line + headers larger than `server.max_header_bytes` get 431 and the connection is
  closed, before the parser buffers more.

The idle keep-alive timeout is uvicorn's own (`timeout_keep_alive`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from js2mail.config import ServerConfig

log = logging.getLogger("js2mail.http")
SHED_SILENCE_SECONDS = 1.0  # a connection beyond the cap that sends nothing is closed after this


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_timeout: float
    max_header_bytes: int

    @classmethod
    def of(cls, server: ServerConfig) -> ConnectionLimits:
        return cls(server.max_connections, server.header_timeout, server.max_header_bytes)


def _canned(status: bytes, message: bytes, extra: bytes = b"") -> bytes:
    body = b'{"error":{"code":"%s","message":"%s"}}' % (status.split(b" ", 1)[1].lower().replace(b" ", b"_"), message)
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"connection: close\r\n\r\n" + body)


BUSY_RESPONSE = _canned(b"503 Service Unavailable", b"Too many open connections; retry shortly.",
                        b"retry-after: 1\r\n")
HEADERS_TOO_LARGE = _canned(b"431 Request Header Fields Too Large", b"The request headers are too large.")


class _HeadersTooLarge(Exception):
    """Raised from the parser callback to stop parsing a request already answered 431."""


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits]

    @classmethod
    def configured(cls, limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
        return type("GuardedHttpProtocol", (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shed = False
        self._in_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_body = False
        self._last_body = 0.0
        self._body_timer: asyncio.TimerHandle | None = None

    # connection ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._shed = True  # never counted: answered 503 at its first bytes, or dropped
            self.transport = transport
            self._header_timer = self.loop.call_later(SHED_SILENCE_SECONDS, transport.close)
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self._shed:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._shed:
            self._disarm_header_timer()
            if not self.transport.is_closing():
                self.transport.write(BUSY_RESPONSE)
                self.transport.close()
            return
        if self._in_headers:
            self._header_bytes += len(data)
        try:
            super().data_received(data)
        except _HeadersTooLarge:
            return
        if self._in_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse_headers()  # still incomplete and already too large: stop buffering them

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # closing: answered 431 already (httptools wraps our exception)
            super().send_400_response(msg)

    def _refuse_headers(self) -> None:
        if not self.transport.is_closing():
            log.info("request headers over %d bytes from %s: 431", self.limits.max_header_bytes, self.client)
            self.transport.write(HEADERS_TOO_LARGE)
            self.transport.close()

    # parser callbacks ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._disarm_header_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:  # arrived whole in one read: refuse before the app sees it
            self._refuse_headers()
            raise _HeadersTooLarge
        super().on_headers_complete()
        self._in_body = True  # until on_message_complete (at once, for a request without a body)
        self._last_body = self.loop.time()
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(self.limits.header_timeout, self._body_stalled)

    def on_body(self, body: bytes) -> None:
        self._last_body = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    # the header deadline ---------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            self.transport.close()


    def _body_stalled(self) -> None:
        """A request body from which nothing arrived for header_timeout seconds: the client is
        gone or stalling on purpose (holding its share of the body budget), so close."""
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        idle = self.loop.time() - self._last_body
        if idle >= self.limits.header_timeout and not self.flow.read_paused:  # paused: we stopped reading, not them
            self.transport.close()
            return
        self._body_timer = self.loop.call_later(max(0.1, self.limits.header_timeout - idle), self._body_stalled)


def uvicorn_options(server: ServerConfig) -> dict[str, Any]:
    """The `uvicorn.run`/`Config` keyword arguments that enforce `[server]`'s connection limits."""
    return {
        "http": GuardedHttpProtocol.configured(ConnectionLimits.of(server)),
        "timeout_keep_alive": server.keepalive_timeout,
        "limit_concurrency": server.max_connections + 1,  # requests in flight; connections are capped above
        "h11_max_incomplete_event_size": server.max_header_bytes,
    }


# memory ----------------------------------------------------------------------------------------
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def tune_malloc() -> bool:
    """glibc: keep large buffers (request bodies, attachments) in mmap'd blocks that go back to
    the kernel when freed — without this glibc raises its mmap threshold after the first large
    free and serves later large buffers from the heap, which never shrinks — and use two arenas."""
    if _LIBC is None:
        return False
    _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    _LIBC.mallopt(M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD)
    _LIBC.mallopt(M_ARENA_MAX, 2)
    return True


def trim_memory() -> None:
    """Give the freed heap back to the kernel (after a burst of large requests)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
