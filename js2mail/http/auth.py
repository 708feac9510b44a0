"""API-key authentication and per-application rate limiting for every /v1 request.

A plain ASGI middleware: it answers 401 and 429 itself (one identical 401 body for missing,
malformed, unknown and revoked keys) and adds `RateLimit-Policy`/`RateLimit` to every /v1 reply.
The bucket is the key's application — never a client IP, so `X-Forwarded-For` changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

from js2mail import apikeys
from js2mail.http.errors import UNAUTHORIZED_BODY
from js2mail.ratelimit import TokenBuckets
from js2mail.service import Context
from js2mail.service.keys import authenticate

PRINCIPAL = "js2mail_principal"
_UNAUTHORIZED = json.dumps(UNAUTHORIZED_BODY).encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _reply(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def api_key_middleware(ctx: Context, buckets: TokenBuckets) -> Any:
    policy = buckets.policy_header.encode()

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
                await app(scope, receive, send)
                return
            key = apikeys.from_headers(_header(scope, b"x-api-key"), _header(scope, b"authorization"))
            principal = authenticate(ctx, key)
            if principal is None:
                await _reply(send, 401, _UNAUTHORIZED, [(b"ratelimit-policy", policy), (b"www-authenticate", b"Bearer")])
                return
            decision = buckets.take(principal.application_id)
            extra = [(b"ratelimit-policy", policy), (b"ratelimit", buckets.header(decision).encode())]
            if not decision.allowed:
                body = json.dumps(
                    {"error": {"code": "rate_limited", "message": f"Too many requests; retry in {decision.retry_after}s."}}
                ).encode()
                await _reply(send, 429, body, [*extra, (b"retry-after", str(decision.retry_after).encode())])
                return
            scope[PRINCIPAL] = principal  # type: ignore[literal-required]

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *extra]
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return factory
