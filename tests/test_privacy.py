"""Privacy, end to end: `js2mail serve` as a subprocess, the real aiosmtpd server (STARTTLS + AUTH)
refusing some recipients, a real webhook receiver and a contact form. After sends, a partial and a
total refusal, a transient failure, a form submission, a cancellation and a retention purge, every
byte of every file in the home (database, -wal, -shm, serve's own output) is searched for every full
address, body string, form value and secret used: only domains may remain. The README's Privacy
section is checked against the schema and against what the scenario left behind."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from js2mail.clock import FakeClock
from js2mail.config import load_settings
from js2mail.dispatch import Dispatcher, ProviderPool
from js2mail.models import iso
from js2mail.providers.base import Provider
from js2mail.service import Context, mailboxes, messages, open_context
from js2mail.service.keys import ensure_scope
from js2mail.store import mailboxes as mailbox_rows
from tests.support.cli import run_cli
from tests.support.fake_google import FakeGoogle
from tests.support.fake_microsoft import FakeMicrosoft
from tests.support.receiver import Receiver
from tests.support.server import REPO, ServerProcess, wait_status
from tests.support.smtp_server import SmtpServer

CONFIG = ("[rate_limit]\nrate = 1000\nburst = 1000\n"
          "[dispatch]\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n"
          "[webhooks]\nallow_private = true\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n"
          "[forms]\nrate_per_minute = 1000\n")
MAILBOX, PASSWORD = "shop@example.com", "pw-Hunter2-privacy-scan"
FORM_OWNER = "owner@shop.example"  # configuration: kept, like the mailbox's own address
SITE = "https://www.site.example"

JANE, CAROL, HIDDEN, REPLY = ("jane.doe@private.example", "carol.cc@cc.example", "hidden.bcc@bcc.example",
                              "reply.person@replies.example")
OK, REFUSED = "ok.person@ok.example", "refused.person@refused.example"
GONE1, GONE2 = "gone.one@refused.example", "gone.two@refused.example"
SLOW, LATER, VISITOR = "transient.person@slow.example", "later.person@later.example", "visitor.zeta@visitor.example"
ADDRESSES = [JANE, CAROL, HIDDEN, REPLY, OK, REFUSED, GONE1, GONE2, SLOW, LATER, VISITOR]
ATTACHMENT = b"Attachment-DELTA-94 contents"
BODY_STRINGS = ["Subject-ALPHA-91", "Text-BRAVO-92", "Html-CHARLIE-93", ATTACHMENT.decode(),
                base64.b64encode(ATTACHMENT).decode(), "Subject-PARTIAL-97", "Text-PARTIAL-98", "Subject-TOTAL-99",
                "Text-TOTAL-100", "Subject-SLOW-101", "Text-SLOW-102", "Subject-LATER-103", "Text-LATER-104",
                "Jane Doe"]
FORM_VALUES = {"name": "Visitor-ECHO-95", "email": VISITOR, "message": "Form-FOXTROT-96 secret plans",
               "phone": "+41-79-555-0196"}
EXPECTED_EVENTS = 13  # mail.queued x6, mail.sent x4, mail.retrying, mail.failed, form.submitted


@dataclass
class Scenario:
    home: Path
    ids: dict[str, str]
    views: dict[str, dict[str, Any]]
    listed: list[dict[str, Any]]
    shown: str
    events: list[dict[str, Any]]
    received: list[Any]
    needles: dict[str, bytes]
    leaks_while_running: list[str]
    left: dict[str, Any] = field(default_factory=dict)  # what the database held once serve stopped
    purged: dict[int, dict[str, int]] = field(default_factory=dict)  # purge counts at +N days
    remaining: dict[str, int] = field(default_factory=dict)  # rows after the purge
    leaks_after_purge: list[str] = field(default_factory=list)


def _send(client: httpx.Client, **payload: Any) -> str:
    r = client.post("/v1/send", json=payload)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _db(home: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(home / "js2mail.db")
    conn.row_factory = sqlite3.Row
    return conn


def _wait_deliveries_final(home: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _db(home) as db:
            total, pending = db.execute("SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'pending')"
                                        " FROM webhook_deliveries").fetchone()
        if total >= count and pending == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"webhook deliveries not final within {timeout}s: {total} rows, {pending} pending")


def leaks(home: Path, needles: dict[str, bytes]) -> list[str]:
    """Every needle found in any file of the home (the master key file itself aside)."""
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file() and p.name != "master.key"):
        data = path.read_bytes().lower()
        found += [f"{label} in {path.name}" for label, needle in needles.items() if needle.lower() in data]
    return found


def _purge(home: Path, days_later: float) -> dict[str, int]:
    """The runtime's retention purge, run at an injected time `days_later` from now."""
    from js2mail.runtime import Runtime

    ctx = open_context(load_settings(home), clock=FakeClock(time.time() + days_later * 86400))
    try:
        counts: dict[str, int] = asyncio.run(Runtime(ctx).purge())
        return counts
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    home = tmp_path_factory.mktemp("privacy") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("JS2MAIL_CONFIG", "JS2MAIL_MASTER_KEY", "CREDENTIALS_DIRECTORY"):
            mp.delenv(var, raising=False)
        mp.setenv("JS2MAIL_HOME", str(home))
        yield _run_scenario(home)


