"""/v1 routes: thin handlers that call the service and shape its answer."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import delete, get, post
from litestar.params import Parameter

from js2mail.http import schemas
from js2mail.models import Principal
from js2mail.service import Context
from js2mail.service import messages as svc

V1 = ["v1"]


IdempotencyKey = Annotated[str | None, Parameter(
    header="Idempotency-Key", required=False, **schemas.IDEMPOTENCY_KEY,
    description="Replays the original answer for a repeat of the same request (or `idempotencyKey` in the body).")]


@post("/v1/send", status_code=202, tags=V1, summary="Queue one email",
      description="Answered ahead of the router by `js2mail.http.send_endpoint`: this handler only carries the "
                  "route's schema. A replay answers the original status with `Idempotent-Replayed: true`.")
async def send_mail(data: schemas.SendRequest, idempotency_key: IdempotencyKey = None) -> schemas.SendResponse:
    """Never runs: the front door (`js2mail.http.front_door`) answers every `POST /v1/send` and
    `/v1/send/` before the router. Reaching it is a bug, answered as one (500, logged)."""
    raise RuntimeError("POST /v1/send reached the Litestar router; the front door answers it")


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
