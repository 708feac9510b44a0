"""`js2mail webhooks add|list|remove|test|rotate-secret|deliveries|redeliver|enable`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from js2mail.cli import common
from js2mail.cli.common import AppFilter, AppOpt, JsonOpt, WorkspaceFilter, WorkspaceOpt

app = typer.Typer(help="Signed webhooks that tell your app what happened to its mail.", no_args_is_help=True)
IdArg = Annotated[str, typer.Argument(help="The endpoint id (whk_...).")]


def _human(info: dict[str, Any]) -> None:
    common.table(None, ["field", "value"], [[k, v] for k, v in info.items() if k != "secret"])


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The receiver's URL (http or https).")],
    workspace: WorkspaceOpt,
    application: AppOpt,
    events: Annotated[str | None, typer.Option("--events", help="Comma-separated event types (default: all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an endpoint; its signing secret is printed once."""
    from js2mail.service import webhooks

    with common.open_context() as ctx:
        info = common.run_async(webhooks.add_endpoint(ctx, url=url, workspace=workspace, app=application,
                                                      events=events))

    def human() -> None:
        typer.echo(info["secret"])
        typer.echo(f"Webhook {info['id']} → {info['url']} ({', '.join(info['events'])}). "
                   "The signing secret above is shown only once.", err=True)

    common.output(info, as_json, human)


@app.command("list")
def list_(
    workspace: WorkspaceFilter = None,
    application: AppFilter = None,
    as_json: JsonOpt = False,
) -> None:
    """List endpoints (never their secrets)."""
    from js2mail.service import webhooks

    with common.open_context() as ctx:
        found = webhooks.list_endpoints(ctx, workspace, application)
    common.output(found, as_json, lambda: common.table(
        "Webhooks", ["id", "workspace", "app", "url", "events", "status", "last outcome", "failures in a row"],
        [[w["id"], w["workspace"], w["application"], w["url"], ",".join(w["events"]),
          w["status"] + (f" ({w['statusDetail']})" if w["statusDetail"] else ""),
          (w["lastOutcome"] or "none yet") + (f": {w['lastError']}" if w["lastError"] else ""),
          w["consecutiveFailures"]] for w in found]))


@app.command("remove")
def remove(endpoint_id: IdArg, as_json: JsonOpt = False) -> None:
    """Remove an endpoint and its pending deliveries."""
    from js2mail.service import webhooks

    with common.open_context() as ctx:
        info = webhooks.remove_endpoint(ctx, endpoint_id)
    common.output(info, as_json, lambda: typer.echo(f"Removed {endpoint_id}."))


@app.command("test")
def test(endpoint_id: IdArg, as_json: JsonOpt = False) -> None:
    """Send a signed `webhook.test` event now and show the receiver's answer."""
    from js2mail.service import webhooks

    with common.open_context() as ctx:
        result = common.run_async(webhooks.send_test(ctx, endpoint_id))

    def human() -> None:
        if result["delivered"]:
            typer.echo(f"Delivered: the receiver answered {result['status']}.")
        else:
            typer.echo(f"Not delivered: {result['error'] or result['status']}.")

    common.output(result, as_json, human)
    if not result["delivered"]:
        raise typer.Exit(1)


@app.command("rotate-secret")
def rotate_secret(
    endpoint_id: IdArg,
    grace: Annotated[str, typer.Option("--grace", help="Sign with the old secret too for this long, e.g. 24h.")] = "0",
    as_json: JsonOpt = False,
) -> None:
    """Issue a new signing secret (shown once); during --grace both signatures are sent."""
    from js2mail.service import webhooks
    from js2mail.service.keys import parse_duration

    seconds = parse_duration(grace)
    with common.open_context() as ctx:
        info = webhooks.rotate_secret(ctx, endpoint_id, seconds)

    def human() -> None:
        typer.echo(info["secret"])
        typer.echo(f"New secret for {endpoint_id}; the old one is signed alongside for {grace}.", err=True)

    common.output(info, as_json, human)


def _delivery_table(found: list[dict[str, Any]]) -> None:
    common.table("Deliveries", ["id", "endpoint", "event", "status", "attempts", "last HTTP", "latency ms", "last attempt",
                                "last error", "redeliverable"],
                 [[d["id"], d["endpointId"], d["eventType"], d["status"], d["attempts"], d["lastHttpStatus"] or "",
                   "" if d["latencyMs"] is None else d["latencyMs"], d["lastAttemptAt"] or "",
                   (d["lastError"] or "")[:60], "yes" if d["redeliverable"] else "no"] for d in found],
                 empty="No deliveries.")


@app.command("deliveries")
def deliveries(
    endpoint_id: Annotated[str | None, typer.Option("--endpoint", help="One endpoint (whk_...); default: all.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-100).")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent deliveries: outcome, attempts, last HTTP status, latency (never payloads)."""
    from js2mail.service import webhooks

    with common.open_context() as ctx:
        found = webhooks.list_deliveries(ctx, endpoint_id, status=status, limit=limit)
    common.output(found, as_json, lambda: _delivery_table(found))


@app.command("redeliver")
def redeliver(
    delivery_id: Annotated[str | None, typer.Argument(help="One delivery id (from `webhooks deliveries`).")] = None,
    endpoint_id: Annotated[str | None, typer.Option("--endpoint", help="Redeliver this endpoint's failed deliveries...")] = None,
    since: Annotated[str | None, typer.Option("--since", help="...created this long ago or later (2h, 3d).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a failed delivery again (same delivery id, fresh signature), or all failed ones since a time."""
    from js2mail.errors import ValidationError
    from js2mail.service import webhooks
    from js2mail.service.keys import parse_duration

    if (delivery_id is None) == (endpoint_id is None) or (endpoint_id is not None and since is None):
        raise ValidationError("give one delivery id, or --endpoint ID --since DURATION", code="invalid_arguments")
    with common.open_context() as ctx:
        if delivery_id is not None:
            one = common.run_async(webhooks.redeliver_delivery(ctx, delivery_id))
            common.output(one, as_json, lambda: typer.echo(f"Redelivering {delivery_id}; `js2mail serve` sends it."))
            return
        assert endpoint_id is not None and since is not None
        many = common.run_async(webhooks.redeliver_since(ctx, endpoint_id, ctx.clock.now() - parse_duration(since)))
    common.output(many, as_json, lambda: typer.echo(
        f"Redelivering {len(many['redelivered'])} failed deliver(ies) of {endpoint_id}"
        + (f"; {len(many['payloadGone'])} past the redelivery window cannot be" if many["payloadGone"] else "") + "."))


@app.command("enable")
def enable(
    endpoint_id: IdArg,
    redeliver_since: Annotated[str | None, typer.Option(
        "--redeliver-since", help="Also redeliver the failed deliveries created this long ago or later (3d).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a disabled endpoint back on (and redeliver what it missed)."""
    from js2mail.service import webhooks
    from js2mail.service.keys import parse_duration

    with common.open_context() as ctx:
        since = ctx.clock.now() - parse_duration(redeliver_since) if redeliver_since else None
        info = common.run_async(webhooks.enable(ctx, endpoint_id, since))

    def human() -> None:
        typer.echo(f"Enabled {endpoint_id}.")
        if "redelivery" in info:
            typer.echo(f"Redelivering {len(info['redelivery']['redelivered'])} failed deliver(ies); "
                       f"{len(info['redelivery']['payloadGone'])} past the redelivery window cannot be.")

    common.output(info, as_json, human)
