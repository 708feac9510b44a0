"""/v1/webhooks/{id}/deliveries: an application's webhook deliveries and their redelivery.

Scoped to the API key's application like every /v1 route: another application's endpoint is 404.
Bodies carry the event type and ids, never a payload."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.params import Parameter

from js2mail.http import schemas
from js2mail.models import Principal
from js2mail.service import Context
from js2mail.service import webhooks as svc

V1 = ["v1"]


@get("/v1/webhooks/{endpoint_id:str}/deliveries", tags=V1, sync_to_thread=False,
     summary="This endpoint's recent deliveries, newest first (outcome, attempts, last HTTP status, latency)")
def list_deliveries(
    ctx: Context,
    principal: Principal,
    endpoint_id: str,
    status: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
) -> schemas.DeliveryList:
    found = svc.list_deliveries(ctx, endpoint_id, app_id=principal.application_id, status=status, limit=limit)
    return msgspec.convert({"data": found}, schemas.DeliveryList)


@post("/v1/webhooks/{endpoint_id:str}/deliveries/{delivery_id:str}/redeliver", tags=V1, status_code=202,
      summary="Send a failed delivery again: the same delivery id, a fresh signature timestamp",
      description="409 `payload_gone` once the payload was wiped (delivered, or past the redelivery window).")
async def redeliver(ctx: Context, principal: Principal, endpoint_id: str, delivery_id: str) -> schemas.Delivery:
    found = await svc.redeliver(ctx, endpoint_id, delivery_id, app_id=principal.application_id)
    return msgspec.convert(found, schemas.Delivery)


HANDLERS: list[Any] = [list_deliveries, redeliver]
