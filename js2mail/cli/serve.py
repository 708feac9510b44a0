"""`js2mail serve`: the HTTP API and the scheduler in one process; SIGTERM drains in-flight work."""

from __future__ import annotations

from typing import Annotated

import typer

from js2mail.cli import common
from js2mail.cli.listen import port_range

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Bind address (default [server] host).")] = None,
    port: Annotated[int | None, typer.Option("--port", callback=port_range,
                                             help="Port (default [server] port, 8025).")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.",
                                           callback=common.one_of("--log-level", LOG_LEVELS))] = "info",
    log_format: Annotated[str, typer.Option("--log-format", help="text, or json (one object per line).")] = "text",
) -> None:
    """Run the API server and the delivery scheduler."""
    import gc

    import uvicorn

    from js2mail import logs
    from js2mail.cli.listen import check_bindable, next_steps
    from js2mail.http.app import create_app
    from js2mail.http.server import tune_malloc, uvicorn_options
    from js2mail.service import open_context
    from js2mail.service.backup import serve_lock

    settings = common.settings()
    if host:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    check_bindable(settings.server.host, settings.server.port)
    logs.setup(log_level, log_format)
    tune_malloc()  # before the app allocates: large buffers go back to the kernel when freed
    ctx = open_context(settings)
    try:
        ctx.held.append(serve_lock(settings))  # `restore` refuses while this is held
        app = create_app(ctx)
        logs.started.info("js2mail listening on http://%s:%s (public URL %s); home %s", settings.server.host,
                          settings.server.port, settings.public_url, settings.home)
        if steps := next_steps(ctx):
            typer.echo(steps, err=True)
        gc.set_threshold(10_000, 10, 10)  # fewer young-generation passes per request
        gc.freeze()  # the long-lived objects built so far out of the collector's way: no full-heap pauses under load
        uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level=log_level.lower(),
                    access_log=False, log_config=None, loop="auto", timeout_graceful_shutdown=30,
                    **uvicorn_options(settings.server),
                    forwarded_allow_ips=",".join(settings.server.trusted_proxies) or None, proxy_headers=bool(
                        settings.server.trusted_proxies))
    finally:
        ctx.close()