def _run_scenario(home: Path) -> Scenario:
    assert run_cli("init").code == 0
    (home / "config.toml").write_text(CONFIG)
    with SmtpServer(tls="starttls", auth=(MAILBOX, PASSWORD)) as smtp, Receiver() as receiver:
        for address in (REFUSED, GONE1, GONE2):
            smtp.refuse[address] = f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        added = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", MAILBOX,
                        "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "starttls",
                        "--tls-ca", str(smtp.ca_path), "--password-stdin", stdin=PASSWORD + "\n")
        assert added.code == 0, added.err
        hook = run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "shop", "--json").json()
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        form = run_cli("forms", "create", "-w", "acme", "-a", "shop", "--to", FORM_OWNER, "--origin", SITE,
                       "--json").json()
        ids: dict[str, str] = {}
        with ServerProcess(home, env={"SSL_CERT_FILE": str(smtp.ca_path)}, log_level="debug") as server, \
                httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=10) as client:
            ids["plain"] = _send(client, to=[f"Jane Doe <{JANE}>"], cc=CAROL, bcc=[HIDDEN], replyTo=REPLY,
                                 subject="Subject-ALPHA-91", text="Text-BRAVO-92", html="<p>Html-CHARLIE-93</p>",
                                 attachments=[{"filename": "a.txt", "content": base64.b64encode(ATTACHMENT).decode()}],
                                 idempotencyKey="privacy-1")
            ids["partial"] = _send(client, to=[OK, REFUSED], subject="Subject-PARTIAL-97", text="Text-PARTIAL-98")
            ids["total"] = _send(client, to=[GONE1, GONE2], subject="Subject-TOTAL-99", text="Text-TOTAL-100")
            for name in ("plain", "partial", "total"):
                wait_status(client, ids[name], {"sent", "failed"})
            smtp.fail_next(1, f"451 4.2.0 <{SLOW}>: mailbox busy, try again later")
            ids["transient"] = _send(client, to=SLOW, subject="Subject-SLOW-101", text="Text-SLOW-102")
            wait_status(client, ids["transient"], {"sent", "failed"}, timeout=30)
            ids["cancelled"] = _send(client, to=LATER, subject="Subject-LATER-103", text="Text-LATER-104",
                                     scheduledAt=iso(time.time() + 3600))
            assert client.delete(f"/v1/messages/{ids['cancelled']}").json()["status"] == "cancelled"
            submitted = httpx.post(f"{server.url}/f/{form['id']}", data=FORM_VALUES,
                                   headers={"Origin": SITE, "Accept": "application/json"})
            assert submitted.status_code == 200, submitted.text
            receiver.wait_for(EXPECTED_EVENTS, timeout=30)
            _wait_deliveries_final(home, EXPECTED_EVENTS)
            events = [json.loads(r.body) for r in receiver.requests]
            ids["form"] = next(e["data"]["messageId"] for e in events if e["type"] == "form.submitted")
            wait_status(client, ids["form"], {"sent", "failed"})
            views = {name: client.get(f"/v1/messages/{msg_id}").json() for name, msg_id in ids.items()}
            listed = client.get("/v1/messages", params={"limit": 100}).json()["data"]
            shown = run_cli("messages", "show", ids["partial"]).out
            master = (home / "master.key").read_text().strip()
            needles = {**{a: a.encode() for a in ADDRESSES}, **{a.split("@")[0]: a.split("@")[0].encode() for a in ADDRESSES},
                       **{s: s.encode() for s in BODY_STRINGS}, **{f"form {k}": v.encode() for k, v in FORM_VALUES.items()},
                       "smtp password": PASSWORD.encode(), "api key": key.encode(),
                       "api key secret": key.split("_")[3].encode(), "webhook secret": hook["secret"].encode(),
                       "master key": master.encode(), "master key bytes": base64.b64decode(master)}
            assert (home / "js2mail.db-wal").exists()
            running = leaks(home, needles)
        received = list(smtp.messages)
    result = Scenario(home, ids, views, listed, shown, events, received, needles, running)
    with _db(home) as db:
        result.left = {
            "bodies": db.execute("SELECT COUNT(*) FROM message_bodies").fetchone()[0],
            "deliveries": [dict(r) for r in db.execute("SELECT status, payload, body FROM webhook_deliveries")],
            "texts": [t for r in db.execute("SELECT last_error, provider_response FROM messages") for t in r if t],
            "idempotency": db.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0],
        }
    result.purged = {days: _purge(home, days) for days in (29, 31)}
    with _db(home) as db:
        result.remaining = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                            for t in ("messages", "message_bodies", "idempotency_keys", "webhook_deliveries")}
    result.leaks_after_purge = leaks(home, needles)
    return result


