"""`js2mail messages list|show|tail|cancel` and `js2mail send`."""

from __future__ import annotations

import base64
import json
import mimetypes
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from js2mail.cli import common
from js2mail.cli.common import AppFilter, JsonOpt, WorkspaceFilter

app = typer.Typer(help="Inspect the queue and the send log.", no_args_is_help=True)

COLUMNS = ["id", "status", "attempts", "created", "sent", "next attempt", "domains", "last error"]


def _row(m: dict[str, Any]) -> list[Any]:
    return [m["id"], m["status"], m["attempts"], m["createdAt"], m["sentAt"] or "", m["nextAttemptAt"] or "",
            ",".join(m["recipientDomains"]), (m["lastError"] or "")[:60]]


@app.command("list")
def list_(
    workspace: WorkspaceFilter = None,
    application: AppFilter = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="queued, sending, retrying, sent, failed, cancelled, dry_run")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-100).",
                                       callback=common.in_range("--limit", 1, 100))] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after this cursor.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List messages, newest first."""
    from js2mail.service import messages

    with common.open_context() as ctx:
        scope = messages.log_scope(ctx, workspace, application)
        page = messages.list_messages(ctx, scope.application_id, status=status, limit=limit, cursor=cursor,
                                      workspace_id=scope.workspace_id)

    def human() -> None:
        common.table("Messages", COLUMNS, [_row(m) for m in page["data"]], empty="No messages.")
        if page["nextCursor"]:
            typer.echo(f"more: --cursor {page['nextCursor']}")

    common.output(page, as_json, human)


@app.command("show")
def show(message_id: str, as_json: JsonOpt = False) -> None:
    """One message's status, attempts and last error."""
    from js2mail.service import messages

    with common.open_context() as ctx:
        info = messages.get_message(ctx, None, message_id)
    common.output(info, as_json, lambda: common.table(None, ["field", "value"], _fields(info)))


def _fields(info: dict[str, Any]) -> list[list[Any]]:
    """One row per field, and a partial refusal spelled out."""
    rows = [[k, v] for k, v in info.items()]
    if info["refusedRecipients"] and info["status"] == "sent":
        rows.append(["note", f"sent, but {info['refusedRecipients']} recipient(s) at "
                             f"{', '.join(info['refusedDomains'])} were refused"])
    return rows


@app.command("cancel")
def cancel(message_id: str, as_json: JsonOpt = False) -> None:
    """Cancel a message not yet sent."""
    from js2mail.service import messages

    with common.open_context() as ctx:
        info = common.run_async(messages.cancel_message(ctx, None, message_id))
    common.output(info, as_json, lambda: typer.echo(f"Cancelled {message_id}."))


@app.command("tail")
def tail(
    workspace: WorkspaceFilter = None,
    application: AppFilter = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Start this long ago (30s, 15m, 2h, 7d) instead of now.")] = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls (0.1-3600).",
                                            callback=common.in_range("--interval", 0.1, 3600))] = 1.0,
    duration: Annotated[float | None, typer.Option("--for", help="Stop after this many seconds (up to a year).",
                                                   callback=common.in_range("--for", 0, 365 * 86400))] = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow the send log from now (or --since): one line per message each time it is queued,
    attempted or finished (Ctrl-C stops)."""
    from js2mail.service import messages
    from js2mail.service.keys import parse_duration

    with common.open_context() as ctx:
        scope = messages.log_scope(ctx, workspace, application)
        cursor, after = ctx.clock.now() - (parse_duration(since) if since else 0.0), ""
        deadline = time.monotonic() + duration if duration is not None else None
        if not as_json:
            typer.echo("  ".join(COLUMNS))
        while True:
            changed, cursor, after = messages.changes_since(ctx, scope, cursor, after)
            for m in changed:
                # JSON lines (one object per change), or one plain line
                typer.echo(json.dumps(m) if as_json else "  ".join(str(v) for v in _row(m)))
            if len(changed) == 500:
                continue  # more waiting: no sleep
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(interval if deadline is None else min(interval, max(0.0, deadline - time.monotonic())))


def send(
    workspace: common.WorkspaceOpt,
    application: common.AppOpt,
    to: Annotated[list[str], typer.Option("--to", help="Recipient (repeatable).")],
    subject: Annotated[str, typer.Option("--subject", help="Subject line.")],
    text: Annotated[str | None, typer.Option("--text", help="Plain-text body ('-' reads stdin).")] = None,
    html: Annotated[str | None, typer.Option("--html", help="HTML body.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="A connected mailbox (default: the app's).")] = None,
    cc: Annotated[list[str] | None, typer.Option("--cc", help="Cc (repeatable).")] = None,
    bcc: Annotated[list[str] | None, typer.Option("--bcc", help="Bcc (repeatable).")] = None,
    attach: Annotated[list[Path] | None, typer.Option("--attach", help="File to attach (repeatable).")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate, build and account for the mail, but send nothing (status dry_run).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Queue one mail from the terminal; a running `js2mail serve` delivers it."""
    import sys

    from js2mail.errors import ValidationError
    from js2mail.service import messages
    from js2mail.service.keys import ensure_scope

    if text == "-":
        text = sys.stdin.read()
    payload: dict[str, Any] = {"to": to, "subject": subject}
    for key, value in (("text", text), ("html", html), ("from", from_), ("cc", cc), ("bcc", bcc),
                       ("idempotencyKey", idempotency_key)):
        if value:
            payload[key] = value
    if attach:
        files = []
        for path in attach:
            if path.is_dir():
                raise ValidationError(f"--attach {path} is a folder: attach files one by one",
                                      code="attachment_is_folder")
            if not path.is_file():
                raise ValidationError(f"--attach {path}: no such file", code="attachment_missing")
            files.append({"filename": path.name, "content": base64.b64encode(path.read_bytes()).decode(),
                          "contentType": mimetypes.guess_type(path.name)[0] or "application/octet-stream"})
        payload["attachments"] = files
    if dry_run:
        payload["dryRun"] = True
    with common.open_context() as ctx:
        scope = ensure_scope(ctx, workspace, application)
        outcome = common.run_async(messages.send(ctx, scope, payload))
    common.output(outcome.body, as_json, lambda: typer.echo(_sent_line(outcome.body)))


def _sent_line(body: dict[str, Any]) -> str:
    if body["status"] != "dry_run":
        return f"Queued {body['id']}; `js2mail serve` delivers it."
    quota = body["dryRun"]["quota"]
    left = f"; daily quota: {quota['remaining']} of {quota['daily']} left today" if quota else ""
    return f"Dry run {body['id']}: valid, built ({body['dryRun']['size']} bytes){left}. Nothing was sent."
