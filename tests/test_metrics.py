"""`GET /metrics`: counters that move when mail goes out, gauges read from the database at scrape
time, and who may scrape (off by default; loopback only, or a bearer token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from js2mail import metrics
from js2mail.clock import FakeClock
from js2mail.config import MetricsConfig, load_settings
from js2mail.dispatch import Dispatcher
from js2mail.service import Context, mailboxes, messages, open_context
from js2mail.service.keys import ensure_scope
from tests.support.cli import run_cli
from tests.support.dispatching import run_dispatch
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess
from tests.support.smtp_server import SmtpServer

CONFIG = ("[dispatch]\nretry_schedule = [1, 1, 1, 1, 1, 1]\npoll_interval = 0.2\n"
          "[webhooks]\nallow_private = true\npoll_interval = 0.2\n"
          "[rate_limit]\nrate = 0.01\nburst = 4\n")


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with these labels (0 when absent, as Prometheus would read a new series)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="none") as server:
        yield server


def connect(smtp: SmtpServer, *extra: str) -> str:
    result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                     "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth", *extra)
    assert result.code == 0, result.err
    return run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()


def test_metrics_disabled_is_404(home: Path, smtp: SmtpServer) -> None:
    (home / "config.toml").write_text("[metrics]\nenabled = false\n")
    assert load_settings(home).metrics == MetricsConfig()  # the default
    connect(smtp)
    with ServerProcess(home) as server:
        r = httpx.get(server.url + "/metrics")
        assert r.status_code == 404
        assert "js2mail_sends_total" not in r.text


def test_scrape_send_scrape_moves_the_counters(home: Path, smtp: SmtpServer) -> None:
    (home / "config.toml").write_text(CONFIG + "[metrics]\nenabled = true\n")
    key = connect(smtp, "--daily-quota", "100")
    mailbox = run_cli("mailboxes", "list", "--json").json()[0]["id"]
    with Receiver() as receiver, ServerProcess(home) as server:
        assert run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "shop", "--events", "mail.sent").code == 0
        before = httpx.get(server.url + "/metrics")
        assert before.status_code == 200, before.text
        assert before.headers["content-type"].startswith("text/plain")
        client = httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=10)
        r = client.post("/v1/send", json={"to": "bob@example.org", "subject": "s", "text": "t"})
        assert r.status_code == 202, r.text
        smtp.wait_for(1)
        receiver.wait_for(1)  # the mail.sent webhook
        statuses = [client.post("/v1/send", json={}).status_code for _ in range(6)]  # burst 4: 422s, then 429s
        assert statuses.count(429) >= 3, statuses
        deadline = time.monotonic() + 10
        while True:  # outcomes are counted once recorded, a moment after the bytes arrived
            after = httpx.get(server.url + "/metrics").text
            if value(after, "js2mail_webhook_deliveries_total", outcome="delivered") >= 1 and \
                    value(after, "js2mail_sends_total", status="sent", provider="smtp") >= 1 or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.1)
        client.close()
    b = before.text
    assert value(after, "js2mail_sends_total", status="sent", provider="smtp") == \
        value(b, "js2mail_sends_total", status="sent", provider="smtp") + 1
    assert value(after, "js2mail_send_attempt_duration_seconds_count", provider="smtp", status="sent") == 1
    assert value(after, "js2mail_webhook_deliveries_total", outcome="delivered") == 1
    assert value(after, "js2mail_ingest_request_duration_seconds_count", route="send") == \
        value(b, "js2mail_ingest_request_duration_seconds_count", route="send") + 7
    assert value(after, "js2mail_rate_limited_requests_total", route="send") == statuses.count(429)
    assert value(b, "js2mail_daily_quota_remaining", mailbox=mailbox) == 100
    assert value(after, "js2mail_daily_quota_remaining", mailbox=mailbox) == 99
    assert value(after, "js2mail_queue_depth", mailbox=mailbox, status="queued") == 0
    assert value(after, "process_resident_memory_bytes") > 0


def test_a_token_is_required_when_set(home: Path, smtp: SmtpServer) -> None:
    (home / "config.toml").write_text(CONFIG + '[metrics]\nenabled = true\ntoken = "s3cret-scrape"\n')
    connect(smtp)
    with ServerProcess(home) as server:
        missing = httpx.get(server.url + "/metrics")
        wrong = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer nope"})
        right = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        posted = httpx.post(server.url + "/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "metrics_unauthorized"
    assert wrong.status_code == 401
    assert right.status_code == 200 and "js2mail_sends_total" in right.text
    assert posted.status_code == 405


def test_without_a_token_only_loopback_clients_may_scrape() -> None:
    cfg = MetricsConfig(enabled=True)
    scope = {"type": "http", "headers": [], "client": ("203.0.113.9", 5555)}
    assert metrics.allowed(scope, cfg) == (403, metrics.allowed(scope, cfg)[1])  # type: ignore[index]
    assert metrics.allowed({**scope, "client": ("127.0.0.1", 5555)}, cfg) is None
    assert metrics.allowed({**scope, "client": ("::1", 5555)}, cfg) is None
    assert metrics.allowed({**scope, "client": None}, cfg) is not None


def test_queue_gauges_are_read_at_scrape_time(home: Path, smtp: SmtpServer) -> None:
    clock = FakeClock(1_800_000_000.0)
    ctx: Context = open_context(load_settings(home), clock=clock)
    try:
        mailboxes.add_smtp(ctx, workspace="acme", address="shop@example.com", host="127.0.0.1", port=smtp.port,
                           username=None, password=None, security="none", app="shop", daily_quota=2)
        scope = ensure_scope(ctx, "acme", "shop")
        for _ in range(3):
            asyncio.run(messages.send(ctx, scope, {"to": "bob@example.org", "subject": "s", "text": "t"}))
        clock.advance(120)
        gauges = metrics.DatabaseGauges()
        gauges.ctx = ctx

        def read() -> dict[tuple[str, str], float]:
            return {(s.name, s.labels.get("status", "")): s.value for family in gauges.collect()
                    for s in family.samples}

        first = read()
        assert first[("js2mail_queue_depth", "queued")] == 3
        assert first[("js2mail_queue_oldest_due_age_seconds", "")] == 120
        assert first[("js2mail_daily_quota_remaining", "")] == 2
        def sends(status: str) -> float:
            return metrics.REGISTRY.get_sample_value("js2mail_sends_total", {"status": status, "provider": "smtp"}) or 0

        sent_before, deferred_before = sends("sent"), sends("deferred")

        run_dispatch(Dispatcher(ctx))
        second = read()
        assert second[("js2mail_queue_depth", "queued")] == 1  # the third waits for tomorrow's quota
        assert second[("js2mail_queue_oldest_due_age_seconds", "")] == 0  # ... so nothing is due
        assert second[("js2mail_daily_quota_remaining", "")] == 0
        assert sends("sent") == sent_before + 2
        assert sends("deferred") == deferred_before + 1
    finally:
        ctx.close()
