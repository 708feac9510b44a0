"""`js2mail mcp`: an MCP server over stdio so AI tools can send mail and create contact forms.

Each tool calls the same service code as the REST API and the CLI. The server is scoped to one
(workspace, application): by an API key (`--api-key` or `JS2MAIL_API_KEY`), or by
`--workspace/--app` for a local, trusted setup like the CLI itself.
"""

from __future__ import annotations

from typing import Any

from js2mail.errors import Js2MailError, Unauthorized
from js2mail.models import Principal, Scope
from js2mail.service import Context


def _failed(message: str) -> Exception:
    """The SDK shows a ToolError's text to the AI client as the tool's error."""
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(message)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Js2MailError as exc:
        raise _failed(f"{exc.code}: {exc.message}") from None


def build_server(ctx: Context, scope: Principal | Scope) -> Any:
    from mcp.server.mcpserver import MCPServer

    from js2mail import __version__, snippets
    from js2mail.service import forms, messages

    server = MCPServer(name="js2mail", version=__version__,
                       instructions="Send transactional email through the owner's mailbox and create contact-form "
                                    "endpoints for static sites.")

    @server.tool(name="sendEmail", description="Queue one email. Returns its id and status.")
    async def send_email(to: str | list[str], subject: str, text: str | None = None, html: str | None = None,
                         from_address: str | None = None, cc: str | list[str] | None = None,
                         bcc: str | list[str] | None = None, reply_to: str | list[str] | None = None,
                         idempotency_key: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"to": to, "subject": subject}
        for key, value in (("text", text), ("html", html), ("from", from_address), ("cc", cc), ("bcc", bcc),
                           ("replyTo", reply_to), ("idempotencyKey", idempotency_key)):
            if value:
                payload[key] = value
        try:
            outcome = await messages.send(ctx, scope, payload)
        except Js2MailError as exc:
            raise _failed(f"{exc.code}: {exc.message}") from None
        return {**outcome.body, "replayed": outcome.replayed}

    @server.tool(name="getMessageStatus", description="Status, attempts and last error of a message.")
    def get_message_status(message_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _call(messages.get_message, ctx, scope.application_id, message_id)
        return result

    @server.tool(name="createFormEndpoint",
                 description="Create a contact-form endpoint; returns its public id, URL and an HTML snippet.")
    def create_form_endpoint(to: str, name: str | None = None, redirect: str | None = None,
                             origins: list[str] | None = None, flavor: str = "plain") -> dict[str, Any]:
        if flavor not in snippets.FLAVORS:  # every argument checked before anything is created
            raise _failed(f"invalid_flavor: flavor must be one of {', '.join(snippets.FLAVORS)}")
        info: dict[str, Any] = _call(forms.create_form, ctx, scope, to=to, name=name, redirect=redirect,
                                     origins=origins)
        info["snippet"] = snippets.form_snippet(public_id=info["id"], public_url=ctx.settings.public_url,
                                                flavor=flavor, ajax=True)
        return info

    @server.tool(name="listFormEndpoints", description="The application's contact-form endpoints.")
    def list_form_endpoints() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = _call(forms.list_forms, ctx, app_id=scope.application_id)
        return result

    return server


def resolve_scope(ctx: Context, api_key: str | None, workspace: str | None, app: str | None) -> Principal | Scope:
    from js2mail.service.keys import authenticate, ensure_scope

    if api_key:
        principal = authenticate(ctx, api_key)
        if principal is None:
            raise Unauthorized("the API key is not valid", code="unauthorized")
        return principal
    if workspace and app:
        return ensure_scope(ctx, workspace, app)
    raise Unauthorized("give --api-key (or JS2MAIL_API_KEY), or --workspace and --app", code="scope_required")
