"""A process-wide byte budget for request bodies being read or processed.

Every request that carries a body reserves its declared `Content-Length` (a chunked body, whose
size is unknown, reserves `server.max_body_bytes`) before the app reads a byte of it, and gives
it back when its answer has been sent. When the reservation does not fit, the request is
answered `503 server_busy` with `Retry-After` at once (uvicorn then discards the body as it
arrives, buffering none of it, and the connection stays usable) — so a burst of large sends costs
at most `server.max_inflight_body_bytes` (times the few copies processing makes) instead of
growing with the number of clients. After a large request, once no body is in flight, the freed
heap is handed back to the kernel.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from js2mail.http.errors import error_body, error_object
from js2mail.http.server import trim_memory

TRIM_AFTER_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 1
_BUSY = error_body(error_object("server_busy", "The server is processing as many request bodies as it can hold; "
                                               "retry shortly."))


class BodyBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


def _reservation(scope: Scope, max_body: int) -> int:
    length = chunked = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            chunked = value
    if length is not None:
        declared = int(length) if length.isdigit() else 0
        return declared if declared <= max_body else 0  # larger: refused 413 unread
    return max_body if chunked is not None else 0


def limit_bodies(app: ASGIApp, budget: BodyBudget, max_body: int) -> ASGIApp:
    """`app` behind the budget: a request whose body does not fit is answered 503 unread."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        size = _reservation(scope, max_body) if scope["type"] == "http" else 0
        if size == 0:
            await app(scope, receive, send)
            return
        if not budget.take(size):
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(_BUSY)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode())]})
            await send({"type": "http.response.body", "body": _BUSY, "more_body": False})
            return
        try:
            await app(scope, receive, send)
        finally:
            budget.give(size)
            if size >= TRIM_AFTER_BYTES and budget.used == 0:
                trim_memory()

    return asgi
