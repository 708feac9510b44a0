"""What every command shares: the home option, the context, `--json` output and one-line errors."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from js2mail.config import Settings
    from js2mail.service import Context

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug (created if missing).")]
AppOpt = Annotated[str, typer.Option("--app", "-a", help="Application slug (created if missing).")]
ExistingWorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="Workspace slug (must exist).")]
WorkspaceFilter = Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")]
AppFilter = Annotated[str | None, typer.Option("--app", "-a", help="Only this application.")]


def in_range(option: str, low: float, high: float) -> Callable[[Any], Any]:
    """A typer callback for a numeric option: finite and from `low` to `high` (unset passes), else one
    clear line (exit 1) before the command runs. click lets nan, inf and 1e400 through a float option."""

    def check(value: Any) -> Any:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            from js2mail.errors import ValidationError

            raise ValidationError(f"{option} {value} is not allowed: must be a number from {_plain(low)} to "
                                  f"{_plain(high)}", code="invalid_option")
        return value

    return check


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def one_of(option: str, choices: Sequence[str]) -> Callable[[str], str]:
    """A typer callback for a word option: one of `choices` (case-insensitive), else one clear line."""

    def check(value: str) -> str:
        if value.lower() not in choices:
            from js2mail.errors import ValidationError

            raise ValidationError(f"{option} {value!r} is not allowed: must be one of {', '.join(choices)}",
                                  code="invalid_option")
        return value.lower()

    return check


class State:
    home: str | None = None


state = State()


def settings() -> Settings:
    from js2mail.config import load_settings

    return load_settings(state.home)


@contextmanager
def open_context() -> Iterator[Context]:
    from js2mail.service import open_context as _open

    ctx = _open(settings())
    try:
        yield ctx
    finally:
        ctx.close()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def cell(value: Any) -> str:
    """A value as a person reads it: lists comma-separated, objects as k=v, never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


def _unbreakable(values: list[str]) -> bool:
    """A column of single tokens (ids, key prefixes, addresses): cutting one makes it useless."""
    return any(values) and all(" " not in v and len(v) <= 64 for v in values)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          empty: str | None = None) -> None:
    """A table in which nothing is cut: id-like columns never wrap, other columns fold, and a table
    that cannot fit the terminal is printed wider than it (the terminal wraps the lines, as kubectl's
    and gh's wide output does) rather than with ids shortened to `msg_01…`. `empty` is printed
    instead of a table with no rows."""
    from rich.console import Console
    from rich.table import Table

    cells = [[cell(v) for v in row] for row in rows]
    if not cells and empty:
        console().print(empty)
        return
    t = Table(title=title, header_style="bold")
    for i, col in enumerate(columns):
        values = [row[i] for row in cells]
        if _unbreakable(values):
            t.add_column(col, no_wrap=True, min_width=max(len(col), *(len(v) for v in values)))
        else:
            t.add_column(col, overflow="fold", min_width=len(col))
    for row in cells:
        t.add_row(*row)
    out = console()
    needed = Console(width=10_000).measure(t).minimum
    if needed > out.width:
        out = Console(highlight=False, width=needed)
    out.print(t)


def output(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        print_json(data)
    else:
        human()


def run_async(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)
