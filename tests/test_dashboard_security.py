"""The dashboard's gate against a real `serve` subprocess, over plain HTTP: sign-in links are
single-use and expire, every page and fragment needs a session, state changes need the CSRF
token, a workspace-limited session sees nothing else (404), every answer carries the CSP, and
the /v1 API-key gate is unchanged."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from js2mail.clock import FakeClock
from js2mail.config import load_settings
from js2mail.service import dashboard, open_context
from tests.support.cli import run_cli
from tests.support.server import ServerProcess, free_port, wait_status
from tests.support.smtp_server import SmtpServer

PAGES = ["/dashboard", "/dashboard/messages", "/dashboard/keys", "/dashboard/mailboxes", "/dashboard/forms",
         "/dashboard/webhooks", "/dashboard/data"]


def prepare(home: Path, smtp_port: int, port: int, extra_config: str = "") -> dict[str, Any]:
    """Two workspaces (acme, other), each with an SMTP mailbox and a key; config for `port`."""
    (home / "config.toml").write_text(f"[server]\nport = {port}\n[dispatch]\npoll_interval = 0.2\n{extra_config}")
    keys = {}
    for ws in ("acme", "other"):
        assert run_cli("mailboxes", "add", "smtp", "-w", ws, "--app", "site", "--address", f"mail@{ws}.example",
                       "--host", "127.0.0.1", "--port", str(smtp_port), "--security", "none", "--no-auth").code == 0
        keys[ws] = run_cli("keys", "create", "-w", ws, "-a", "site", "--json").json()
    return keys


def link(workspace: str | None = None) -> str:
    args = ["dashboard", "link", "--json"] + (["--workspace", workspace] if workspace else [])
    result = run_cli(*args)
    assert result.code == 0, result.err
    return str(result.json()["url"])


def open_link(client: httpx.Client, url: str) -> httpx.Response:
    """What a person does: open the link, then press its button (a POST of the link's token)."""
    page = client.get(url)
    if page.status_code != 200:
        return page
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token and 'action="/dashboard/sign-in"' in page.text
    return client.post(url.split("?")[0], data={"token": token.group(1)})


def signed_in(url: str, workspace: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    reply = open_link(client, link(workspace))
    assert reply.status_code == 303 and reply.headers["location"] == "/dashboard"
    return client


def csrf_of(client: httpx.Client) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/dashboard/keys").text)
    assert match
    return match.group(1)


def running_site(home: Path) -> Iterator[dict[str, Any]]:
    """`serve` and an SMTP server, with one sent message and one key in each workspace."""
    port = free_port()
    with SmtpServer(tls="none") as smtp:
        keys = prepare(home, smtp.port, port)
        with ServerProcess(home, port=port) as server:
            sent = {}
            for ws, key in keys.items():
                api = httpx.Client(base_url=server.url, headers={"X-Api-Key": key["key"]}, timeout=10)
                sent[ws] = api.post("/v1/send", json={"to": f"someone@{ws}-customer.example", "subject": "hi",
                                                      "text": "secret body"}).json()["id"]
                wait_status(api, sent[ws], {"sent"})
            yield {"server": server, "keys": keys, "messages": sent, "home": home, "smtp": smtp}


@pytest.fixture
def site(home: Path) -> Iterator[dict[str, Any]]:
    yield from running_site(home)


def test_a_link_opens_one_session_with_a_strict_cookie_and_only_once(site: dict[str, Any]) -> None:
    url = link()
    client = httpx.Client(base_url=site["server"].url, timeout=10)
    for _ in range(2):  # opening the page (a link preview, a reload) does not use the link up
        landing = client.get(url)
        assert landing.status_code == 200 and "Open the dashboard" in landing.text and "set-cookie" not in landing.headers
    first = open_link(client, url)
    assert first.status_code == 303
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http public URL; https below
    overview = client.get("/dashboard")
    assert overview.status_code == 200 and "Sends per hour" in overview.text
    token = url.split("token=")[1]
    reused = httpx.post(site["server"].url + "/dashboard/sign-in", data={"token": token}, timeout=10)
    assert reused.status_code == 403 and "set-cookie" not in reused.headers
    again = httpx.get(url, timeout=10)
    assert again.status_code == 403 and again.text == reused.text
    assert "set-cookie" not in again.headers
    assert "does not work" in again.text and "acme" not in again.text
    wrong = httpx.get(site["server"].url + "/dashboard/sign-in?token=nope", timeout=10)
    assert wrong.status_code == 403 and wrong.text == again.text  # no information about why


def _with_clock(home: Path, at: float) -> Any:
    return open_context(load_settings(home), clock=FakeClock(at))


def test_an_expired_link_and_an_expired_session_are_refused(site: dict[str, Any]) -> None:
    now = time.time()
    ctx = _with_clock(site["home"], now - dashboard.LINK_SECONDS - 1)
    try:
        stale = dashboard.create_link(ctx)["url"]
    finally:
        ctx.close()
    ctx = _with_clock(site["home"], now - dashboard.LINK_SECONDS + 30)
    try:
        fresh = dashboard.create_link(ctx)["url"]
    finally:
        ctx.close()
    assert httpx.get(stale, timeout=10).status_code == 403
    refused = httpx.post(site["server"].url + "/dashboard/sign-in", data={"token": stale.split("token=")[1]})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    with httpx.Client(timeout=10) as client:  # nine and a half minutes old: still good
        assert open_link(client, fresh).status_code == 303

    ctx = _with_clock(site["home"], now - dashboard.SESSION_SECONDS - 60)
    try:
        token = dashboard.redeem_link(ctx, dashboard.create_link(ctx)["url"].split("token=")[1])
    finally:
        ctx.close()
    assert token
    reply = httpx.get(site["server"].url + "/dashboard", cookies={"js2mail_dashboard": token}, timeout=10)
    assert reply.status_code == 401 and "Sign in" in reply.text


def test_no_page_or_fragment_answers_without_a_session(site: dict[str, Any]) -> None:
    base = site["server"].url
    acme_msg, prefix = site["messages"]["acme"], site["keys"]["acme"]["prefix"]
    gets = [*PAGES, f"/dashboard/messages/{acme_msg}", "/dashboard/messages?status=sent", "/dashboard/data/acme/export",
            "/dashboard/webhooks/whk_x", "/dashboard/forms/abc", "/dashboard/forms/abc/preview/plain"]
    posts = ["/dashboard/keys", f"/dashboard/keys/{prefix}/rotate", f"/dashboard/keys/{prefix}/revoke",
             f"/dashboard/messages/{acme_msg}/cancel", "/dashboard/mailboxes/test", "/dashboard/data/acme/delete",
             "/dashboard/sign-out", "/dashboard/forms", "/dashboard/webhooks/whk_x/test",
             "/dashboard/webhooks/whk_x/rotate-secret", "/dashboard/webhooks/whk_x/enable",
             "/dashboard/webhooks/whk_x/deliveries/d/redeliver", "/dashboard/webhooks/whk_x/disable"]
    for cookies in ({}, {"js2mail_dashboard": "forged"}):
        for path in gets:
            reply = httpx.get(base + path, cookies=cookies, headers={"HX-Request": "true"}, timeout=10)
            assert reply.status_code == 401, path
            assert acme_msg not in reply.text and prefix not in reply.text and "acme" not in reply.text
        for path in posts:
            reply = httpx.post(base + path, cookies=cookies, data={"confirm": "acme", "workspace": "acme",
                                                                  "application": "x"}, timeout=10)
            assert reply.status_code == 401, path
    assert run_cli("keys", "list", "--json").json()[0]["revoked"] is False
    assert len(run_cli("keys", "list", "--json").json()) == 2
    assert run_cli("data", "export", "-w", "acme").code == 0  # the workspace is still there


def test_state_changes_without_the_csrf_token_are_refused(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url)
    form = {"workspace": "acme", "application": "shop"}
    assert client.post("/dashboard/keys", data=form).status_code == 403
    assert client.post("/dashboard/keys", data={**form, "csrf": "0" * 64}).status_code == 403
    assert client.post("/dashboard/keys", data=form, headers={"X-CSRF-Token": "bad"}).status_code == 403
    other = signed_in(site["server"].url)  # another session's token is not this one's
    assert client.post("/dashboard/keys", data={**form, "csrf": csrf_of(other)}).status_code == 403
    assert len(run_cli("keys", "list", "--json").json()) == 2
    made = client.post("/dashboard/keys", data=form, headers={"X-CSRF-Token": csrf_of(client)})
    assert made.status_code == 200 and "js2_live_" in made.text
    assert len(run_cli("keys", "list", "--json").json()) == 3
    made = client.post("/dashboard/keys", data={**form, "csrf": csrf_of(client)})  # the plain-form field works too
    assert made.status_code == 200
    assert len(run_cli("keys", "list", "--json").json()) == 4


def test_a_workspace_session_cannot_see_or_touch_another_workspace(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url, "acme")
    token = {"X-CSRF-Token": csrf_of(client)}
    theirs, their_key = site["messages"]["other"], site["keys"]["other"]["prefix"]
    assert client.get(f"/dashboard/messages/{site['messages']['acme']}").status_code == 200
    assert client.get(f"/dashboard/messages/{theirs}").status_code == 404
    assert client.post(f"/dashboard/messages/{theirs}/cancel", headers=token).status_code == 404
    assert client.get("/dashboard/data/other/export").status_code == 404
    assert client.post("/dashboard/data/other/delete", data={"confirm": "other"}, headers=token).status_code == 404
    assert client.post(f"/dashboard/keys/{their_key}/rotate", headers=token).status_code == 404
    assert client.post(f"/dashboard/keys/{their_key}/revoke", headers=token).status_code == 404
    assert client.post("/dashboard/keys", data={"workspace": "other", "application": "x"},
                       headers=token).status_code == 404
    assert client.post("/dashboard/mailboxes/test", data={"mailbox": "other mail@other.example",
                                                          "to": "a@b.example"}, headers=token).status_code == 404
    for path in PAGES:
        page = client.get(path).text
        assert theirs not in page and their_key not in page and "other.example" not in page, path
    keys = run_cli("keys", "list", "-w", "other", "--json").json()
    assert [k["revoked"] for k in keys] == [False]
    assert run_cli("data", "export", "-w", "other").code == 0


def test_every_answer_carries_the_strict_csp(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url)
    replies = [client.get(p) for p in [*PAGES, f"/dashboard/messages/{site['messages']['acme']}",
                                       "/dashboard/data/acme/export", "/dashboard/messages/msg_nope",
                                       "/dashboard/static/dashboard.css"]]
    replies.append(httpx.get(site["server"].url + "/dashboard", timeout=10))
    replies.append(httpx.get(site["server"].url + "/dashboard/sign-in?token=x", timeout=10))
    replies.append(client.post("/dashboard/keys", data={}))  # CSRF refusal
    for reply in replies:
        csp = reply.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, reply.url
        assert "script-src 'self';" in csp and "unsafe" not in csp, reply.url
        assert reply.headers["x-frame-options"] == "DENY"
    for reply in replies[:7]:
        assert reply.status_code == 200
        assert not re.search(r"<script(?![^>]*\bsrc=)", reply.text), reply.url  # no inline script
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", reply.text), reply.url  # nothing external
        assert " style=" not in reply.text and " on" + "click=" not in reply.text


def test_pages_show_domains_never_addresses_or_bodies(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url)
    for path in [*PAGES, f"/dashboard/messages/{site['messages']['acme']}"]:
        page = client.get(path).text
        assert "someone@" not in page and "secret body" not in page, path
    assert "acme-customer.example" in client.get("/dashboard/messages").text


def test_sessions_are_listed_and_revoked_from_the_cli(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url, "acme")
    (listed,) = run_cli("dashboard", "sessions", "--json").json()
    assert listed["workspace"] == "acme"
    assert client.get("/dashboard").status_code == 200
    assert run_cli("dashboard", "revoke", listed["id"]).code == 0
    assert client.get("/dashboard").status_code == 401
    assert run_cli("dashboard", "sessions", "--json").json() == []
    missing = run_cli("dashboard", "revoke", listed["id"])
    assert missing.code == 1 and "no dashboard session" in missing.err
    stored = (site["home"] / "js2mail.db").read_bytes()
    assert client.cookies.get("js2mail_dashboard", "").encode() not in stored  # only hashes are kept


def test_v1_auth_is_unchanged_and_ignores_the_dashboard_cookie(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url)
    reply = client.get("/v1/messages")
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "unauthorized"
    reply = client.post("/v1/send", json={"to": "a@b.example", "subject": "s", "text": "t"})
    assert reply.status_code == 401
    keyed = httpx.get(site["server"].url + "/v1/messages", headers={"X-Api-Key": site["keys"]["acme"]["key"]})
    assert keyed.status_code == 200 and "content-security-policy" not in keyed.headers


def test_a_link_for_an_unknown_workspace_is_an_error(home: Path) -> None:
    result = run_cli("dashboard", "link", "--workspace", "nope")
    assert result.code == 1 and "no workspace 'nope'" in result.err


def test_https_public_url_makes_the_cookie_secure_and_disabled_means_404(home: Path) -> None:
    port = free_port()
    (home / "config.toml").write_text(f"[server]\nport = {port}\npublic_url = \"https://mail.example.org\"\n")
    url = link().replace("https://mail.example.org", f"http://127.0.0.1:{port}")
    with ServerProcess(home, port=port) as server:
        reply = open_link(httpx.Client(timeout=10), url)
        assert reply.status_code == 303 and "Secure" in reply.headers["set-cookie"]
        assert httpx.get(server.url + "/dashboard", timeout=10).status_code == 401
    with ServerProcess(home, port=port, env={"JS2MAIL_DASHBOARD_ENABLED": "false"}) as server:
        assert httpx.get(server.url + "/dashboard", timeout=10).status_code == 404
        assert httpx.get(server.url + "/dashboard/sign-in?token=x", timeout=10).status_code == 404
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_sign_out_ends_the_session_and_needs_the_csrf_token(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url)
    token = csrf_of(client)
    assert client.post("/dashboard/sign-out").status_code == 403
    assert client.get("/dashboard").status_code == 200
    out = client.post("/dashboard/sign-out", data={"csrf": token})
    assert out.status_code == 200 and "Signed out" in out.text
    assert 'js2mail_dashboard=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert httpx.get(site["server"].url + "/dashboard", cookies={"js2mail_dashboard": "x"}).status_code == 401
    assert run_cli("dashboard", "sessions", "--json").json() == []


def test_used_links_and_ended_sessions_are_deleted_at_the_next_sign_in(site: dict[str, Any]) -> None:
    import sqlite3

    first = signed_in(site["server"].url)
    (session,) = run_cli("dashboard", "sessions", "--json").json()
    assert run_cli("dashboard", "revoke", session["id"]).code == 0
    now = time.time()
    ctx = _with_clock(site["home"], now - dashboard.LINK_SECONDS - 5)
    try:
        dashboard.create_link(ctx)  # expired by now, never used
    finally:
        ctx.close()
    signed_in(site["server"].url)
    db = sqlite3.connect(site["home"] / "js2mail.db")
    sessions = db.execute("SELECT id FROM dashboard_sessions").fetchall()
    links = db.execute("SELECT expires_at FROM dashboard_links").fetchall()
    assert session["id"] not in {r[0] for r in sessions} and len(sessions) == 1
    assert all(expires > now for (expires,) in links)
    assert first.get("/dashboard").status_code == 401
