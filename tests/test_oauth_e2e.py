"""Gmail and Microsoft 365 mailboxes end to end: `js2mail mailboxes add gmail|microsoft` as real
processes against local servers that speak Google's and Microsoft's protocols, then mail sent
through `js2mail serve`, then a dead grant."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.fake_google import FakeGoogle, browse
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.server import REPO, ServerProcess, cli_env, wait_status


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


@pytest.fixture
def microsoft() -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft() as fake:
        yield fake


def js2mail_process(home: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "js2mail", *args], env=cli_env(home, **env), cwd=str(REPO),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)




def test_gmail_connect_send_and_dead_grant(home: Path, google: FakeGoogle, tmp_path: Path) -> None:
    secrets_file = google.write_client_secrets(tmp_path / "client_secret.json")
    proc = js2mail_process(home, google.env(), "mailboxes", "add", "gmail", "-w", "acme", "--app", "shop",
                           "--client-secrets", secrets_file, "--address", "owner@gmail.com", "--no-browser", "--json")
    try:
        assert proc.stderr is not None and proc.stdin is not None
        auth_url, seen = "", []
        while not auth_url:
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
            if "/o/oauth2/auth?" in line:
                auth_url = line.strip().split()[-1]
        while "ssh -L" not in "".join(seen):  # the headless tunnel option is offered
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        assert "scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fgmail.send" in auth_url
        assert "code_challenge=" in auth_url and "access_type=offline" in auth_url
        proc.stdin.write(browse(auth_url, follow=False).headers["Location"] + "\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["provider"] == "gmail"  # --json: stdout holds JSON only
    stored = b"".join(p.read_bytes() for p in home.glob("js2mail.db*"))
    for token in google.refresh_tokens:
        assert token.encode() not in stored

    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    with ServerProcess(home, env=google.env()) as server:
        client = httpx.Client(base_url=server.url, headers={"X-Api-Key": key})
        r = client.post("/v1/send", json={"to": "bob@example.org", "bcc": "audit@example.org",
                                          "subject": "Via Gmail", "text": "hello from the Gmail API"})
        assert wait_status(client, r.json()["id"], {"sent", "failed"})["status"] == "sent"
        (sent,) = google.sent
        assert str(sent.email["Subject"]) == "Via Gmail"
        assert sent.email["From"] == "owner@gmail.com"
        assert sent.email["Bcc"] == "audit@example.org"  # the Gmail API reads Bcc from the message

        google.revoke()
        google.invalidate_access_tokens()
        r = client.post("/v1/send", json={"to": "bob@example.org", "subject": "After revoke", "text": "x"})
        failed = wait_status(client, r.json()["id"], {"sent", "failed"})
        assert failed["status"] == "failed" and failed["attempts"] == 1
        again = client.post("/v1/send", json={"to": "bob@example.org", "subject": "Still revoked", "text": "x"})
        assert again.status_code == 422 and again.json()["error"]["code"] == "mailbox_needs_reconnect"
    listed = run_cli("mailboxes", "list", "--json").json()
    assert listed[0]["status"] == "needs_reconnect"
    refused = run_cli("send", "-w", "acme", "-a", "shop", "--to", "x@example.org", "--subject", "s", "--text", "t")
    assert refused.code == 1 and "reconnect" in refused.err


def test_microsoft_device_code_connect_and_send(home: Path, microsoft: FakeMicrosoft) -> None:
    proc = js2mail_process(home, microsoft.env(), "mailboxes", "add", "microsoft", "-w", "acme", "--app", "shop",
                           "--client-id", microsoft.client_id, "--tenant", "contoso", "--device-code", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "microsoft.com/devicelogin" in err or "code" in err.lower()
    listed = run_cli("mailboxes", "list", "--json").json()
    assert listed[0]["provider"] == "microsoft"
    address = listed[0]["address"]
    stored = b"".join(p.read_bytes() for p in home.glob("js2mail.db*"))
    assert microsoft.latest_refresh_token.encode() not in stored

    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    with ServerProcess(home, env=microsoft.env()) as server:
        client = httpx.Client(base_url=server.url, headers={"X-Api-Key": key})
        r = client.post("/v1/send", json={"to": "bob@example.org", "subject": "Via Graph", "text": "hello"})
        assert wait_status(client, r.json()["id"], {"sent", "failed"})["status"] == "sent"
        (sent,) = microsoft.sent
        assert str(sent.email["Subject"]) == "Via Graph"
        assert address in sent.email["From"]