def test_a_partial_refusal_is_visible_as_a_count_and_domains(scenario: Scenario) -> None:
    partial = scenario.views["partial"]
    assert partial["status"] == "sent" and partial["lastError"] is None
    assert partial["refusedRecipients"] == 1 and partial["refusedDomains"] == ["refused.example"]
    assert partial["recipientDomains"] == ["ok.example", "refused.example"]
    (arrived,) = [m for m in scenario.received if "Subject-PARTIAL-97" in str(m.message["Subject"])]
    assert arrived.rcpt_tos == [OK]  # the refused recipient got nothing; the other one did
    listed = next(m for m in scenario.listed if m["id"] == scenario.ids["partial"])
    assert listed["refusedRecipients"] == 1 and listed["refusedDomains"] == ["refused.example"]
    assert "refusedRecipients" in scenario.shown and "refused.example" in scenario.shown
    assert "were refused" in scenario.shown and REFUSED not in scenario.shown
    plain = scenario.views["plain"]
    assert plain["refusedRecipients"] == 0 and plain["refusedDomains"] == []


def test_a_total_refusal_fails_with_domains_and_no_address(scenario: Scenario) -> None:
    total = scenario.views["total"]
    assert total["status"] == "failed"
    assert total["refusedRecipients"] == 2 and total["refusedDomains"] == ["refused.example"]
    assert "<redacted>@refused.example" in total["lastError"] and "550" in total["lastError"]
    assert "gone." not in total["lastError"]


def test_webhook_payloads_carry_refusals_and_redacted_errors(scenario: Scenario) -> None:
    by = {(e["type"], e["data"].get("messageId")): e["data"] for e in scenario.events}
    assert len(scenario.events) == EXPECTED_EVENTS
    sent = by[("mail.sent", scenario.ids["partial"])]
    assert sent["refusedRecipients"] == 1 and sent["refusedDomains"] == ["refused.example"]
    failed = by[("mail.failed", scenario.ids["total"])]
    assert failed["refusedRecipients"] == 2 and failed["refusedDomains"] == ["refused.example"]
    assert "<redacted>@refused.example" in failed["error"] and "gone." not in failed["error"]
    retrying = by[("mail.retrying", scenario.ids["transient"])]
    assert "<redacted>@slow.example" in retrying["error"] and "transient.person" not in retrying["error"]
    assert by[("mail.sent", scenario.ids["transient"])]["attempt"] == 2
    form = by[("form.submitted", scenario.ids["form"])]
    assert form["fields"]["message"] == FORM_VALUES["message"]  # the receiver got the contents...
    assert scenario.views["form"]["status"] == "sent" and scenario.views["cancelled"]["status"] == "cancelled"


