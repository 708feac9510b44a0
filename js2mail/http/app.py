"""Litestar app factory. The scheduler (dispatch, webhooks, purge) lives in the lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp

from js2mail import __version__, metrics
from js2mail.http.auth import PRINCIPAL, Gate, api_key_middleware, with_send_endpoint
from js2mail.http.errors import EXCEPTION_HANDLERS
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
async def readyz(ctx: Context) -> dict[str, Any]:
    """Readiness: the database answers reads and the single writer commits."""
    ctx.store.read(lambda conn: conn.execute("SELECT 1").fetchone())
    await ctx.store.write(lambda conn: conn.execute("SELECT 1").fetchone())
    runtime = ctx.extras.get("runtime")
    return {"status": "ready", "scheduler": bool(runtime and runtime.running)}


def create_app(ctx: Context, *, start_background: bool = True) -> ASGIApp:
    """The Litestar app, with `POST /v1/send` answered in front of its router."""
    from js2mail.http import dashboard, forms_routes, routes
    from js2mail.runtime import Runtime

    buckets = TokenBuckets(ctx.settings.rate_limit.rate, ctx.settings.rate_limit.burst, ctx.clock)
    ctx.extras["buckets"] = buckets

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = Runtime(ctx)
        ctx.extras["runtime"] = runtime
        if start_background:
            await runtime.start()
        gc.set_threshold(10_000, 10, 10)  # fewer young-generation passes per request
        gc.freeze()  # the app's long-lived objects out of the collector's way: no full-heap pauses under load
        try:
            yield
        finally:
            await runtime.stop()

    gate = Gate(ctx, buckets)
    app = Litestar(
        route_handlers=[healthz, readyz, *routes.HANDLERS, *forms_routes.HANDLERS, *dashboard.handlers(ctx.settings)],
        template_config=dashboard.template_config(ctx.settings),
        dependencies={"ctx": Provide(provide_ctx, sync_to_thread=False),
                      "principal": Provide(provide_principal, sync_to_thread=False)},
        middleware=[api_key_middleware(gate)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=State({"ctx": ctx}),
        request_max_body_size=ctx.settings.server.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="js2mail",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={
                    "ApiKey": SecurityScheme(type="apiKey", name="X-Api-Key", security_scheme_in="header"),
                    "Bearer": SecurityScheme(type="http", scheme="bearer"),
                }
            ),
            security=[{"ApiKey": []}, {"Bearer": []}],
        ),
        debug=False,
        logging_config=None,  # serve's logging (js2mail/logs.py) stays in charge
    )
    return metrics.instrument(with_send_endpoint(app, gate), ctx)
