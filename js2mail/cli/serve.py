"""`js2mail serve`: the HTTP API and the scheduler in one process; SIGTERM drains in-flight work."""

from __future__ import annotations

from typing import Annotated

import typer

from js2mail.cli import common


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default [server] host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default [server] port, 8025).")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the API server and the delivery scheduler."""
    import logging

    import uvicorn

    from js2mail.http.app import create_app
    from js2mail.http.server import tune_malloc, uvicorn_options
    from js2mail.service import open_context

    settings = common.settings()
    if host:
        settings.server.host = host
    if port:
        settings.server.port = port
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    tune_malloc()  # before the app allocates: large buffers go back to the kernel when freed
    ctx = open_context(settings)
    try:
        app = create_app(ctx)
        typer.echo(f"js2mail listening on http://{settings.server.host}:{settings.server.port} "
                   f"(public URL {settings.public_url}); home {settings.home}", err=True)
        uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level=log_level.lower(),
                    access_log=False, loop="auto", timeout_graceful_shutdown=30, **uvicorn_options(settings.server),
                    forwarded_allow_ips=",".join(settings.server.trusted_proxies) or None, proxy_headers=bool(
                        settings.server.trusted_proxies))
    finally:
        ctx.close()