def test_no_address_body_form_value_or_secret_in_any_file_of_the_home(scenario: Scenario) -> None:
    # ...but the home keeps none of it: not the database, its -wal and -shm, nor serve's output
    names = {p.name for p in scenario.home.iterdir()}
    assert {"js2mail.db", "js2mail.db-wal", "js2mail.db-shm"} <= names and any(n.startswith("serve-") for n in names)
    assert scenario.leaks_while_running == []
    assert scenario.purged[31]["messages"] == 6  # ...and after the retention purge
    assert scenario.leaks_after_purge == []
    log = next(p for p in scenario.home.iterdir() if p.name.startswith("serve-")).read_text()
    assert "js2mail listening on" in log  # serve's own output (at debug level) was among the files scanned


def _readme_privacy_rows() -> list[tuple[list[str], set[str], str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Privacy\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            tables = re.findall(r"`(\w+)`", cells[0].split("—")[0])
            rows.append((tables, set(re.findall(r"`(\w+)`", cells[1])), cells[2]))
    return rows


def test_readme_privacy_table_names_every_table_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JS2MAIL_HOME", str(tmp_path / "home"))
    assert run_cli("init").code == 0
    db = _db(tmp_path / "home")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                       " AND name NOT LIKE 'sqlite_%'")}
    documented: dict[str, set[str]] = {}
    for names, fields, _ in _readme_privacy_rows():
        for name in names:
            documented[name] = fields
    assert tables - set(documented) == {"data_keys", "catalog_version", "_sqlite_migrations"}
    for table, fields in documented.items():
        columns = {c[1] for c in db.execute(f"PRAGMA table_info({table})")}
        assert columns, f"README lists {table}, which does not exist"
        assert columns <= fields, f"README's Privacy table omits {table}.{sorted(columns - fields)}"


def test_what_the_readme_says_is_kept_is_what_is_kept(scenario: Scenario) -> None:
    how_long = {names[0]: until for names, _, until in _readme_privacy_rows()}
    assert "until the message is sent, failed or cancelled" in how_long["message_bodies"]
    assert "until the delivery is delivered (wiped in that same statement)" in how_long["webhook_deliveries"]
    assert "given up" in how_long["webhook_deliveries"] and "redeliver_window_hours" in how_long["webhook_deliveries"]
    assert how_long["messages"].startswith("`retention_days`") and how_long["idempotency_keys"] == "`retention_days`"
    left = scenario.left
    assert left["bodies"] == 0  # every message is final: no body is left
    assert len(left["deliveries"]) == EXPECTED_EVENTS
    for row in left["deliveries"]:
        assert row["status"] == "delivered" and row["payload"] is None and row["body"] == b""
    assert any("<redacted>@refused.example" in t for t in left["texts"])
    for text in left["texts"]:
        assert not re.search(r"[^\s<>@]+@", text.replace("<redacted>@", "")), text
    assert left["idempotency"] == 1
    assert scenario.purged[29] == {"messages": 0, "idempotency_keys": 0, "webhook_deliveries": 0}
    assert scenario.purged[31] == {"messages": 6, "idempotency_keys": 1, "webhook_deliveries": EXPECTED_EVENTS}
    assert scenario.remaining == {"messages": 0, "message_bodies": 0, "idempotency_keys": 0, "webhook_deliveries": 0}


