"""Prometheus metrics (`prometheus-client`): counters bumped where outcomes are recorded
(js2mail/outcomes.py), gauges read from the database at scrape time, and `GET /metrics`
answered in front of the app.

`[metrics] enabled = false` (the default) leaves the app unwrapped: `/metrics` is a 404 and no
request pays for timing. Enabled, a scrape needs `Authorization: Bearer <[metrics] token>` when
a token is set, and otherwise comes from a loopback client only.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from js2mail.loopback import is_loopback_ip
from js2mail.retry import utc_day
from js2mail.store import health

if TYPE_CHECKING:
    from litestar.types import (
        ASGIApp,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        HTTPScope,
        Message,
        Receive,
        Scope,
        Send,
    )

    from js2mail.config import MetricsConfig
    from js2mail.service import Context

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

SENDS = Counter("js2mail_sends", "Delivery outcomes recorded: sent, retrying, failed, deferred (no attempt counted).",
                ["status", "provider"], registry=REGISTRY)
ATTEMPT_SECONDS = Histogram("js2mail_send_attempt_duration_seconds",
                            "One delivery attempt, from claim to its recorded outcome.", ["provider", "status"],
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY)
WEBHOOKS = Counter("js2mail_webhook_deliveries", "Webhook delivery attempts: delivered, retrying, failed.",
                   ["outcome"], registry=REGISTRY)
INGEST_SECONDS = Histogram("js2mail_ingest_request_duration_seconds",
                           "Ingest requests (POST /v1/send, form submissions), first byte in to response sent.",
                           ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                           registry=REGISTRY)
RATE_LIMITED = Counter("js2mail_rate_limited_requests", "Requests answered 429 (rate limited).", ["route"],
                       registry=REGISTRY)


class DatabaseGauges(Collector):
    """Queue depth, age of the oldest due message and remaining daily quota, per mailbox, read at
    scrape time (two indexed queries) from the context `instrument` was given."""

    def __init__(self) -> None:
        self.ctx: Context | None = None

    def collect(self) -> Iterable[Metric]:
        ctx = self.ctx
        if ctx is None:
            return []
        now = ctx.clock.now()
        depth = GaugeMetricFamily("js2mail_queue_depth", "Messages waiting or being sent, per mailbox and status.",
                                  labels=["mailbox", "provider", "status"])
        age = GaugeMetricFamily("js2mail_queue_oldest_due_age_seconds",
                                "How long the oldest due message of the mailbox has been waiting (0: none due).",
                                labels=["mailbox", "provider"])
        quota = GaugeMetricFamily("js2mail_daily_quota_remaining",
                                  "Sends left today (UTC) for mailboxes with a daily quota.", labels=["mailbox", "provider"])
        for row in ctx.store.read(health.queue_by_mailbox, now):
            for status in ("queued", "retrying", "sending"):
                depth.add_metric([row["mailbox_id"], row["provider"], status], row[status])
            oldest = row["oldest_due"]
            age.add_metric([row["mailbox_id"], row["provider"]], max(0.0, now - oldest) if oldest is not None else 0.0)
        for row in ctx.store.read(health.quota_remaining, utc_day(now)):
            quota.add_metric([row["mailbox_id"], row["provider"]], row["remaining"])
        return [depth, age, quota]


DATABASE = DatabaseGauges()
REGISTRY.register(DATABASE)


def _route(method: str, path: str) -> str | None:
    """The label of a request worth watching; None for everything else (health, schema...)."""
    if path == "/v1/send":
        return "send"
    if path.startswith("/f/"):
        return "form" if method == "POST" else None
    if path.startswith("/v1/"):
        return "api"
    return None


def instrument(app: ASGIApp, ctx: Context) -> ASGIApp:
    """Wrap the app: time ingest requests, count 429s, answer `GET /metrics`. Disabled: `app` as is."""
    cfg = ctx.settings.metrics
    if not cfg.enabled:
        return app
    DATABASE.ctx = ctx
    timers = {"send": INGEST_SECONDS.labels("send"), "form": INGEST_SECONDS.labels("form")}
    limited = {name: RATE_LIMITED.labels(name) for name in ("send", "form", "api")}

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path, method = scope["path"], cast("HTTPScope", scope)["method"]
        if path == "/metrics":
            await _scrape(scope, method, send, cfg)
            return
        route = _route(method, path)
        if route is None:
            await app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await app(scope, receive, watch)
        finally:
            timer = timers.get(route)
            if timer is not None and method == "POST":
                timer.observe(time.perf_counter() - started)
            if status == 429:
                limited[route].inc()

    return asgi


def allowed(scope: Scope, cfg: MetricsConfig) -> tuple[int, str] | None:
    """None when this scrape may proceed, else (status, reason)."""
    if cfg.token:
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
        if not hmac.compare_digest(given.encode(), f"Bearer {cfg.token}".encode()):
            return 401, "a bearer token is required: Authorization: Bearer <[metrics] token>"
        return None
    client = scope.get("client")
    if client is None or not is_loopback_ip(client[0]):
        return 403, "metrics are served to loopback clients only; set [metrics] token to scrape from elsewhere"
    return None


async def _scrape(scope: Scope, method: str, send: Send, cfg: MetricsConfig) -> None:
    refused = allowed(scope, cfg)
    if refused is not None:
        status, reason = refused
        code = "metrics_unauthorized" if status == 401 else "metrics_forbidden"
        body = json.dumps({"error": {"code": code, "message": reason, "details": []}}).encode()
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
    elif method not in ("GET", "HEAD"):
        status, headers = 405, [(b"content-type", b"application/json"), (b"allow", b"GET, HEAD")]
        body = json.dumps({"error": {"code": "method_not_allowed", "message": "use GET", "details": []}}).encode()
    else:
        status, headers, body = 200, [(b"content-type", CONTENT_TYPE_LATEST.encode())], generate_latest(REGISTRY)
    headers.append((b"content-length", str(len(body)).encode()))
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"" if method == "HEAD" else body,
                                  "more_body": False}
    await send(end)
