"""API-key authentication and per-application rate limiting for every /v1 request.

Plain ASGI: the gate answers 401 and 429 itself (one identical 401 body for missing, malformed,
unknown and revoked keys) and adds `RateLimit-Policy`/`RateLimit` to every /v1 reply. The bucket
is the key's application — never a client IP, so `X-Forwarded-For` changes nothing. The gate runs
once per request, in front of the router (`js2mail.http.front_door`).
"""

from __future__ import annotations

import msgspec
from litestar.types import HTTPResponseStartEvent, Message, Scope, Send

from js2mail import apikeys
from js2mail.http.errors import UNAUTHORIZED_BODY, error_body, error_object
from js2mail.models import Principal
from js2mail.ratelimit import TokenBuckets
from js2mail.service import Context
from js2mail.service.keys import authenticate

PRINCIPAL = "js2mail_principal"
_UNAUTHORIZED = msgspec.json.encode(UNAUTHORIZED_BODY)

Headers = list[tuple[bytes, bytes]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _reply(send: Send, status: int, body: bytes, headers: Headers) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Gate:
    def __init__(self, ctx: Context, buckets: TokenBuckets) -> None:
        self.ctx = ctx
        self.buckets = buckets
        self.policy = buckets.policy_header.encode()

    async def admit(self, scope: Scope, send: Send) -> tuple[Principal, Send] | None:
        """The caller's principal and a `send` that adds the rate-limit headers; or None once
        the 401/429 has been answered."""
        key = apikeys.from_headers(_header(scope, b"x-api-key"), _header(scope, b"authorization"))
        principal = authenticate(self.ctx, key)
        if principal is None:
            await _reply(send, 401, _UNAUTHORIZED, [(b"ratelimit-policy", self.policy), (b"www-authenticate", b"Bearer")])
            return None
        decision = self.buckets.take(principal.application_id)
        extra = [(b"ratelimit-policy", self.policy), (b"ratelimit", self.buckets.header(decision).encode())]
        if not decision.allowed:
            body = error_body(error_object("rate_limited", f"Too many requests; retry in {decision.retry_after}s."))
            await _reply(send, 429, body, [*extra, (b"retry-after", str(decision.retry_after).encode())])
            return None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return principal, send_with_headers