class _Through(ProviderPool):
    """The dispatcher's pool, handing out one real provider (Gmail or Graph against its fake)."""

    def __init__(self, ctx: Context, provider: Provider) -> None:
        super().__init__(ctx)
        self.provider = provider

    async def get(self, mailbox_id: str) -> tuple[Provider, sqlite3.Row] | None:
        row = self.ctx.store.read(mailbox_rows.by_id, mailbox_id)
        return None if row is None else (self.provider, row)


def _fail_through(ctx: Context, provider: Provider) -> tuple[dict[str, Any], dict[str, Any]]:
    """Queue a mail to JANE, attempt it through `provider`; → (status view, mail.failed event data)."""
    scope = ensure_scope(ctx, "acme", "shop")
    queued = asyncio.run(messages.send(ctx, scope, {"to": JANE, "subject": "s", "text": "t"}))
    dispatcher = Dispatcher(ctx, _Through(ctx, provider))

    async def attempt() -> None:
        try:
            await dispatcher.run_once()
        finally:
            await provider.close()

    asyncio.run(attempt())
    view = messages.get_message(ctx, None, queued.body["id"])
    row = ctx.store.read(lambda c: c.execute("SELECT id, payload FROM webhook_deliveries WHERE event_type = 'mail.failed'"
                                             " ORDER BY rowid DESC LIMIT 1").fetchone())
    event = json.loads(ctx.sealer.open(bytes(row["payload"]), table="webhook_deliveries", column="payload",
                                       row_id=row["id"]))
    return view, event["data"]


@pytest.fixture
def ctx(home: Path) -> Iterator[Context]:
    context = open_context(load_settings(home), clock=FakeClock(1_800_000_000.0))
    mailboxes.add_smtp(context, workspace="acme", address=MAILBOX, host="127.0.0.1", port=1, username=None,
                       password=None, security="none", app="shop")
    context.store.write_sync(lambda c: c.execute(
        "INSERT INTO webhook_endpoints (id, workspace_id, application_id, url, events, secret, created_at)"
        " SELECT 'whk_t', workspace_id, id, 'http://x.invalid', '\"*\"', x'00', 0 FROM applications"))
    yield context
    context.close()


def test_gmail_errors_echoing_an_address_are_stored_and_sent_as_domains(ctx: Context, google: FakeGoogle) -> None:
    from tests.test_gmail import make_provider

    google.fail_next_send(400, reason="invalidArgument", message=f"Invalid To header: {JANE}")
    view, data = _fail_through(ctx, make_provider(google))
    assert view["status"] == "failed" and "Invalid To header: <redacted>@private.example" in view["lastError"]
    assert "<redacted>@private.example" in data["error"] and JANE not in data["error"]
    assert JANE.encode() not in b"".join(p.read_bytes() for p in ctx.settings.home.glob("js2mail.db*"))


def test_graph_errors_echoing_an_address_are_stored_and_sent_as_domains(ctx: Context, ms: FakeMicrosoft) -> None:
    from tests.test_graph import Saved, make_provider

    ms.fail_next_send(400, code="ErrorInvalidRecipients", message=f"The recipient {JANE} is not valid.")
    view, data = _fail_through(ctx, make_provider(ms, Saved()))
    assert view["status"] == "failed" and "<redacted>@private.example is not valid" in view["lastError"]
    assert "<redacted>@private.example" in data["error"] and JANE not in data["error"]


def test_dispatch_log_lines_and_tracebacks_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    log = logging.getLogger("js2mail.dispatch")
    with caplog.at_level(logging.INFO, logger="js2mail.dispatch"):
        try:
            raise ValueError(f"server said 550 <{JANE}> unknown")
        except ValueError:
            log.exception("unexpected error sending %s to %s", "msg_1", CAROL)
    (record,) = caplog.records
    text = caplog.text
    assert "msg_1 to <redacted>@cc.example" in text and "550 <<redacted>@private.example> unknown" in text
    assert JANE not in text and CAROL not in text and "Traceback" in text


