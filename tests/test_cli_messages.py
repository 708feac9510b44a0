"""`messages list` and `messages tail` as an operator uses them: filters compose, tail follows
changes from now (or --since) in order, with a header line (issue #13)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.server import REPO, cli_env


def _setup(workspace: str, app: str) -> None:
    assert run_cli("mailboxes", "add", "smtp", "-w", workspace, "--app", app, "--address", f"{app}@example.com",
                   "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth").code == 0


def _send(workspace: str, app: str, subject: str) -> str:
    sent = run_cli("send", "-w", workspace, "-a", app, "--to", "bob@example.org", "--subject", subject,
                   "--text", "t", "--json")
    assert sent.code == 0, sent.err
    return str(sent.json()["id"])


def test_workspace_and_app_filters_compose(home: Path) -> None:
    _setup("acme", "shop")
    _setup("acme", "blog")
    _setup("other", "news")
    shop, blog, news = _send("acme", "shop", "a"), _send("acme", "blog", "b"), _send("other", "news", "c")
    ids = lambda *args: {m["id"] for m in run_cli("messages", "list", *args, "--json").json()["data"]}  # noqa: E731
    assert ids("-w", "acme") == {shop, blog}
    assert ids("-a", "news") == {news}
    assert ids("-w", "acme", "-a", "blog") == {blog}
    assert ids() == {shop, blog, news}
    _setup("other", "shop")
    ambiguous = run_cli("messages", "list", "-a", "shop")
    assert ambiguous.code == 1 and "--workspace" in ambiguous.err
    missing = run_cli("messages", "list", "-w", "nope")
    assert missing.code == 1 and "no workspace 'nope'" in missing.err


def test_tail_follows_from_now_with_a_header(home: Path) -> None:
    _setup("acme", "shop")
    old = _send("acme", "shop", "before")
    follower = subprocess.Popen([sys.executable, "-m", "js2mail", "messages", "tail", "-w", "acme", "--for", "3",
                                 "--interval", "0.1"], env=cli_env(home), cwd=str(REPO), stdout=subprocess.PIPE,
                                text=True)
    assert follower.stdout is not None
    header = follower.stdout.readline()  # printed once tail has taken "now"
    new = _send("acme", "shop", "after")
    out = header + follower.communicate(timeout=20)[0]
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["id", "status"]
    assert old not in out
    assert any(line.startswith(new) for line in lines[1:])
    since = run_cli("messages", "tail", "--since", "10m", "--for", "0.2", "--interval", "0.1").out
    assert since.index(old) < since.index(new)  # oldest change first


def test_no_default_mailbox_names_the_exact_fix(home: Path) -> None:
    for address in ("one@example.com", "two@example.com"):
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", address, "--host", "127.0.0.1",
                       "--port", "9", "--security", "none", "--no-auth").code == 0
    result = run_cli("send", "-w", "acme", "-a", "web", "--to", "bob@example.org", "--subject", "s", "--text", "t")
    assert result.code == 1
    assert "one@example.com, two@example.com" in result.err
    assert "js2mail mailboxes set-default one@example.com --workspace acme --app web" in result.err
