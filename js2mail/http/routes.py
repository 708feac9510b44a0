"""/v1 routes: thin handlers that call the service and shape its answer."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter

from js2mail.errors import UnsupportedMediaType
from js2mail.http import schemas
from js2mail.http.auth import PRINCIPAL
from js2mail.models import Principal, is_json_media
from js2mail.service import Context
from js2mail.service import messages as svc

V1 = ["v1"]


def require_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard, so the media type is checked before Litestar reads the body."""
    if not is_json_media(connection.headers.get("content-type")):
        raise UnsupportedMediaType("send the request body as JSON (Content-Type: application/json)")


@post("/v1/send", status_code=202, tags=V1, summary="Queue one email", guards=[require_json],
      description="Optional `Idempotency-Key` header (1-255 printable ASCII), or `idempotencyKey` in the body.")
async def send_mail(request: Request[Any, Any, Any], data: schemas.SendRequest) -> Response[schemas.SendResponse]:
    """Documents the route in /schema. Requests are answered ahead of the router by
    `js2mail.http.send_endpoint` (the hot path), which calls the same service."""
    ctx: Context = request.app.state.ctx
    principal: Principal = request.scope[PRINCIPAL]  # type: ignore[literal-required]
    payload = msgspec.to_builtins(data)
    outcome = await svc.send(ctx, principal, payload, request.headers.get("idempotency-key"))
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(msgspec.convert(outcome.body, schemas.SendResponse), status_code=outcome.status_code, headers=headers)


@get("/v1/messages", tags=V1, summary="List this application's messages, newest first", sync_to_thread=False)
def list_messages(
    ctx: Context,
    principal: Principal,
    status: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> schemas.MessageList:
    page = svc.list_messages(ctx, principal.application_id, status=status, limit=limit, cursor=cursor)
    return msgspec.convert(page, schemas.MessageList)


@get("/v1/messages/{message_id:str}", tags=V1, summary="One message's status", sync_to_thread=False)
def get_message(ctx: Context, principal: Principal, message_id: str) -> schemas.Message:
    return msgspec.convert(svc.get_message(ctx, principal.application_id, message_id), schemas.Message)


@delete("/v1/messages/{message_id:str}", tags=V1, summary="Cancel a message not yet sent", status_code=200)
async def cancel_message(ctx: Context, principal: Principal, message_id: str) -> schemas.Message:
    return msgspec.convert(await svc.cancel_message(ctx, principal.application_id, message_id), schemas.Message)


HANDLERS: list[Any] = [send_mail, list_messages, get_message, cancel_message]
