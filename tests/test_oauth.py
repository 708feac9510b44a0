"""The terminal connect flows, end to end: google-auth-oauthlib and MSAL against the local fakes.

The test plays the person: it reads the address the flow hands to the browser, "visits" it with
httpx (the fake consent screen answers at once) and lets the redirect reach the loopback listener,
or pastes the address back into the prompt.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from js2mail.errors import Js2MailError
from js2mail.oauth import (
    GMAIL_SCOPES,
    GRAPH_SCOPES,
    OAuthFlowError,
    connect_gmail,
    connect_microsoft,
)
from js2mail.providers.base import OutgoingMessage
from js2mail.providers.gmail import GmailProvider
from js2mail.providers.graph import GraphProvider
from tests.support.fake_google import FakeGoogle, browse, ca_file, pkce_challenge
from tests.support.fake_microsoft import FakeMicrosoft, browse_form_post


@pytest.fixture
def secrets_file(google: FakeGoogle, tmp_path: Path) -> str:
    return google.write_client_secrets(tmp_path / "client_secret.json")


class Terminal:
    """Collects what the flow prints; answers prompts from a script."""

    def __init__(self, *answers: object) -> None:
        self.lines: list[str] = []
        self.prompts: list[str] = []
        self.answers = list(answers)

    def echo(self, text: str) -> None:
        self.lines.append(text)

    def prompt(self, text: str) -> str:
        self.prompts.append(text)
        answer = self.answers.pop(0)
        return str(answer() if callable(answer) else answer)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def outgoing(sender: str) -> OutgoingMessage:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "bob@example.org", "connected"
    msg.set_content("hello\n")
    return OutgoingMessage("msg_3", sender, ("bob@example.org",), msg)


# --- Gmail -------------------------------------------------------------------------------------


async def test_gmail_browser_flow_end_to_end(google: FakeGoogle, secrets_file: str) -> None:
    seen: list[str] = []

    def browser(url: str) -> bool:
        seen.append(url)
        landed = browse(url)  # consent screen -> 302 -> our loopback listener
        assert landed.status_code == 200 and "js2mail received the authorization" in landed.text
        return True

    term = Terminal()
    grant = connect_gmail(
        secrets_file, config=google.config, echo=term.echo, prompt=term.prompt, browser=browser
    )

    params = query(seen[0])
    assert seen[0].startswith(google.config.auth_uri + "?")  # the file's Google URIs were replaced
    assert params["scope"] == GMAIL_SCOPES  # gmail.send and nothing else
    assert params["access_type"] == ["offline"] and params["prompt"] == ["consent"]
    assert params["code_challenge_method"] == ["S256"] and params["code_challenge"][0]
    assert params["redirect_uri"][0].startswith("http://127.0.0.1:")
    exchange = google.token_requests[0]
    assert exchange["grant_type"] == "authorization_code"
    assert pkce_challenge(exchange["code_verifier"]) == params["code_challenge"][0]  # and the fake checked it
    assert grant.client_id == google.client_id and grant.client_secret == google.client_secret
    assert grant.refresh_token in google.refresh_tokens and grant.scopes == GMAIL_SCOPES
    assert term.prompts == []  # a browser that came back needs no typing

    provider = GmailProvider(
        address="me@gmail.example",
        client_id=grant.client_id,
        client_secret=grant.client_secret,
        refresh_token=grant.refresh_token,
        token_uri=google.config.token_uri,
        api_base=google.config.api_base,
    )
    await provider.send(outgoing("me@gmail.example"))
    await provider.close()
    assert google.sent[-1].email["Subject"] == "connected"


def _forge_then_idle(port: int, method: str = "GET") -> socket.socket:
    """An idle connection left open, then a forged redirect with a wrong state: answered 400 at once."""
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    answer = {"code": "attacker", "state": "wrong"}
    url = f"http://127.0.0.1:{port}/"
    forged = httpx.get(url, params=answer, timeout=5) if method == "GET" else httpx.post(url, data=answer, timeout=5)
    assert forged.status_code == 400 and "keeps waiting" in forged.text
    return idle


def test_gmail_forged_redirect_and_idle_connection_do_not_stop_the_real_one(
        google: FakeGoogle, secrets_file: str) -> None:
    held: list[socket.socket] = []

    def browser(url: str) -> bool:
        port = int(urlsplit(query(url)["redirect_uri"][0]).port or 0)
        held.append(_forge_then_idle(port))
        landed = browse(url)  # the real redirect still lands while the idle connection stays open
        assert landed.status_code == 200 and "js2mail received the authorization" in landed.text
        return True

    try:
        grant = connect_gmail(secrets_file, config=google.config, echo=lambda s: None, browser=browser, timeout=20)
    finally:
        for sock in held:
            sock.close()
    assert grant.refresh_token in google.refresh_tokens
    assert [r.get("code") != "attacker" for r in google.token_requests] == [True]  # one exchange, the real code


def test_gmail_paste_the_redirected_address(google: FakeGoogle, secrets_file: str) -> None:
    term = Terminal()

    def paste() -> str:
        auth_url = next(line.strip() for line in term.text.splitlines() if "/o/oauth2/auth?" in line)
        # The browser would fail to load this loopback address on a laptop; the person copies it.
        return browse(auth_url, follow=False).headers["Location"]

    term.answers.append(paste)
    grant = connect_gmail(
        secrets_file, config=google.config, open_browser=False, echo=term.echo, prompt=term.prompt
    )
    port = urlsplit(google.auth_requests[0]["redirect_uri"]).port
    assert f"ssh -L {port}:127.0.0.1:{port} user@your-vps" in term.text
    assert grant.refresh_token in google.refresh_tokens
    assert len(term.prompts) == 1


def test_gmail_tunnel_route_then_enter(google: FakeGoogle, secrets_file: str) -> None:
    term = Terminal()

    def tunnel_then_enter() -> str:
        auth_url = next(line.strip() for line in term.text.splitlines() if "/o/oauth2/auth?" in line)
        assert browse(auth_url).status_code == 200  # through "ssh -L", the redirect reaches the listener
        return ""

    term.answers.append(tunnel_then_enter)
    grant = connect_gmail(
        secrets_file, config=google.config, open_browser=False, echo=term.echo, prompt=term.prompt
    )
    assert grant.refresh_token in google.refresh_tokens


def test_gmail_fixed_port_is_used(google: FakeGoogle, secrets_file: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connect_gmail(
        secrets_file,
        config=google.config,
        port=port,
        echo=lambda s: None,
        browser=lambda url: browse(url).status_code == 200,
    )
    assert google.auth_requests[0]["redirect_uri"] == f"http://127.0.0.1:{port}/"


def test_gmail_busy_port_is_a_clear_error(google: FakeGoogle, secrets_file: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OAuthFlowError) as info:
            connect_gmail(secrets_file, config=google.config, port=busy.getsockname()[1], echo=lambda s: None)
    assert info.value.code == "oauth_port_unavailable"


def test_gmail_consent_denied(google: FakeGoogle, secrets_file: str) -> None:
    google.consent = "deny"
    with pytest.raises(OAuthFlowError) as info:
        connect_gmail(
            secrets_file, config=google.config, echo=lambda s: None, browser=lambda url: bool(browse(url))
        )
    assert info.value.code == "oauth_consent_denied" and google.token_requests == []


def test_gmail_pasted_address_from_another_attempt_is_refused(google: FakeGoogle, secrets_file: str) -> None:
    term = Terminal()

    def stale() -> str:
        auth_url = next(line.strip() for line in term.text.splitlines() if "/o/oauth2/auth?" in line)
        location = browse(auth_url, follow=False).headers["Location"]
        return location.replace("state=", "state=old")

    term.answers.append(stale)
    with pytest.raises(OAuthFlowError) as info:
        connect_gmail(
            secrets_file, config=google.config, open_browser=False, echo=term.echo, prompt=term.prompt
        )
    assert info.value.code == "oauth_state_mismatch" and google.token_requests == []


def test_gmail_without_send_permission_is_refused(google: FakeGoogle, secrets_file: str) -> None:
    google.granted_scope = "openid"  # the person unticked "send email on your behalf"
    with pytest.raises(OAuthFlowError) as info:
        connect_gmail(
            secrets_file, config=google.config, echo=lambda s: None, browser=lambda url: bool(browse(url))
        )
    assert info.value.code == "oauth_scope_not_granted"


def test_gmail_browser_that_never_returns_times_out(google: FakeGoogle, secrets_file: str) -> None:
    with pytest.raises(OAuthFlowError) as info:
        connect_gmail(
            secrets_file, config=google.config, echo=lambda s: None, browser=lambda url: True, timeout=0.3
        )
    assert info.value.code == "oauth_timeout"


def test_gmail_nobody_answers(google: FakeGoogle, secrets_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("js2mail.oauth.TUNNEL_GRACE", 0.05)
    term = Terminal(*["ok"] * 5)
    with pytest.raises(OAuthFlowError) as info:
        connect_gmail(
            secrets_file, config=google.config, open_browser=False, echo=term.echo, prompt=term.prompt
        )
    assert info.value.code == "oauth_no_response" and len(term.prompts) == 5


def test_fake_google_really_checks_pkce(google: FakeGoogle) -> None:
    verifier = "v" * 64
    auth = httpx.URL(
        google.config.auth_uri,
        params={
            "client_id": google.client_id,
            "redirect_uri": "http://127.0.0.1:9/",
            "response_type": "code",
            "scope": GMAIL_SCOPES[0],
            "state": "s",
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        },
    )
    code = query(browse(str(auth), follow=False).headers["Location"])["code"][0]
    answer = httpx.post(
        google.config.token_uri,
        verify=ca_file(),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9/",
            "client_id": google.client_id,
            "client_secret": google.client_secret,
            "code_verifier": "w" * 64,
        },
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (None, "client_secrets_missing"),
        ("not json", "client_secrets_invalid"),
        (json.dumps({"web": {"client_id": "x", "client_secret": "y"}}), "client_secrets_invalid"),
        (json.dumps({"installed": {"client_id": "x"}}), "client_secrets_invalid"),
    ],
)
def test_bad_client_secrets_file(google: FakeGoogle, tmp_path: Path, content: str | None, code: str) -> None:
    path = tmp_path / "client.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(OAuthFlowError) as info:
        connect_gmail(str(path), config=google.config, echo=lambda s: None)
    assert info.value.code == code and info.value.hint
    assert isinstance(info.value, Js2MailError)


# --- Microsoft ---------------------------------------------------------------------------------


async def test_microsoft_device_code_end_to_end(ms: FakeMicrosoft) -> None:
    term = Terminal()
    grant = connect_microsoft(ms.client_id, config=ms.config, device_code=True, echo=term.echo)
    assert "enter the code" in term.text
    assert grant.address == ms.username
    assert grant.authority == ms.authority("common")
    device = next(r for r in ms.requests if r.path.endswith("/devicecode")).form()
    assert device["scope"].split()[0] == GRAPH_SCOPES[0] and "offline_access" in device["scope"].split()
    polls = [r for r in ms.token_requests if r["grant_type"].endswith("device_code")]
    assert len(polls) == 2  # pending once, then approved
    cache = json.loads(grant.cache)
    assert {e["secret"] for e in cache["RefreshToken"].values()} == {ms.latest_refresh_token}

    saved: list[bytes] = []

    async def keep(blob: bytes) -> None:
        saved.append(blob)

    provider = GraphProvider(
        address=grant.address,
        client_id=grant.client_id,
        authority=grant.authority,
        cache=grant.cache,
        on_cache_change=keep,
        graph_base=ms.config.graph_base,
    )
    await provider.send(outgoing(grant.address))
    await provider.close()
    assert ms.sent[-1].email["Subject"] == "connected"


def test_microsoft_interactive_flow(ms: FakeMicrosoft) -> None:
    seen: list[str] = []

    def browser(url: str) -> bool:
        seen.append(url)
        assert browse_form_post(url).status_code == 200  # Entra's form_post to http://localhost:PORT
        return True

    grant = connect_microsoft(
        ms.client_id, tenant="organizations", config=ms.config, echo=lambda s: None, browser=browser
    )
    params = query(seen[0])
    assert set(params["scope"][0].split()) == {"Mail.Send", "offline_access", "openid", "profile"}
    assert params["response_mode"] == ["form_post"] and params["code_challenge_method"] == ["S256"]
    assert params["redirect_uri"][0].startswith("http://localhost:")
    assert grant.address == ms.username and grant.authority.endswith("/organizations")


def test_microsoft_forged_form_post_and_idle_connection_do_not_stop_the_real_one(ms: FakeMicrosoft) -> None:
    held: list[socket.socket] = []

    def browser(url: str) -> bool:
        port = int(urlsplit(query(url)["redirect_uri"][0]).port or 0)
        held.append(_forge_then_idle(port, "POST"))
        assert browse_form_post(url).status_code == 200
        return True

    try:
        grant = connect_microsoft(ms.client_id, tenant="organizations", config=ms.config, echo=lambda s: None,
                                  browser=browser, timeout=20)
    finally:
        for sock in held:
            sock.close()
    assert grant.address == ms.username


def test_microsoft_device_code_declined(ms: FakeMicrosoft) -> None:
    ms.device_pending_polls = 10
    ms.device_interval = 0

    def echo(text: str) -> None:
        ms.approve_device(approve=False)

    with pytest.raises(OAuthFlowError) as info:
        connect_microsoft(ms.client_id, config=ms.config, device_code=True, echo=echo)
    assert info.value.code == "oauth_consent_denied"


def test_microsoft_device_code_times_out(ms: FakeMicrosoft) -> None:
    ms.device_pending_polls = 10_000
    ms.device_interval = 1
    with pytest.raises(OAuthFlowError) as info:
        connect_microsoft(ms.client_id, config=ms.config, device_code=True, echo=lambda s: None, timeout=0.5)
    assert info.value.code == "oauth_timeout"


def test_microsoft_interactive_consent_denied(ms: FakeMicrosoft) -> None:
    ms.consent = "deny"
    with pytest.raises(OAuthFlowError) as info:
        connect_microsoft(
            ms.client_id,
            config=ms.config,
            echo=lambda s: None,
            browser=lambda url: bool(browse_form_post(url)),
        )
    assert info.value.code == "oauth_consent_denied"


def test_microsoft_unreachable_authority(trust_test_ca: None) -> None:
    from js2mail.config import MicrosoftConfig

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with pytest.raises(OAuthFlowError) as info:
        connect_microsoft(
            "cid",
            config=MicrosoftConfig(authority=f"https://127.0.0.1:{dead}"),
            device_code=True,
            echo=lambda s: None,
        )
    assert info.value.code == "oauth_authority_error"


def test_microsoft_with_explicit_http_client(ms: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    grant = connect_microsoft(
        ms.client_id,
        config=ms.config,
        device_code=True,
        echo=lambda s: None,
        msal_http_client=ms.requests_session(),
    )
    assert grant.address == ms.username


def test_gmail_paste_flow_in_a_real_terminal_process(
    google: FakeGoogle, secrets_file: str, tmp_path: Path
) -> None:
    """Default print/input over pipes, endpoints from the environment, as a CLI process runs it."""
    import os
    import subprocess
    import sys

    script = (
        "from js2mail.config import load_settings; from js2mail.oauth import connect_gmail\n"
        f"config = load_settings({str(tmp_path)!r}).providers.google\n"
        f"g = connect_gmail({secrets_file!r}, config=config, open_browser=False)\n"
        "print('REFRESH=' + g.refresh_token, flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, **google.env(), "JS2MAIL_HOME": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        auth_url = ""
        while not auth_url:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            if "/o/oauth2/auth?" in line:
                auth_url = line.strip()
        proc.stdin.write(browse(auth_url, follow=False).headers["Location"] + "\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert any(f"REFRESH={token}" in out for token in google.refresh_tokens)
