"""`js2mail backup PATH` and `js2mail restore PATH`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from js2mail.cli import common
from js2mail.cli.common import JsonOpt


def backup(
    path: Annotated[Path, typer.Argument(help="The file to write (a new file; mode 0600).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite PATH if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy the database with SQLite's online backup API; safe while `serve` runs. Not the master key."""
    from js2mail.service import backup as svc

    report = svc.backup(common.settings(), path, force=force)
    common.output(report, as_json, lambda: typer.echo(
        f"Backed up {report['database']} to {report['backup']} ({report['bytes']} bytes, {report['messages']} "
        f"message(s)). The master key is not in it: keep the key apart — you need it to restore."))


def restore(
    path: Annotated[Path, typer.Argument(help="A file written by `js2mail backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before replacing the database.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace the database with a backup (stop `serve` first; the current database is saved beside it)."""
    from js2mail.service import backup as svc

    settings = common.settings()
    contents = svc.check(settings, path.expanduser())
    if not yes and not typer.confirm(f"Replace {settings.db_path} with {path} ({contents.messages} message(s))?"):
        raise typer.Abort()
    report = svc.restore(settings, path)
    common.output(report, as_json, lambda: typer.echo(
        f"Restored {report['database']} from {report['restored']}; the database it replaced is kept as "
        f"{report['previous']}."))
