"""Litestar app factory. The scheduler (dispatch, webhooks, purge) lives in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import ASGIApp

from js2mail import __version__, metrics
from js2mail.http.auth import PRINCIPAL, Gate
from js2mail.http.body_budget import BodyBudget, limit_bodies
from js2mail.http.contract import openapi_config
from js2mail.http.errors import EXCEPTION_HANDLERS
from js2mail.http.front_door import with_front_door
from js2mail.models import Principal
from js2mail.ratelimit import TokenBuckets
from js2mail.service import Context

log = logging.getLogger("js2mail")


def provide_ctx(state: State) -> Context:
    ctx: Context = state.ctx
    return ctx


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal = request.scope[PRINCIPAL]  # type: ignore[literal-required]
    return principal


@get("/healthz", sync_to_thread=False, include_in_schema=True, tags=["health"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok", "version": __version__}


@get("/readyz", tags=["health"])
async def readyz(ctx: Context, request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Readiness: the database answers reads and the single writer commits."""
    ctx.store.read(lambda conn: conn.execute("SELECT 1").fetchone())
    await ctx.store.write(lambda conn: conn.execute("SELECT 1").fetchone())
    runtime = request.app.state.runtime
    return {"status": "ready", "scheduler": bool(runtime and runtime.running)}


def create_app(ctx: Context, *, start_background: bool = True) -> ASGIApp:
    """The Litestar app behind its front door (the API-key gate, and `POST /v1/send` answered ahead of the router)."""
    from js2mail.http import dashboard, forms_routes, routes, webhook_routes
    from js2mail.runtime import Runtime

    buckets = TokenBuckets(ctx.settings.rate_limit.rate, ctx.settings.rate_limit.burst, ctx.clock)
    per_visitor = forms_routes.form_buckets(ctx)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = app.state.runtime = Runtime(ctx, (buckets, per_visitor))
        if start_background:
            await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    gate = Gate(ctx, buckets)
    app = Litestar(
        route_handlers=[healthz, readyz, *routes.HANDLERS, *forms_routes.HANDLERS, *webhook_routes.HANDLERS,
                        *dashboard.handlers(ctx.settings)],
        template_config=dashboard.template_config(ctx.settings),
        dependencies={"ctx": Provide(provide_ctx, sync_to_thread=False),
                      "principal": Provide(provide_principal, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=State({"ctx": ctx, "form_buckets": per_visitor, "runtime": None}),
        request_max_body_size=ctx.settings.server.max_body_bytes,
        openapi_config=openapi_config(__version__),
        debug=False,
        logging_config=None,  # serve's logging (js2mail/logs.py) stays in charge
    )
    budget = BodyBudget(ctx.settings.server.max_inflight_body_bytes)
    return metrics.instrument(limit_bodies(with_front_door(app, gate), budget, ctx.settings.server.max_body_bytes),
                              ctx)
