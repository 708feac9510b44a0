"""Webhook endpoints: register (with the SSRF check), list, remove, rotate the secret, send a test."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from js2mail import webhooks
from js2mail.errors import NotFound, ValidationError
from js2mail.models import iso, new_id
from js2mail.service import Context
from js2mail.service.keys import check_grace, ensure_scope
from js2mail.store import webhooks as rows


def parse_events(events: str | None) -> list[str] | str:
    if not events or events.strip() == "*":
        return "*"
    wanted = [e.strip() for e in events.split(",") if e.strip()]
    unknown = [e for e in wanted if e not in webhooks.EVENT_TYPES]
    if unknown:
        raise ValidationError(f"unknown event(s) {', '.join(unknown)}; choose from {', '.join(webhooks.EVENT_TYPES)}",
                              code="invalid_events")
    return wanted


def endpoint_info(row: sqlite3.Row, now: float) -> dict[str, Any]:
    events = json.loads(row["events"])
    return {
        "id": row["id"],
        "url": row["url"],
        "workspace": row["workspace"],
        "application": row["application"],
        "events": list(webhooks.EVENT_TYPES) if events == "*" else events,
        "status": row["status"],
        "statusDetail": row["status_detail"],
        "rotationEndsAt": iso(row["previous_secret_until"]) if (row["previous_secret_until"] or 0) > now else None,
        "lastOutcome": row["last_outcome"], "lastError": row["last_error"], "lastHttpStatus": row["last_http_status"],
        "consecutiveFailures": row["consecutive_failures"],
        "createdAt": iso(row["created_at"]),
    }


def policy(ctx: Context) -> webhooks.EgressPolicy:
    return webhooks.EgressPolicy.from_config(ctx.settings.webhooks)


async def add_endpoint(ctx: Context, *, url: str, workspace: str, app: str, events: str | None) -> dict[str, Any]:
    webhooks.check_url(url)
    await webhooks.resolve_target(url, policy(ctx))
    wanted = parse_events(events)
    scope = ensure_scope(ctx, workspace, app)
    endpoint_id = new_id("whk")
    secret = webhooks.new_secret()
    sealed = ctx.sealer.seal(secret.encode(), table="webhook_endpoints", column="secret", row_id=endpoint_id)
    now = ctx.clock.now()
    await ctx.store.write(lambda conn: rows.insert_endpoint(
        conn, endpoint_id=endpoint_id, workspace_id=scope.workspace_id, app_id=scope.application_id, url=url,
        events=wanted, secret=sealed, now=now))
    return {**endpoint_info(find(ctx, endpoint_id), now), "secret": secret}


def find(ctx: Context, endpoint_id: str) -> sqlite3.Row:
    row = ctx.store.read(rows.endpoint, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}", code="webhook_not_found")
    return row


def list_endpoints(ctx: Context, workspace: str | None = None, app: str | None = None) -> list[dict[str, Any]]:
    now = ctx.clock.now()
    return [endpoint_info(r, now) for r in ctx.store.read(rows.endpoints, workspace, app)]


def remove_endpoint(ctx: Context, endpoint_id: str) -> dict[str, Any]:
    row = find(ctx, endpoint_id)
    ctx.store.write_sync(rows.delete_endpoint, endpoint_id)
    return endpoint_info(row, ctx.clock.now())


def rotate_secret(ctx: Context, endpoint_id: str, grace_seconds: float) -> dict[str, Any]:
    grace_seconds = check_grace(grace_seconds)
    find(ctx, endpoint_id)
    secret = webhooks.new_secret()
    sealed = ctx.sealer.seal(secret.encode(), table="webhook_endpoints", column="secret", row_id=endpoint_id)
    now = ctx.clock.now()
    ctx.store.write_sync(rows.rotate_secret, endpoint_id, sealed, now + grace_seconds if grace_seconds > 0 else None)
    return {**endpoint_info(find(ctx, endpoint_id), now), "secret": secret}


def active_secrets(ctx: Context, row: sqlite3.Row, now: float) -> list[str]:
    """The current secret, plus the previous one while its rotation grace period lasts."""
    place = {"table": "webhook_endpoints", "column": "secret", "row_id": row["id"]}
    found = [ctx.sealer.open(bytes(row["secret"]), **place).decode()]
    if row["previous_secret"] is not None and (row["previous_secret_until"] or 0) > now:
        found.append(ctx.sealer.open(bytes(row["previous_secret"]), **place).decode())
    return found


async def send_test(ctx: Context, endpoint_id: str) -> dict[str, Any]:
    """Deliver one signed `webhook.test` event now and report the receiver's answer."""
    row = find(ctx, endpoint_id)
    now = ctx.clock.now()
    body = webhooks.event_body(event_id=new_id("evt"), type="webhook.test", created_at=now,
                               data={"endpointId": endpoint_id, "message": "This is a test event from js2mail."})
    target = await webhooks.resolve_target(row["url"], policy(ctx))
    delivery_id = str(uuid.uuid4())
    headers = webhooks.delivery_headers(body=body, event_type="webhook.test", delivery_id=delivery_id,
                                        secrets=active_secrets(ctx, row, now), now=now)
    result = await webhooks.deliver(target, body, headers, timeout=ctx.settings.webhooks.timeout)
    return {"endpoint": endpoint_id, "url": row["url"], "deliveryId": delivery_id, "delivered": result.delivered,
            "status": result.status_code, "error": result.error}