@pytest.mark.parametrize(("text", "redacted"), [
    ("550 5.1.1 <jane.doe@private.example>: Recipient address rejected",
     "550 5.1.1 <<redacted>@private.example>: Recipient address rejected"),
    ("a@x.example; B.C+tag=1@Sub.Example.ORG, \"Jane Doe\"@q.example",
     "<redacted>@x.example; <redacted>@Sub.Example.ORG, <redacted>@q.example"),
    ("/users/jane%40graph.example/sendMail", "/users/<redacted>@graph.example/sendMail"),
    ("SRS0=HHH=TT=orig.example=jane@fwd.example", "<redacted>@fwd.example"),
    ("ünï@exämple.de and x@[10.0.0.1]", "<redacted>@exämple.de and <redacted>@[10.0.0.1]"),
    ("no address @ all, <redacted>@kept.example", "no address @ all, <redacted>@kept.example"),
])
def test_redact_keeps_only_domains(text: str, redacted: str) -> None:
    from js2mail.redact import redact

    assert redact(text) == redacted and redact(redacted) == redacted


def test_upgrading_wipes_final_delivery_bodies_redacts_old_logs_and_still_delivers_pending_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlite_utils import Database

    from js2mail import crypto
    from js2mail.store import Store, datakeys, tenancy
    from js2mail.store import webhooks as hook_rows
    from js2mail.store.schema import core
    from js2mail.webhook_worker import WebhookWorker
    from js2mail.webhooks import verify

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("JS2MAIL_HOME", str(home))
    (home / "config.toml").write_text("[webhooks]\nallow_private = true\n")
    master = crypto.create_master_key(home)
    conn = Store(home / "js2mail.db").connect()  # a database as the build before m007_privacy left it
    core.apply(Database(conn), stop_before="m007_privacy")
    data_key = crypto.generate_key()
    datakeys.insert(conn, 1, crypto.wrap_data_key(master.key, 1, data_key), 0)
    ws, _ = tenancy.ensure_workspace(conn, "acme", 0)
    app, _ = tenancy.ensure_application(conn, ws, "shop", 0)
    with Receiver() as receiver:
        secret = "whsec_legacy0000000000000000000000000"
        sealed = crypto.Sealer({1: data_key}).seal(secret.encode(), table="webhook_endpoints", column="secret",
                                                   row_id="whk_1")
        hook_rows.insert_endpoint(conn, endpoint_id="whk_1", workspace_id=ws, app_id=app, url=receiver.url, events="*",
                                  secret=sealed, now=0)
        conn.execute("INSERT INTO messages (id, workspace_id, application_id, status, created_at, updated_at, last_error,"
                     " provider_response) VALUES ('msg_1', ?, ?, 'sent', 0, 0, ?, ?)",
                     (ws, app, f"550 <{GONE1}> unknown", f"250 ok (refused: {REFUSED}: 550 unknown)"))
        legacy = json.dumps({"id": "evt_1", "type": "form.submitted", "data": {"fields": FORM_VALUES}}).encode()
        for delivery_id, status in (("d_pending", "pending"), ("d_done", "delivered")):
            conn.execute("INSERT INTO webhook_deliveries (id, endpoint_id, application_id, event_id, event_type, body,"
                         " status, created_at, next_attempt_at) VALUES (?, 'whk_1', ?, 'evt_1', 'form.submitted', ?, ?,"
                         " 0, 0)", (delivery_id, app, legacy, status))
        conn.close()

        ctx = open_context(load_settings(home))  # applies m007_privacy
        try:
            def read(sql: str) -> list[sqlite3.Row]:
                return ctx.store.read(lambda c: c.execute(sql).fetchall())

            assert [tuple(r) for r in read("SELECT id, body, payload FROM webhook_deliveries ORDER BY id")] == [
                ("d_done", b"", None), ("d_pending", legacy, None)]
            (logged,) = read("SELECT last_error, provider_response FROM messages")
            assert tuple(logged) == ("550 <<redacted>@refused.example> unknown",
                                     "250 ok (refused: <redacted>@refused.example: 550 unknown)")
            async def deliver(worker: WebhookWorker) -> None:
                await worker.run_once()
                await worker.drain(5)

            asyncio.run(deliver(WebhookWorker(ctx)))
            (got,) = receiver.wait_for(1)
            assert got.body == legacy and verify(got.body, got.headers["X-JS2Mail-Signature"], secret)
            assert [tuple(r) for r in read("SELECT status, body, payload FROM webhook_deliveries WHERE id = 'd_pending'")
                    ] == [("delivered", b"", None)]
        finally:
            ctx.close()
    stored = b"".join(p.read_bytes() for p in home.glob("js2mail.db*"))
    assert FORM_VALUES["message"].encode() not in stored and GONE1.encode() not in stored


