"""What every command shares: the home option, the context, `--json` output and one-line errors."""

from __future__ import annotations

import json
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
WorkspaceFilter = Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")]
AppFilter = Annotated[str | None, typer.Option("--app", "-a", help="Only this application.")]


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


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    console().print(t)


def output(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        print_json(data)
    else:
        human()


def run_async(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)
