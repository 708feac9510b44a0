"""Every bound is checked where it enters: CLI options, durations, mailbox fields, SMTP security.

Each case runs the real `js2mail` entry point and checks what a user sees (exit code, one line, no
"please report it") and what was (not) stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from js2mail.errors import ProviderError
from js2mail.providers.base import OutgoingMessage
from js2mail.providers.smtp import SmtpProvider, SmtpSettings
from tests.support.cli import Result, run_cli
from tests.support.smtp_server import SmtpServer

BAD_NUMBERS = ["0", "-1", "nan", "inf", "1e400"]


def assert_clear_error(result: Result, *needles: str) -> None:
    """A non-zero exit with one line on stderr that is not the internal-error path."""
    assert result.code != 0, result.out
    text = result.err + result.out
    assert "Traceback" not in text and "please report it" not in text, text
    assert len(result.err.strip().splitlines()) == 1, result.err
    for needle in needles:
        assert needle in result.err, result.err


def mailbox_rows(home: Path) -> list[dict[str, object]]:
    with sqlite3.connect(home / "js2mail.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT address, display_name, daily_quota, settings FROM mailboxes")]


# --- 1. --security none only to loopback, unless --insecure-allow-plaintext ---------------------


def test_security_none_to_a_network_host_is_refused_unless_flagged_and_doctor_warns(home: Path) -> None:
    refused = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "shop@example.com",
                      "--host", "192.0.2.10", "--security", "none", "--password-stdin", stdin="s3cret\n")
    assert_clear_error(refused, "192.0.2.10", "--insecure-allow-plaintext")
    assert mailbox_rows(home) == []

    allowed = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "shop@example.com",
                      "--host", "192.0.2.10", "--security", "none", "--insecure-allow-plaintext",
                      "--password-stdin", "--json", stdin="s3cret\n")
    assert allowed.code == 0, allowed.err
    assert allowed.json()["settings"]["insecure_allow_plaintext"] is True
    (row,) = mailbox_rows(home)
    assert json.loads(str(row["settings"]))["insecure_allow_plaintext"] is True

    doctor = {c["check"]: c for c in run_cli("doctor", "--json").json()}
    assert doctor["mailbox shop@example.com"]["status"] == "warn"
    assert "unencrypted" in doctor["mailbox shop@example.com"]["detail"]

    with SmtpServer(tls="none", auth=("relay", "s3cret")) as server:  # a relay on loopback needs no flag
        added = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "relay@example.com",
                        "--host", "localhost", "--port", str(server.port), "--security", "none",
                        "--username", "relay", "--password-stdin", stdin="s3cret\n")
        assert added.code == 0, added.err
        sent = run_cli("mailboxes", "test", "relay@example.com", "--to", "rcpt@example.net")
        assert sent.code == 0, sent.err
        (got,) = server.wait_for(1)
        assert got.rcpt_tos == ["rcpt@example.net"]
    doctor = {c["check"]: c for c in run_cli("doctor", "--json").json()}
    assert doctor["mailbox relay@example.com"]["status"] == "ok"


async def test_provider_never_sends_auth_in_clear_to_a_network_host() -> None:
    message = OutgoingMessage("m1", "shop@example.com", ("rcpt@example.net",), _email())
    refused = SmtpProvider(SmtpSettings(host="192.0.2.10", port=25, username="relay", password="s3cret",
                                        security="none", timeout=2))
    with pytest.raises(ProviderError) as err:
        await refused.send(message)
    assert err.value.code == "smtp_plaintext_auth_refused" and err.value.retryable is False
    with SmtpServer(tls="none", auth=("relay", "s3cret")) as server:
        local = SmtpProvider(SmtpSettings(host="127.0.0.1", port=server.port, username="relay", password="s3cret",
                                          security="none", timeout=5))
        try:
            await local.send(message)
        finally:
            await local.close()
        assert len(server.wait_for(1)) == 1


def _email() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "shop@example.com", "rcpt@example.net", "hi"
    msg.set_content("hello\n")
    return msg


# --- 2. an empty SMTP password ---------------------------------------------------------------------


def test_empty_password_from_stdin_is_refused_unless_no_auth(home: Path) -> None:
    empty = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "shop@example.com",
                    "--host", "smtp.example.com", "--password-stdin", stdin="\n")
    assert_clear_error(empty, "password", "--no-auth")
    assert mailbox_rows(home) == []
    no_auth = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "shop@example.com",
                      "--host", "smtp.example.com", "--no-auth")
    assert no_auth.code == 0, no_auth.err


# --- 3. grace durations ------------------------------------------------------------------------------


@pytest.mark.parametrize("grace", ["inf", "1e400", "nan", "-1", "-5m", "400d", "infh"])
def test_key_rotate_grace_out_of_range_writes_nothing(home: Path, grace: str) -> None:
    first = run_cli("keys", "create", "-w", "acme", "-a", "shop", "--json").json()
    result = run_cli("keys", "rotate", first["prefix"], "--grace", grace)
    assert_clear_error(result, grace)
    listed = run_cli("keys", "list", "--json")
    assert listed.code == 0, listed.err
    assert [(k["prefix"], k["revoked"], k["revokesAt"]) for k in listed.json()] == [(first["prefix"], False, None)]
    assert run_cli("data", "export", "-w", "acme").code == 0
    assert run_cli("keys", "rotate", first["prefix"], "--grace", "365d").code == 0  # the longest allowed


@pytest.mark.parametrize("grace", ["inf", "1e400", "nan", "-1"])
def test_webhook_rotate_secret_grace_out_of_range_writes_nothing(home: Path, grace: str) -> None:
    os.environ["JS2MAIL_WEBHOOKS_ALLOW_PRIVATE"] = "1"
    try:
        added = run_cli("webhooks", "add", "http://127.0.0.1:9/hook", "-w", "acme", "-a", "shop", "--json")
        assert added.code == 0, added.err
        endpoint = added.json()["id"]
        result = run_cli("webhooks", "rotate-secret", endpoint, "--grace", grace)
        assert_clear_error(result, grace)
        with sqlite3.connect(home / "js2mail.db") as conn:
            assert conn.execute("SELECT previous_secret, previous_secret_until FROM webhook_endpoints").fetchall() \
                == [(None, None)]
        assert run_cli("webhooks", "list").code == 0
        assert run_cli("data", "export", "-w", "acme").code == 0
    finally:
        del os.environ["JS2MAIL_WEBHOOKS_ALLOW_PRIVATE"]


# --- 5. mailbox display names and quotas ---------------------------------------------------------


@pytest.mark.parametrize("extra,needle", [
    (["--daily-quota", "-5"], "--daily-quota"),
    (["--daily-quota", "0"], "--daily-quota"),
    (["--name", "Shop\r\nBcc: victim@example.org"], "display name"),
    (["--name", "Shop\x00"], "display name"),
    (["--name", "S" * 201], "display name"),
])
def test_bad_mailbox_fields_are_refused_and_nothing_is_stored(home: Path, extra: list[str], needle: str) -> None:
    result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "shop@example.com",
                     "--host", "smtp.example.com", "--no-auth", *extra)
    assert_clear_error(result, needle)
    assert mailbox_rows(home) == []


def test_oauth_mailbox_display_name_is_checked_before_the_sign_in(home: Path, tmp_path: Path) -> None:
    result = run_cli("mailboxes", "add", "gmail", "-w", "acme", "--address", "me@example.com", "--no-browser",
                     "--client-secrets", str(tmp_path / "missing.json"), "--name", "Me\nBcc: x@example.org")
    assert_clear_error(result, "display name")  # not "client secrets file ... does not exist": checked first


def test_add_mailbox_service_refuses_control_characters_for_every_provider(home: Path) -> None:
    from js2mail.config import load_settings
    from js2mail.errors import ValidationError
    from js2mail.service import open_context
    from js2mail.service.mailboxes import add_mailbox

    ctx = open_context(load_settings(home))
    try:
        with pytest.raises(ValidationError, match="display name"):
            add_mailbox(ctx, workspace="acme", provider="gmail", address="me@example.com", settings={},
                        secret=b"x", display_name="Me\r\nBcc: x@example.org")
        with pytest.raises(ValidationError, match="daily quota"):
            add_mailbox(ctx, workspace="acme", provider="gmail", address="me@example.com", settings={},
                        secret=b"x", daily_quota=-5)
        assert mailbox_rows(home) == []
        add_mailbox(ctx, workspace="acme", provider="gmail", address="me@example.com", settings={},
                    secret=b"x", display_name="S" * 200, daily_quota=500)
    finally:
        ctx.close()
    assert [(r["display_name"], r["daily_quota"]) for r in mailbox_rows(home)] == [("S" * 200, 500)]


# --- 6. numeric options, log level, home, config path, corrupt database ---------------------------

NUMERIC_OPTIONS = [
    (["messages", "tail", "--for", "0.2", "--interval"], {"0", "-1", "nan", "inf", "1e400"}),
    (["messages", "tail", "--interval", "0.1", "--for"], {"-1", "nan", "inf", "1e400"}),  # --for 0: stops at once
    (["messages", "list", "--limit"], {"0", "-1"}),
    (["serve", "--port"], {"0", "-1"}),
    (["mailboxes", "add", "smtp", "-w", "acme", "--address", "a@example.com", "--host", "h", "--no-auth", "--port"],
     {"0", "-1"}),
    (["mailboxes", "add", "smtp", "-w", "acme", "--address", "a@example.com", "--host", "h", "--no-auth",
      "--daily-quota"], {"0", "-1"}),
    (["dns", "check", "example.com", "--nameserver"], set(BAD_NUMBERS)),  # an address, not a number at all
    (["mailboxes", "add", "gmail", "-w", "acme", "--address", "a@example.com", "--client-secrets", "x",
      "--no-browser", "--port"], {"-1"}),
]


@pytest.mark.parametrize("args,refused", NUMERIC_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_numeric_options_are_finite_and_in_range(home: Path, args: list[str], refused: set[str]) -> None:
    """Each numeric option tried with 0, -1, nan, inf and 1e400 (serve is only ever refused here)."""
    for value in BAD_NUMBERS:
        result = run_cli(*args, value)
        if value in refused:
            assert_clear_error(result, args[-1])
        else:  # allowed (then any later error is a clear one), or an int option click refuses (usage, exit 2)
            assert "Traceback" not in result.err and "please report it" not in result.err, (value, result.err)


@pytest.mark.parametrize("nameserver", ["127.0.0.1:-1", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:nan",
                                        "127.0.0.1:inf", "nope", "[::1]:99999"])
def test_dns_check_nameserver_is_checked_before_any_lookup(home: Path, nameserver: str) -> None:
    assert_clear_error(run_cli("dns", "check", "example.com", "--nameserver", nameserver), "--nameserver")


def test_serve_log_level_bogus_is_one_line(home: Path) -> None:
    assert_clear_error(run_cli("serve", "--log-level", "bogus"), "--log-level", "debug, info")


def test_home_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    for args in (["init"], ["keys", "list"]):
        assert_clear_error(run_cli("--home", str(afile), *args), str(afile), "not a folder")


def test_config_path_that_is_a_folder_is_one_line(home: Path, tmp_path: Path) -> None:
    os.environ["JS2MAIL_CONFIG"] = str(tmp_path)
    try:
        assert_clear_error(run_cli("keys", "list"), str(tmp_path))
    finally:
        del os.environ["JS2MAIL_CONFIG"]
    (home / "config.toml").mkdir()
    assert_clear_error(run_cli("keys", "list"), "config.toml")


def test_corrupt_database_is_named_as_such(home: Path) -> None:
    db = home / "js2mail.db"
    db.write_bytes(os.urandom(4096))
    for args in (["keys", "list"], ["init"], ["serve"]):
        assert_clear_error(run_cli(*args), f"{db} is not a js2mail database")
    checks = {c["check"]: c for c in run_cli("doctor", "--json").json()}
    assert checks["database"]["status"] == "fail" and "not a js2mail database" in checks["database"]["detail"]


# --- 8. serve logs a webhook receiver's host, never its path or query -------------------------------


def test_serve_logs_webhook_deliveries_with_the_host_only(home: Path) -> None:
    import httpx

    from tests.support.receiver import Receiver
    from tests.support.server import ServerProcess

    (home / "config.toml").write_text("[dispatch]\npoll_interval = 0.2\n"
                                      "[webhooks]\nallow_private = true\npoll_interval = 0.2\n")
    with SmtpServer(tls="none") as smtp, Receiver() as receiver:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                       "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth").code == 0
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        hook = run_cli("webhooks", "add", receiver.url + "?token=SeCrEtQueryToken", "-w", "acme", "-a", "shop",
                       "--events", "mail.sent", "--json")
        assert hook.code == 0, hook.err
        with ServerProcess(home, log_level="info") as server:
            r = httpx.post(server.url + "/v1/send", headers={"X-Api-Key": key},
                           json={"to": "bob@example.org", "subject": "hello", "text": "x"})
            assert r.status_code == 202, r.text
            (got,) = receiver.wait_for(1)
            assert "SeCrEtQueryToken" in got.path  # the receiver did get its token
            deadline = time.monotonic() + 10
            while "delivered" not in server.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        log = server.log.read_text()
    assert "SeCrEtQueryToken" not in log and "/hooks" not in log, log
    assert f"webhook mail.sent {got.headers['X-JS2Mail-Delivery-Id']} to 127.0.0.1 (attempt 1): delivered" in log
