"""The ASGI entry in front of Litestar: every `/v1/*` request passes the API-key gate here, once.

`POST /v1/send` (both spellings) is then answered by `send_endpoint` without entering the router;
every other request goes to the Litestar app with the caller's principal in the scope and the
rate-limit headers added to its reply. Unknown `/v1/*` paths and wrong methods are gated too, so
their 404/405 carry the same 401 and `RateLimit` headers as the real routes.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from js2mail.http import send_endpoint
from js2mail.http.auth import PRINCIPAL, Gate


def route_path(path: str) -> str:
    """The path as Litestar's router matches it: empty segments (`//`, a trailing `/`) dropped."""
    return "/" + "/".join(segment for segment in path.split("/") if segment)


def is_fast_send(scope: Scope) -> bool:
    return scope.get("method") == "POST" and route_path(scope["path"]) == send_endpoint.PATH


def with_front_door(app: ASGIApp, gate: Gate) -> ASGIApp:
    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route_path(scope["path"]).startswith("/v1/"):
            await app(scope, receive, send)
            return
        admitted = await gate.admit(scope, send)
        if admitted is None:
            return
        principal, gated_send = admitted
        if is_fast_send(scope):
            await send_endpoint.handle(gate.ctx, principal, scope, receive, gated_send)  # type: ignore[arg-type]
            return
        scope[PRINCIPAL] = principal  # type: ignore[literal-required]
        await app(scope, receive, gated_send)

    return asgi
