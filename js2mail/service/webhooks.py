"""Webhook endpoints: register (with the SSRF check), list, remove, rotate the secret, send a test;
and their operations: recent deliveries, redeliver, enable, auto-disable."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from typing import Any

from js2mail import webhooks
from js2mail.errors import Conflict, NotFound, ValidationError
from js2mail.models import iso, new_id
from js2mail.service import Context
from js2mail.service.keys import check_grace, ensure_scope
from js2mail.store import webhooks as rows

log = logging.getLogger("js2mail.webhooks")


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
        "consecutiveFailures": row["consecutive_failures"], "failingSince": iso(row["failing_since"]),
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


# --- operations: deliveries, redeliver, enable, auto-disable -------------------------------------
def find_for(ctx: Context, app_id: str | None, endpoint_id: str) -> sqlite3.Row:
    """The endpoint; with `app_id` (an API key's application) another application's is not found."""
    row = find(ctx, endpoint_id)
    if app_id is not None and row["application_id"] != app_id:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}", code="webhook_not_found")
    return row


def delivery_view(row: sqlite3.Row) -> dict[str, Any]:
    """A delivery's outcome, never its payload: the privacy rules hold here too."""
    return {
        "id": row["id"], "endpointId": row["endpoint_id"], "eventId": row["event_id"], "eventType": row["event_type"],
        "status": row["status"], "attempts": row["attempts"], "lastHttpStatus": row["last_status"],
        "lastError": row["last_error"], "latencyMs": row["latency_ms"], "createdAt": iso(row["created_at"]),
        "lastAttemptAt": iso(row["last_attempt_at"]), "nextAttemptAt": iso(row["next_attempt_at"]),
        "deliveredAt": iso(row["delivered_at"]), "failedAt": iso(row["failed_at"]),
        "redeliveredAt": iso(row["redelivered_at"]), "redeliverable": row["status"] == "failed" and bool(row["has_payload"]),
    }


DELIVERY_STATUSES = ("pending", "delivered", "failed")


def list_deliveries(ctx: Context, endpoint_id: str | None, *, app_id: str | None = None, status: str | None = None,
                    limit: int = 20) -> list[dict[str, Any]]:
    """One endpoint's recent deliveries; without an endpoint (operators only), every endpoint's."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(DELIVERY_STATUSES)}", code="invalid_status")
    if not 1 <= limit <= 100:
        raise ValidationError("limit must be between 1 and 100", code="invalid_limit")
    if endpoint_id is not None or app_id is not None:
        find_for(ctx, app_id, endpoint_id or "")
    return [delivery_view(r) for r in ctx.store.read(rows.deliveries, endpoint_id, status, limit)]


async def _redeliver_checked(ctx: Context, endpoint: sqlite3.Row, delivery_id: str) -> dict[str, Any]:
    d = ctx.store.read(rows.delivery, delivery_id)
    if d is None or d["endpoint_id"] != endpoint["id"]:
        raise NotFound(f"no delivery {delivery_id!r} for webhook endpoint {endpoint['id']}", code="delivery_not_found")
    if endpoint["status"] != "active":
        raise Conflict(f"webhook endpoint {endpoint['id']} is {endpoint['status']}; enable it first",
                       code="endpoint_disabled", hint=f"js2mail webhooks enable {endpoint['id']}")
    if d["status"] == "pending":
        raise Conflict(f"delivery {delivery_id} is still pending: it will be retried", code="delivery_pending")
    if not await ctx.store.write(rows.redeliver, delivery_id, ctx.clock.now()):
        window = ctx.settings.webhooks.redeliver_window_hours
        raise Conflict(
            f"delivery {delivery_id} can no longer be redelivered: its payload was wiped "
            + ("when it was delivered" if d["status"] == "delivered"
               else f"after the {window:g} h redelivery window ([webhooks] redeliver_window_hours)"),
            code="payload_gone")
    return delivery_view(ctx.store.read(rows.delivery, delivery_id) or d)


async def redeliver(ctx: Context, endpoint_id: str, delivery_id: str, *, app_id: str | None = None) -> dict[str, Any]:
    """Send one delivery again: same delivery id, a fresh signature timestamp."""
    return await _redeliver_checked(ctx, find_for(ctx, app_id, endpoint_id), delivery_id)


async def redeliver_delivery(ctx: Context, delivery_id: str) -> dict[str, Any]:
    """`webhooks redeliver ID` (operator): the endpoint is the delivery's own."""
    d = ctx.store.read(rows.delivery, delivery_id)
    if d is None:
        raise NotFound(f"no delivery {delivery_id!r}", code="delivery_not_found")
    return await redeliver(ctx, d["endpoint_id"], delivery_id)


async def redeliver_since(ctx: Context, endpoint_id: str, since: float) -> dict[str, Any]:
    """Every failed delivery of the endpoint created since `since` whose payload is still kept."""
    endpoint = find(ctx, endpoint_id)
    if endpoint["status"] != "active":
        raise Conflict(f"webhook endpoint {endpoint_id} is {endpoint['status']}; enable it first",
                       code="endpoint_disabled", hint=f"js2mail webhooks enable {endpoint_id} --redeliver-since …")
    now = ctx.clock.now()
    queued: list[str] = []
    gone: list[str] = []
    for d in ctx.store.read(rows.failed_since, endpoint_id, since):
        (queued if await ctx.store.write(rows.redeliver, d["id"], now) else gone).append(d["id"])
    return {"endpoint": endpoint_id, "since": iso(since), "redelivered": queued, "payloadGone": gone}


async def enable(ctx: Context, endpoint_id: str, redeliver_from: float | None = None) -> dict[str, Any]:
    find(ctx, endpoint_id)
    await ctx.store.write(rows.enable_endpoint, endpoint_id)
    log.info("webhook endpoint %s enabled", endpoint_id)
    info = endpoint_info(find(ctx, endpoint_id), ctx.clock.now())
    if redeliver_from is not None:
        info["redelivery"] = await redeliver_since(ctx, endpoint_id, redeliver_from)
    return info


async def disable(ctx: Context, endpoint_id: str, detail: str = "disabled by an operator") -> dict[str, Any]:
    """Turn an endpoint off by hand: nothing more is queued for it, its pending deliveries fail (their
    payloads kept for the redelivery window, so `enable --redeliver-since` can send them later)."""
    find(ctx, endpoint_id)
    now = ctx.clock.now()

    def run(conn: sqlite3.Connection) -> None:
        if conn.execute("UPDATE webhook_endpoints SET status = 'disabled', status_detail = ? WHERE id = ?"
                        " AND status = 'active'", (detail, endpoint_id)).rowcount:
            rows.fail_pending_of(conn, endpoint_id, "endpoint disabled", now)

    await ctx.store.write(run)
    log.info("webhook endpoint %s disabled: %s", endpoint_id, detail)
    return endpoint_info(find(ctx, endpoint_id), now)


async def housekeeping(ctx: Context) -> dict[str, int]:
    """Disable endpoints failing for `[webhooks] disable_after`, announcing it as `webhook.disabled`
    to the workspace's other endpoints; wipe given-up payloads past the redelivery window."""
    cfg, now = ctx.settings.webhooks, ctx.clock.now()
    disabled = 0
    for e in ctx.store.read(rows.failing_too_long, cfg.disable_after_seconds):
        detail = (f"disabled automatically: every attempt failed from {iso(e['failing_since'])} to "
                  f"{iso(e['last_attempt_at'])} ([webhooks] disable_after = {cfg.disable_after})")
        if await ctx.store.write(_disable, e, detail, now):
            disabled += 1
            log.warning("webhook endpoint %s (%s) %s", e["id"], e["url"], detail)
    wiped: int = await ctx.store.write(rows.wipe_expired, now - cfg.redeliver_window_hours * 3600)
    return {"disabled": disabled, "wiped": wiped}


def _disable(conn: sqlite3.Connection, e: sqlite3.Row, detail: str, now: float) -> bool:
    from js2mail.store import events

    changed = conn.execute("UPDATE webhook_endpoints SET status = 'disabled', status_detail = ? WHERE id = ?"
                           " AND status = 'active'", (detail, e["id"])).rowcount
    if not changed:
        return False
    rows.fail_pending_of(conn, e["id"], "endpoint disabled after failing continuously", now)
    data = {"endpointId": e["id"], "url": e["url"], "application": e["application"], "reason": detail,
            "failingSince": iso(e["failing_since"]), "consecutiveFailures": e["consecutive_failures"]}
    for (app_id,) in conn.execute("SELECT id FROM applications WHERE workspace_id = ?", (e["workspace_id"],)):
        events.emit(conn, workspace_id=e["workspace_id"], app_id=app_id, type="webhook.disabled", data=data, now=now)
    return True
