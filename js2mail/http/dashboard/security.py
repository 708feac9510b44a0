"""The dashboard's gate: a session cookie on every route but the sign-in link, a CSRF token on
every state-changing request, and strict security headers on every answer (errors included)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import MediaType
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Template
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from js2mail.errors import Js2MailError
from js2mail.http.errors import STATUS_BY_KIND
from js2mail.service import Context
from js2mail.service import dashboard as svc

COOKIE = "js2mail_dashboard"
SESSION = "js2mail_dashboard_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = ("GET", "HEAD")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
       " form-action 'self'; base-uri 'none'; frame-src 'self'; frame-ancestors 'none'")
# a form preview: framed by the dashboard only, no script, no submit, nothing fetched from elsewhere
PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'self'; sandbox"
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
FRAMEABLE = "frameable"  # handler opt: a preview shown in the dashboard's own sandboxed iframe


class Denied(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def security_headers(app: ASGIApp) -> ASGIApp:
    """Router middleware (only /dashboard routes pass through it, never /v1)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        frameable = bool(scope.get("route_handler") and scope["route_handler"].opt.get(FRAMEABLE))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = HEADERS
                if frameable:
                    extra = [(b"content-security-policy", PREVIEW_CSP.encode()), (b"x-frame-options", b"SAMEORIGIN"),
                             (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
                names = {name for name, _ in extra}
                message["headers"] = [*(h for h in message.get("headers", []) if h[0].lower() not in names), *extra]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def context_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Context:
    ctx: Context = connection.app.state.ctx
    return ctx


async def require_session(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard: a live session (else 401), and for POST/DELETE its CSRF token (else 403)."""
    if handler.opt.get("public"):
        return
    session = svc.session_for(context_of(connection), connection.cookies.get(COOKIE))
    if session is None:
        raise Denied(401, "Sign in to the dashboard",
                     "This page needs a dashboard session. Run `js2mail dashboard link` on the server and open "
                     "the link it prints.")
    if connection.scope.get("method") not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER)
        if sent is None and isinstance(connection, Request):
            form = await connection.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not svc.csrf_ok(session, sent):
            raise Denied(403, "Request refused", "This request did not carry the page's security token. "
                                                 "Reload the page and try again.")
    connection.scope[SESSION] = session  # type: ignore[literal-required]


def session_of(request: Request[Any, Any, Any]) -> svc.Session:
    session: svc.Session = request.scope[SESSION]  # type: ignore[literal-required]
    return session


def _page(status: int, title: str, message: str) -> Response[Any]:
    return Template(template_name="message.html", context={"title": title, "message": message},
                    status_code=status, media_type=MediaType.HTML)  # type: ignore[return-value]


def on_denied(_: Request[Any, Any, Any], exc: Denied) -> Response[Any]:
    return _page(exc.status, exc.title, exc.message)


def on_domain_error(request: Request[Any, Any, Any], exc: Js2MailError) -> Response[Any]:
    """A service's refusal, as an alert in place of the fragment, or as a page of its own."""
    message = exc.message + (f" ({exc.hint})" if getattr(exc, "hint", None) else "")
    status = STATUS_BY_KIND.get(exc.kind, 400)
    if request.headers.get("hx-request") == "true":
        return Template(template_name="error.html", context={"message": message}, status_code=status,
                        media_type=MediaType.HTML)  # type: ignore[return-value]
    return _page(status, "Not found" if status == 404 else "Request refused", message)


EXCEPTION_HANDLERS: dict[Any, Any] = {Denied: on_denied, Js2MailError: on_domain_error}
