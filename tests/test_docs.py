"""The README is the user's manual: every command the CLI has must be documented there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from js2mail.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        if hasattr(command, "commands"):  # a group (typer vendors its own click classes)
            found.extend(commands(command, path))
        else:
            found.append(path)
    return found


def test_every_command_is_in_the_readme() -> None:
    root = typer.main.get_command(app)
    missing = []
    for path in commands(root):
        *groups, last = path
        pattern = r"js2mail " + r" ".join(re.escape(g) for g in groups) + (r" " if groups else "") + \
            r"[^\n`]*?\b" + re.escape(last) + r"\b"
        if not re.search(pattern, README):
            missing.append(" ".join(path))
    assert missing == [], f"commands missing from README.md: {missing}"


def test_readme_set_up_commands_match_ci() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    test_command = "unshare -n sh -c 'ip link set lo up && exec \"$@\"' - .venv/bin/python -m pytest -q"
    assert test_command in README and test_command in ci
