"""The README is the user's manual: every command the CLI has must be documented there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from js2mail.cli import app
from tests.support.server import REPO, ServerProcess, cli_env
from tests.support.smtp_server import SmtpServer

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


# --- The README's path works as written (issue #13) -------------------------------------------------

def section(heading: str, text: str = README) -> str:
    """The body of the Markdown section `heading` (a whole heading line), up to the next heading of its
    level or above; `#` lines inside code blocks are not headings."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.split("\n")
    start = lines.index(heading) + 1
    fenced = False
    for end in range(start, len(lines)):
        if lines[end].startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", lines[end]):
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def shell_commands(block: str) -> list[str]:
    """One string per command: comments dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def option(command: str, name: str) -> str | None:
    found = re.search(rf"(?:^|\s){re.escape(name)}[ =]([^\s)]+)", command)
    return found.group(1) if found else None


def test_the_quick_start_connects_the_mailbox_of_the_application_its_key_is_for() -> None:
    quick = [c for block in shell_blocks(section("## Quick start")) for c in shell_commands(block)]
    adds = [c for c in quick if "mailboxes add" in c]
    keys = [c for c in quick if "keys create" in c]
    assert adds and keys
    scopes = {(option(c, "--workspace"), option(c, "--app")) for c in adds + keys}
    assert len(scopes) == 1 and None not in next(iter(scopes)), scopes


def test_the_quick_start_follows_command_1_without_repeating_it() -> None:
    quick = shell_commands(shell_blocks(section("## Quick start"))[0])
    assert quick[0] == ". .venv/bin/activate"  # `js2mail` is only on PATH once the venv is active
    assert not [c for c in quick if re.search(r"\bjs2mail (init|serve)\b", c)]  # command 1 ran both
    install = section("## Install")
    assert "pipx install ." in install and "uv tool install ." in install


@pytest.mark.parametrize(("heading", "words"), [
    ("### `js2mail serve`", ("serve",)),
    ("### `js2mail messages tail`", ("messages", "tail")),
    ("### `js2mail dns check`", ("dns", "check")),
    ("### SMTP", ("mailboxes", "add", "smtp")),
])
def test_every_option_is_documented_in_its_commands_section(heading: str, words: tuple[str, ...]) -> None:
    command: Any = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]
    text = section(heading)
    names = [n for p in command.params if p.param_type_name == "option" for n in p.opts if n.startswith("--")]
    missing = [n for n in names if n not in ("--json", "--help") and not re.search(re.escape(n) + r"\b", text)]
    assert missing == [], f"{heading} does not document {missing}"


def test_the_benchmark_tables_live_in_docs_performance_and_the_readme_points_there() -> None:
    performance = (Path(__file__).resolve().parents[1] / "docs" / "PERFORMANCE.md").read_text()
    for figure in ("req/s", "msg/s", "p99"):
        assert figure not in README and figure in performance
    for internal in ("gc.freeze", "committer thread", "base62", "APScheduler"):
        assert internal not in README
    assert "docs/PERFORMANCE.md" in section("## Performance")


def test_the_health_checks_answer_what_the_readme_says(home: Path) -> None:
    table = section("### Health checks")
    documented = {route: json.loads(body) for route, body in
                  re.findall(r"`GET (/\w+)` \| `200 (\{.*?\})`", table)}
    assert set(documented) == {"/healthz", "/readyz"}
    with ServerProcess(home) as server:
        for route, body in documented.items():
            reply = httpx.get(server.url + route, timeout=5)
            assert reply.status_code == 200
            assert reply.json().keys() == body.keys()
            assert reply.json()["status"] == body["status"]


def test_the_quick_start_runs_as_written_against_a_local_relay(home: Path) -> None:
    """The Quick start's commands, in bash, with the local relay it offers instead of a real SMTP server:
    the mail arrives and each command succeeds. Only the ports are this test's own."""
    blocks = shell_blocks(section("## Quick start"))
    main = shell_commands(blocks[0])
    relay_add = next(c for b in blocks[1:] for c in shell_commands(b) if "mailboxes add" in c)
    with SmtpServer(tls="none") as smtp, ServerProcess(home) as server:
        script = ["set -euo pipefail"]
        for command in main:
            if command == ". .venv/bin/activate":
                continue  # PATH below holds this interpreter's scripts, which is what activating does
            if "mailboxes add" in command:
                command = relay_add  # "connect it instead of the `mailboxes add` line above"
            if "messages tail" in command:
                command += " --for 2"  # it follows the log until Ctrl-C
            if command.startswith("curl -s -X POST"):
                command = f'SENT=$({command}); echo "$SENT"'
            command = command.replace("msg_…", """$(echo "$SENT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')""")
            script.append(command.replace("127.0.0.1:8025", f"127.0.0.1:{server.port}")
                          .replace("--port 2525", f"--port {smtp.port}"))
        env = cli_env(home, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        run = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=120,
                             env=env, cwd=str(REPO), stdin=subprocess.DEVNULL)
        assert run.returncode == 0, run.stderr
        (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["you@example.org"] and mail.mail_from == "shop@example.com"
    assert mail.message["Subject"] == "Hello" and mail.message.get_content().strip() == "It works."
    decoder = json.JSONDecoder()
    replies = [decoder.raw_decode(run.stdout, m.start())[0] for m in re.finditer(r'\{"id"', run.stdout)]
    sent, status = replies[0], replies[1]  # the 202 of POST /v1/send, then GET /v1/messages/{id}
    assert sent["status"] == "queued" and sent["id"].startswith("msg_")
    assert status["id"] == sent["id"] and status["recipientDomains"] == ["example.org"]
    assert sent["id"] in run.stdout.split("id  status", 1)[1]  # the tail lists it