def test_a_delivery_keeps_its_sealed_body_until_final_and_not_after(home: Path) -> None:
    """Re-deliveries before the end send the same bytes; removed: no body left; given up or disabled by
    a 410: only the sealed payload, for the redelivery window, then no body left."""
    from js2mail.service import webhooks as hooks
    from js2mail.webhook_worker import WebhookWorker

    (home / "config.toml").write_text("[webhooks]\nallow_private = true\nretry_schedule = [60]\n")
    clock = FakeClock(1_800_000_000.0)
    ctx = open_context(load_settings(home), clock=clock)
    try:
        mailboxes.add_smtp(ctx, workspace="acme", address=MAILBOX, host="127.0.0.1", port=1, username=None,
                           password=None, security="none", app="shop")
        with Receiver() as failing, Receiver() as gone, Receiver() as removed:
            failing.respond(500, times=4)
            gone.respond(410, times=2)
            ids = {name: asyncio.run(hooks.add_endpoint(ctx, url=r.url, workspace="acme", app="shop",
                                                        events="mail.queued"))["id"]
                   for name, r in (("failing", failing), ("gone", gone), ("removed", removed))}
            scope = ensure_scope(ctx, "acme", "shop")
            for n in range(2):
                asyncio.run(messages.send(ctx, scope, {"to": JANE, "subject": "s", "text": "t", "metadata": {"n": str(n)}}))

            def deliveries(endpoint: str) -> list[sqlite3.Row]:
                return ctx.store.read(lambda c: c.execute(
                    "SELECT status, payload, body FROM webhook_deliveries WHERE endpoint_id = ?", (endpoint,)).fetchall())

            hooks.remove_endpoint(ctx, ids["removed"])
            assert deliveries(ids["removed"]) == []  # removing an endpoint deletes its deliveries
            pending = deliveries(ids["failing"])
            assert [r["status"] for r in pending] == ["pending", "pending"] and all(r["payload"] for r in pending)

            async def round_of_deliveries() -> None:
                worker = WebhookWorker(ctx)
                await worker.run_once()
                await worker.drain(5)

            asyncio.run(round_of_deliveries())
            assert hooks.find(ctx, ids["gone"])["status"] == "disabled"  # 410: disabled, its deliveries given up
            kept = deliveries(ids["gone"])  # sealed, for `webhooks redeliver` within the window
            assert [(r["status"], r["body"]) for r in kept] == [("failed", b"")] * 2 and all(r["payload"] for r in kept)
            assert not any(b"metadata" in bytes(r["payload"]) for r in kept)  # sealed, not plain JSON
            first = [r.body for r in failing.wait_for(2)]
            assert all(r["status"] == "pending" and r["payload"] for r in deliveries(ids["failing"]))
            clock.advance(60)
            asyncio.run(round_of_deliveries())  # the last retry: 500 again, given up
            again = [r.body for r in failing.wait_for(4)][2:]
            assert sorted(again) == sorted(first)  # the same event bodies, opened from the sealed payload
            assert all(r["status"] == "failed" and r["payload"] for r in deliveries(ids["failing"]))
            clock.advance(72 * 3600 + 1)  # past [webhooks] redeliver_window_hours
            asyncio.run(round_of_deliveries())
            for endpoint in ("gone", "failing"):
                assert [(r["status"], r["payload"], r["body"]) for r in deliveries(ids[endpoint])] == [("failed", None, b"")] * 2
    finally:
        ctx.close()
