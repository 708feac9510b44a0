"""What the CLI prints, as a person at a terminal reads it (issue #13): usage errors in one line,
ids never cut, no Python reprs, camelCase JSON keys, a message where a table would be empty."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.support.cli import run_cli
from tests.support.server import REPO, cli_env


def test_a_usage_error_is_one_line_with_a_hint(home: Path) -> None:
    result = run_cli("keys", "create", "--bogus")
    assert result.code == 2
    assert result.err.strip().count("\n") == 0
    assert result.err.startswith("Error: No such option: --bogus (hint: see `js2mail keys create --help`)")


def test_a_usage_error_under_json_is_one_envelope_line(home: Path) -> None:
    result = run_cli("keys", "create", "--bogus", "--json")
    assert result.code == 2
    assert result.out.count("\n") == 1
    error = json.loads(result.out)["error"]
    assert error["code"] == "usage_error" and error["hint"] == "see `js2mail keys create --help`"


def test_ids_are_never_cut_in_a_narrow_terminal(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                   "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth").code == 0
    prefixes = []
    for i in range(3):
        created = run_cli("keys", "create", "-w", "acme", "-a", "shop", "--name", f"a rather long key name {i}",
                          "--json").json()
        prefixes.append(created["prefix"])
    forms = [run_cli("forms", "create", "-w", "acme", "-a", "shop", "--to", "owner@example.com",
                     "--name", "Contact form with a long name", "--json").json()["id"] for _ in range(2)]
    listing = run_cli("keys", "list")
    assert listing.code == 0, listing.err
    for prefix in prefixes:
        assert prefix in listing.out
    form_listing = run_cli("forms", "list")
    for public_id in forms:
        assert public_id in form_listing.out
    assert "…" not in listing.out + form_listing.out


def test_no_python_reprs_and_camel_case_json(home: Path) -> None:
    run_cli("keys", "create", "-w", "scratch", "-a", "web")
    deleted = run_cli("data", "delete", "-w", "scratch", "--yes", "scratch")
    assert deleted.code == 0, deleted.err
    assert not re.search(r"[{}\[\]']", deleted.out), deleted.out
    assert "applications=1" in deleted.out
    report = run_cli("init", "--json").json()
    assert "masterKeySource" in report
    assert not [k for k in report if "_" in k]


def test_empty_key_list_says_what_to_do(home: Path) -> None:
    result = run_cli("keys", "list")
    assert result.code == 0
    assert "No API keys yet" in result.out and "js2mail keys create" in result.out


def test_data_commands_do_not_claim_to_create_the_workspace(home: Path) -> None:
    for command in ("export", "delete"):
        text = run_cli("data", command, "--help").out
        assert "created if missing" not in text and "must exist" in text


def test_attaching_a_folder_says_so(home: Path, tmp_path: Path) -> None:
    result = run_cli("send", "-w", "acme", "-a", "shop", "--to", "bob@example.org", "--subject", "s",
                     "--text", "t", "--attach", str(tmp_path))
    assert result.code == 1
    assert "is a folder" in result.err


def test_mcp_send_email_takes_a_single_address_string(home: Path) -> None:
    assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                   "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth").code == 0
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()

    async def call() -> object:
        params = StdioServerParameters(command=sys.executable, args=["-m", "js2mail", "mcp", "--api-key", key],
                                       env=cli_env(home), cwd=str(REPO))
        async with Client(params) as client:
            return await client.call_tool("sendEmail", {"to": "bob@example.org", "subject": "s", "text": "t"})

    result = asyncio.run(call())
    text = json.dumps(getattr(result, "structured_content", None)) + str(result.content)
    assert "msg_" in text and "queued" in text, text


def test_add_create_and_forms_say_which_mailbox_sends(home: Path) -> None:
    first = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                    "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth")
    assert "Application acme/shop sends from shop@example.com by default" in first.out
    key = run_cli("keys", "create", "-w", "acme", "-a", "blog")
    assert "acme/blog has no default mailbox; it sends from shop@example.com, the workspace's only" in key.err
    assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "two@example.com", "--host", "127.0.0.1",
                   "--port", "9", "--security", "none", "--no-auth").code == 0
    form = run_cli("forms", "create", "-w", "acme", "-a", "blog", "--to", "owner@example.com")
    assert form.code == 1  # two mailboxes, no default: the form would never be mailed
    key = run_cli("keys", "create", "-w", "acme", "-a", "blog")
    assert "will be refused (fix: js2mail mailboxes set-default shop@example.com --workspace acme --app blog)" in key.err
    form = run_cli("forms", "create", "-w", "acme", "-a", "shop", "--to", "owner@example.com")
    assert "Application acme/shop sends from shop@example.com by default" in form.err
    pinned = run_cli("forms", "create", "-w", "acme", "-a", "shop", "--to", "owner@example.com",
                     "--mailbox", "two@example.com")
    assert "Submissions are mailed to owner@example.com through two@example.com." in pinned.err


def test_a_password_prompt_without_a_terminal_is_a_clear_error(home: Path) -> None:
    result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "a@example.com", "--host", "127.0.0.1")
    assert result.code == 1
    assert result.err.startswith("Error: no terminal to ask for the password on (hint: pipe it in with "
                                 "--password-stdin")
    assert "Warning" not in result.err
