"""The `js2mail` command: one sub-command group per noun. Heavy modules are imported lazily."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from js2mail import __version__
from js2mail.cli import common
from js2mail.cli.common import JsonOpt

app = typer.Typer(
    name="js2mail",
    help="Self-hosted transactional email API that sends through your own mailbox.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"js2mail {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    home: Annotated[
        str | None, typer.Option("--home", help="Home folder (default: $JS2MAIL_HOME or ~/.js2mail).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    common.state.home = home


@app.command()
def init(
    keyring: Annotated[bool, typer.Option("--keyring", help="Keep the master key in the OS keyring.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create the home folder, the database and the master key (safe to run again)."""
    from js2mail.service import init_home

    report = init_home(common.settings(), use_keyring=keyring)

    def human() -> None:
        if report["changed"]:
            typer.echo(f"Initialized js2mail in {report['home']} ({', '.join(report['created']) or 'migrated'}).")
        else:
            typer.echo(f"Already initialized in {report['home']}; nothing changed.")
        typer.echo(f"  database:   {report['database']}")
        where = report.get("masterKeyFile") or report["masterKeySource"]
        typer.echo(f"  master key: {where} (keep it safe and out of backups of the database)")

    common.output(report, as_json, human)


def _register() -> None:
    from js2mail.cli import backup, dashboard, deploy, forms, keys, mailboxes, messages, ops, serve, snippet, webhooks

    app.add_typer(keys.app, name="keys")
    app.add_typer(mailboxes.app, name="mailboxes")
    app.add_typer(messages.app, name="messages")
    app.add_typer(webhooks.app, name="webhooks")
    app.add_typer(forms.app, name="forms")
    app.command(name="snippet")(snippet.api_snippet)
    app.add_typer(ops.dns_app, name="dns")
    app.add_typer(ops.crypto_app, name="crypto")
    app.add_typer(ops.data_app, name="data")
    app.command(name="doctor")(ops.doctor)
    app.command(name="mcp")(ops.mcp)
    app.command(name="send")(messages.send)
    app.command(name="serve")(serve.serve)
    app.command(name="backup")(backup.backup)
    app.command(name="restore")(backup.restore)
    app.add_typer(deploy.app, name="deploy")
    app.add_typer(dashboard.app, name="dashboard")


_register()


def main() -> None:
    """Entry point: every user-caused error is one line (or a JSON envelope), never a traceback."""
    from js2mail.errors import Js2MailError

    as_json = "--json" in sys.argv[1:]
    command = typer.main.get_command(app)
    try:
        result = command.main(args=sys.argv[1:], prog_name="js2mail", standalone_mode=False)
    except Js2MailError as exc:
        _fail(exc.to_dict(), as_json)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        _click_exit(exc, as_json)  # typer vendors its own click: recognise its exceptions by shape
        if os.environ.get("JS2MAIL_DEBUG"):
            raise
        _fail({"code": "internal_error", "message": f"{type(exc).__name__}: {exc}",
               "hint": "set JS2MAIL_DEBUG=1 for a traceback, and please report it"}, as_json)
    sys.exit(result if isinstance(result, int) else 0)


def _click_exit(exc: Exception, as_json: bool) -> None:
    """Usage errors, aborts and exits from click (or typer's vendored copy of it)."""
    name = type(exc).__name__
    if name == "Abort":
        sys.stderr.write("Aborted.\n")
        sys.exit(130)
    if name == "Exit":
        sys.exit(getattr(exc, "exit_code", 0))
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code") and hasattr(exc, "show"):
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "js2mail"
        _fail({"code": "usage_error", "message": " ".join(exc.format_message().split()),
               "hint": f"see `{command} --help`"}, as_json, exit_code=exc.exit_code)


def _fail(error: dict[str, str], as_json: bool, exit_code: int = 1) -> None:
    """One line: `Error: … (hint: …)` on stderr, or the JSON envelope (one line, with the hint)."""
    if as_json:
        sys.stdout.write(json.dumps({"error": error}) + "\n")
    else:
        line = f"Error: {error['message']}"
        if error.get("hint"):
            line += f" (hint: {error['hint']})"
        sys.stderr.write(line + "\n")
    sys.exit(exit_code)
