"""A client generated from the served OpenAPI document works: openapi-python-client turns
/schema/openapi.json into a package (offline, no formatter hooks), and with that package alone —
no hand-written HTTP — a mail goes out through a real SMTP mailbox, its status is read, the list
shows it, a scheduled mail is cancelled, and a form is created, read, listed and deleted."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import ServerProcess
from tests.support.smtp_server import SmtpServer

USER, PASSWORD = "shop@example.com", "correct horse battery"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="starttls", auth=(USER, PASSWORD)) as server:
        yield server


@pytest.fixture
def live(home: Path, smtp: SmtpServer) -> Iterator[tuple[ServerProcess, str]]:
    (home / "config.toml").write_text("[dispatch]\npoll_interval = 0.2\n")
    result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", USER,
                     "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "starttls",
                     "--tls-ca", str(smtp.ca_path), "--password-stdin", stdin=PASSWORD + "\n")
    assert result.code == 0, result.err
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    with ServerProcess(home, env={"SSL_CERT_FILE": str(smtp.ca_path)}) as server:
        yield server, key


def generate_client(document_url: str, into: Path) -> ModuleType:
    """Generate the package from the served document and import it."""
    spec = into / "openapi.json"
    spec.write_bytes(httpx.get(document_url, timeout=10).raise_for_status().content)
    config = into / "config.yaml"
    config.write_text("package_name_override: js2mail_client\npost_hooks: []\n")  # no ruff/black run: offline
    done = subprocess.run([str(GENERATOR), "generate", "--path", str(spec), "--meta", "none", "--config", str(config),
                           "--output-path", str(into / "js2mail_client")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr  # every operation generated
    sys.path.insert(0, str(into))
    importlib.invalidate_caches()
    return importlib.import_module("js2mail_client")


@pytest.fixture
def client_package(live: tuple[ServerProcess, str], tmp_path: Path) -> Iterator[ModuleType]:
    server, _ = live
    package = generate_client(server.url + "/schema/openapi.json", tmp_path)
    try:
        yield package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "js2mail_client" or n.startswith("js2mail_client.")]:
            del sys.modules[name]


def _api(name: str) -> Any:
    return importlib.import_module(f"js2mail_client.api.{name}")


def test_generated_client_sends_reads_lists_cancels_and_manages_forms(
        client_package: ModuleType, live: tuple[ServerProcess, str], smtp: SmtpServer) -> None:
    server, key = live
    models = importlib.import_module("js2mail_client.models")
    send_mail, get_message, list_messages, cancel_message = (
        _api(f"v1.{n}") for n in ("send_mail", "get_message", "list_messages", "cancel_message"))
    create_form, get_form, list_forms, delete_form = (
        _api(f"forms.{n}") for n in ("create_form", "get_form", "list_forms", "delete_form"))

    with client_package.AuthenticatedClient(base_url=server.url, token=key, timeout=httpx.Timeout(10)) as api:
        sent = send_mail.sync_detailed(client=api, body=models.SendRequest(
            to=["bob@example.org"], subject="From a generated client", text="MARKER-GENERATED-CLIENT"),
            idempotency_key="generated-1")
        assert sent.status_code == 202, sent.content
        assert isinstance(sent.parsed, models.SendResponse) and sent.parsed.status == "queued"
        assert sent.headers["RateLimit-Policy"]
        message_id = sent.parsed.id

        (got,) = smtp.wait_for(1)
        assert got.rcpt_tos == ["bob@example.org"]
        assert got.message["Subject"] == "From a generated client"
        assert "MARKER-GENERATED-CLIENT" in got.message.get_content()

        deadline = time.monotonic() + 15
        status = get_message.sync(message_id, client=api)
        while isinstance(status, models.Message) and status.status != "sent" and time.monotonic() < deadline:
            time.sleep(0.1)
            status = get_message.sync(message_id, client=api)
        assert isinstance(status, models.Message) and status.status == "sent", status
        assert status.recipient_domains == ["example.org"] and status.attempts == 1

        later = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
        scheduled = send_mail.sync(client=api, body=models.SendRequest(
            to="carol@example.net", subject="Later", text="not yet", scheduled_at=later))
        assert isinstance(scheduled, models.SendResponse)
        listed = list_messages.sync(client=api, limit=10)
        assert isinstance(listed, models.MessageList)
        assert [m.id for m in listed.data] == [scheduled.id, message_id]  # newest first
        cancelled = cancel_message.sync(scheduled.id, client=api)
        assert isinstance(cancelled, models.Message) and cancelled.status == "cancelled"
        again = cancel_message.sync_detailed(scheduled.id, client=api)
        assert again.status_code == 409 and again.parsed.error.code.value == "not_cancellable"

        form = create_form.sync(client=api, body=models.FormCreate(to="owner@example.org", name="Contact"))
        assert isinstance(form, models.Form) and form.status == "active" and form.endpoint.endswith(f"/f/{form.id}")
        fetched = get_form.sync(form.id, client=api)
        assert isinstance(fetched, models.Form) and fetched.to == "owner@example.org" and fetched.name == "Contact"
        forms = list_forms.sync(client=api)
        assert isinstance(forms, models.FormList) and [f.id for f in forms.data] == [form.id]
        deleted = delete_form.sync(form.id, client=api)
        assert isinstance(deleted, models.Form) and deleted.id == form.id and deleted.status == "deleted"
        gone = get_form.sync_detailed(form.id, client=api)
        assert gone.status_code == 404 and gone.parsed.error.code.value == "form_not_found"
        assert list_forms.sync(client=api).data == []

    assert len(smtp.messages) == 1  # the cancelled mail never went out


def test_generated_client_reports_refusals_as_documented_models(
        client_package: ModuleType, live: tuple[ServerProcess, str]) -> None:
    server, _ = live
    get_message = _api("v1.get_message")
    with client_package.AuthenticatedClient(base_url=server.url, token="js2_live_nope") as api:
        refused = get_message.sync_detailed("msg_x", client=api)
    assert refused.status_code == 401
    assert refused.parsed.error.code.value == "unauthorized"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
