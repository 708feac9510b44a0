"""What the dashboard's pages do, over plain HTTP against a real `serve` and SMTP server: the
chart's buckets, filters, cancelling a queued message, a test mail, the reconnect hint, and the
form previews (framed by the dashboard only)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from js2mail import webhooks
from js2mail.clock import FakeClock
from js2mail.config import load_settings
from js2mail.http.dashboard.security import PREVIEW_CSP
from js2mail.service import dashboard, open_context
from js2mail.service import keys as key_svc
from js2mail.service import messages as message_svc
from js2mail.store import mailboxes as mailbox_rows
from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, free_port, wait_status
from tests.support.smtp_server import SmtpServer
from tests.test_dashboard_security import csrf_of, prepare, running_site, signed_in


@pytest.fixture
def site(home: Path) -> Iterator[dict[str, Any]]:
    yield from running_site(home)


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_chart_counts_each_hour_of_the_last_seven_days(home: Path) -> None:
    prepare(home, 2525, 8025)  # mailboxes only: nothing is sent, so every message stays pending
    start = 1_700_000_000.0 - 1_700_000_000.0 % 3600  # on the hour
    clock = FakeClock(start)
    ctx = open_context(load_settings(home), clock=clock)
    try:
        acme = key_svc.ensure_scope(ctx, "acme", "site")
        other = key_svc.ensure_scope(ctx, "other", "site")

        async def send(scope: Any) -> None:
            await message_svc.send(ctx, scope, {"to": "a@b.example", "subject": "s", "text": "t"})

        asyncio.run(send(acme))  # in the hour before the chart's first: left out
        clock.advance(5400)
        asyncio.run(send(acme))  # start + 1.5 h: the chart's first hour
        asyncio.run(send(other))
        clock.advance(168 * 3600 + 3000 - 5400)  # now: start + 168 h 50 min, in the chart's last hour
        asyncio.run(send(acme))
        asyncio.run(send(acme))
        everything = dashboard.Session("s", None, None, "", 0)
        chart = dashboard.chart(ctx, everything)
        pending = chart["series"]["pending"]
        assert chart["hours"] == 168 and len(pending) == 168
        assert pending[0] == 2 and pending[-1] == 2 and sum(pending) == 4
        assert sum(chart["series"]["sent"]) == 0
        acme_id = dashboard.check_workspace(ctx, everything, "acme")
        only_acme = dashboard.chart(ctx, dashboard.Session("s", acme_id, "acme", "", 0))["series"]["pending"]
        assert only_acme[0] == 1 and only_acme[-1] == 2
    finally:
        ctx.close()


def test_overview_and_filters_show_the_log_by_domain_status_and_application(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url)
    overview = client.get("/dashboard").text
    assert "sent: 2" in overview
    assert re.search(r'id="sent-total">2<', overview)
    sent_today = re.findall(r'data-label="Sent today">(\d+)', overview)
    assert sent_today == ["1", "1"]
    acme, other = site["messages"]["acme"], site["messages"]["other"]
    detail = client.get(f"/dashboard/messages/{acme}").text
    answer = re.search(r"data-provider-response>([^<]*)<", detail)
    assert answer and answer.group(1) == "2.0.0 Message accepted for delivery"  # the SMTP server's reply
    page = client.get("/dashboard/messages", params={"domain": "acme-customer.example"}).text
    assert acme in page and other not in page
    assert acme not in client.get("/dashboard/messages", params={"status": "queued"}).text
    assert acme in client.get("/dashboard/messages", params={"status": "sent", "since": "1h"}).text
    bad = client.get("/dashboard/messages", params={"status": "lost"})
    assert bad.status_code == 422 and "status must be one of" in bad.text
    assert client.get("/dashboard/messages", params={"since": "forever"}).status_code == 422
    limited = signed_in(site["server"].url, "acme")
    other_app = re.search(r'<option value="(app_[a-z0-9]+)">other/site', client.get("/dashboard/messages").text)
    assert other_app
    assert limited.get("/dashboard/messages", params={"app": other_app.group(1)}).status_code == 404
    assert other in client.get("/dashboard/messages", params={"app": other_app.group(1)}).text


def test_cancel_a_queued_message(site: dict[str, Any]) -> None:
    key = site["keys"]["acme"]["key"]
    api = httpx.Client(base_url=site["server"].url, headers={"X-Api-Key": key}, timeout=10)
    queued = api.post("/v1/send", json={"to": "a@later.example", "subject": "s", "text": "t",
                                        "scheduledAt": tomorrow()}).json()["id"]
    client = signed_in(site["server"].url)
    page = client.get(f"/dashboard/messages/{queued}").text
    assert "Cancel message" in page and "later.example" in page
    token = {"X-CSRF-Token": csrf_of(client), "HX-Request": "true"}
    done = client.post(f"/dashboard/messages/{queued}/cancel", headers=token)
    assert done.status_code == 200 and "cancelled" in done.text and "Cancel message" not in done.text
    assert api.get(f"/v1/messages/{queued}").json()["status"] == "cancelled"
    again = client.post(f"/dashboard/messages/{queued}/cancel", headers=token)
    assert again.status_code == 409 and 'role="alert"' in again.text and "already cancelled" in again.text
    sent = client.post(f"/dashboard/messages/{site['messages']['acme']}/cancel", headers=token)
    assert sent.status_code == 409


def test_a_test_mail_goes_out_and_the_page_shows_only_the_domain(site: dict[str, Any]) -> None:
    client = signed_in(site["server"].url)
    smtp_before = len(site["smtp"].messages)
    reply = client.post("/dashboard/mailboxes/test", headers={"X-CSRF-Token": csrf_of(client)},
                        data={"mailbox": "acme mail@acme.example", "to": "tester@dest.example"})
    assert reply.status_code == 200, reply.text
    assert "@dest.example" in reply.text and "tester@" not in reply.text
    got = site["smtp"].wait_for(smtp_before + 1)[-1]
    assert got.message["Subject"] == "js2mail test message" and got.rcpt_tos == ["tester@dest.example"]
    bad = client.post("/dashboard/mailboxes/test", headers={"X-CSRF-Token": csrf_of(client)},
                      data={"mailbox": "acme mail@acme.example", "to": "not an address"})
    assert bad.status_code == 422 and "is not a single email address" in bad.text


def test_a_mailbox_to_reconnect_is_highlighted_with_the_command(site: dict[str, Any]) -> None:
    ctx = open_context(load_settings(site["home"]))
    try:
        (row,) = [r for r in ctx.store.read(mailbox_rows.listing, "acme")]
        ctx.store.write_sync(mailbox_rows.set_status, row["id"], "needs_reconnect", "token revoked")
    finally:
        ctx.close()
    client = signed_in(site["server"].url)
    for path in ("/dashboard", "/dashboard/mailboxes"):
        page = client.get(path).text
        assert re.search(r'<tr class="attention">\s*<td data-label="Mailbox">mail@acme.example', page), path
        assert "js2mail mailboxes add smtp --workspace acme --address mail@acme.example" in page


def test_form_previews_are_framed_by_the_dashboard_only(site: dict[str, Any]) -> None:
    form = run_cli("forms", "create", "-w", "acme", "-a", "site", "--to", "owner@acme.example", "--json").json()["id"]
    client = signed_in(site["server"].url)
    page = client.get(f"/dashboard/forms/{form}").text
    assert page.count('<iframe class="preview" sandbox=""') == 3
    preview = client.get(f"/dashboard/forms/{form}/preview/tailwind")
    assert preview.status_code == 200 and f'action="{site["server"].url}/f/{form}"' in preview.text
    assert preview.headers["content-security-policy"] == PREVIEW_CSP
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    assert client.get(f"/dashboard/forms/{form}/preview/comic-sans").status_code == 404
    assert httpx.get(site["server"].url + f"/dashboard/forms/{form}/preview/plain").status_code == 401
    other = signed_in(site["server"].url, "other")
    assert other.get(f"/dashboard/forms/{form}").status_code == 404
    assert other.get(f"/dashboard/forms/{form}/preview/plain").status_code == 404
    made = client.post("/dashboard/forms", headers={"X-CSRF-Token": csrf_of(client)},
                       data={"workspace": "acme", "application": "site", "to": "owner@acme.example",
                             "origin": "https://www.acme.example"})
    assert made.status_code == 200 and "created for acme/site" in made.text
    listed = run_cli("forms", "list", "--json").json()
    assert any(f["origins"] == ["https://www.acme.example"] for f in listed) and len(listed) == 2


def test_a_webhook_endpoint_shows_its_deliveries_sends_a_test_and_rotates_its_secret(home: Path) -> None:
    with Receiver() as receiver, SmtpServer(tls="none") as smtp:
        port = free_port()
        keys = prepare(home, smtp.port, port, "[webhooks]\nallow_private = true\npoll_interval = 0.2\n")
        added = run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "site", "--json").json()
        with ServerProcess(home, port=port) as server:
            api = httpx.Client(base_url=server.url, headers={"X-Api-Key": keys["acme"]["key"]}, timeout=10)
            sent = api.post("/v1/send", json={"to": "a@b.example", "subject": "s", "text": "t"}).json()["id"]
            wait_status(api, sent, {"sent"})
            receiver.wait_for(1)
            client = signed_in(server.url)
            token = {"X-CSRF-Token": csrf_of(client)}
            deadline = time.monotonic() + 15
            page = client.get(f"/dashboard/webhooks/{added['id']}").text
            while "delivered</span>" not in page and time.monotonic() < deadline:
                time.sleep(0.2)
                page = client.get(f"/dashboard/webhooks/{added['id']}").text
            assert "delivered</span>" in page and "mail.sent" in page
            assert client.get("/dashboard/webhooks").text.count(f'href="/dashboard/webhooks/{added["id"]}"') == 1

            before = len(receiver.requests)
            tested = client.post(f"/dashboard/webhooks/{added['id']}/test", headers=token)
            assert tested.status_code == 200 and "delivered (HTTP 200)" in tested.text
            (hit,) = receiver.wait_for(before + 1)[before:]
            assert json.loads(hit.body)["type"] == "webhook.test"
            assert webhooks.verify(hit.body, hit.headers[webhooks.SIGNATURE_HEADER], added["secret"])

            rotated = client.post(f"/dashboard/webhooks/{added['id']}/rotate-secret", data={"grace": "0"}, headers=token)
            assert rotated.status_code == 200
            secret = re.search(r"data-secret>([^<]+)<", rotated.text)
            assert secret and secret.group(1) != added["secret"]
            client.post(f"/dashboard/webhooks/{added['id']}/test", headers=token)
            last = receiver.wait_for(before + 2)[-1]
            assert webhooks.verify(last.body, last.headers[webhooks.SIGNATURE_HEADER], secret.group(1))
            with pytest.raises(webhooks.WebhookVerificationError):  # the old secret no longer signs
                webhooks.verify(last.body, last.headers[webhooks.SIGNATURE_HEADER], added["secret"])

            other = signed_in(server.url, "other")
            assert other.get(f"/dashboard/webhooks/{added['id']}").status_code == 404
            assert other.post(f"/dashboard/webhooks/{added['id']}/test",
                              headers={"X-CSRF-Token": csrf_of(other)}).status_code == 404
            assert httpx.post(server.url + f"/dashboard/webhooks/{added['id']}/rotate-secret").status_code == 401


def failed_delivery(endpoint_id: str) -> dict[str, Any]:
    """The endpoint's failed delivery, as `webhooks deliveries` lists it, once the worker gave up."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = run_cli("webhooks", "deliveries", "--endpoint", endpoint_id, "--status", "failed", "--json").json()
        if found:
            return dict(found[0])
        time.sleep(0.2)
    raise AssertionError("no delivery failed in time")


def test_a_failed_delivery_is_redelivered_and_a_disabled_endpoint_enabled_from_the_page(home: Path) -> None:
    config = "[webhooks]\nallow_private = true\npoll_interval = 0.2\nretry_schedule = [1]\n"
    with Receiver() as receiver, SmtpServer(tls="none") as smtp:
        port = free_port()
        keys = prepare(home, smtp.port, port, config)
        added = run_cli("webhooks", "add", receiver.url, "-w", "acme", "-a", "site", "--events", "mail.sent",
                        "--json").json()
        page_url = f"/dashboard/webhooks/{added['id']}"
        receiver.respond(500, times=2)  # the first attempt and its one retry: given up
        with ServerProcess(home, port=port) as server:
            api = httpx.Client(base_url=server.url, headers={"X-Api-Key": keys["acme"]["key"]}, timeout=10)
            sent = api.post("/v1/send", json={"to": "a@b.example", "subject": "s", "text": "t",
                                              "metadata": {"orderId": "secret-789"}}).json()["id"]
            failed = failed_delivery(added["id"])
            client = signed_in(server.url)
            page = client.get(page_url).text
            row = re.search(rf'<tr data-delivery="{failed["id"]}">.*?</tr>', page, re.S)
            assert row, page
            cells = dict(re.findall(r'data-label="([^"]+)">(.*?)</td>', row.group(0), re.S))
            assert "failed" in cells["Status"] and cells["Attempts"] == "2" and cells["Last HTTP"].startswith("500")
            assert re.fullmatch(r"\d+ ms", cells["Latency"]) and "Redeliver" in cells["Redeliver"]
            assert "secret-789" not in page and sent not in page  # never the payload
            redeliver = f"{page_url}/deliveries/{failed['id']}/redeliver"

            # no CSRF token: refused; another workspace's session: not found; nothing sent either way
            assert client.post(redeliver).status_code == 403
            other = signed_in(server.url, "other")
            other_token = {"X-CSRF-Token": csrf_of(other)}
            assert other.get(page_url).status_code == 404
            assert other.post(redeliver, headers=other_token).status_code == 404
            assert other.post(f"{page_url}/enable", headers=other_token).status_code == 404
            assert client.post(f"{page_url}/deliveries/nope/redeliver",
                               headers={"X-CSRF-Token": csrf_of(client)}).status_code == 404
            time.sleep(0.5)
            assert len(receiver.requests) == 2

            token = {"X-CSRF-Token": csrf_of(client), "HX-Request": "true"}
            done = client.post(redeliver, headers=token)
            assert done.status_code == 200 and f"Redelivering {failed['id']}" in done.text
            third = receiver.wait_for(3)[2]
            assert third.headers["X-JS2Mail-Delivery-Id"] == failed["id"] and third.body == receiver.requests[0].body
            deadline = time.monotonic() + 15
            while "delivered</span>" not in client.get(page_url).text and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "delivered</span>" in client.get(page_url).text
            again = client.post(redeliver, headers=token)
            assert again.status_code == 409 and "can no longer be redelivered" in again.text

            # disable from the page; a delivery that failed meanwhile is redelivered on enabling
            receiver.respond(500, times=2)
            api.post("/v1/send", json={"to": "a@b.example", "subject": "s", "text": "t"})
            missed = failed_delivery(added["id"])
            assert other.post(f"{page_url}/disable", headers=other_token).status_code == 404
            assert client.post(f"{page_url}/disable").status_code == 403
            assert run_cli("webhooks", "list", "--json").json()[0]["status"] == "active"
            off = client.post(f"{page_url}/disable", headers=token)
            assert off.status_code == 200 and f"Disabled {added['id']}" in off.text
            assert run_cli("webhooks", "list", "--json").json()[0]["status"] == "disabled"
            page = client.get(page_url).text
            assert "data-enable" in page and "disabled (disabled from the dashboard)" in page and "data-disable" not in page
            refused = client.post(f"{page_url}/deliveries/{missed['id']}/redeliver", headers=token)
            assert refused.status_code == 409 and "enable it first" in refused.text
            bad = client.post(f"{page_url}/enable", data={"redeliver_since": "forever"}, headers=token)
            assert bad.status_code == 422 and "redeliver_since must be one of" in bad.text
            enabled = client.post(f"{page_url}/enable", data={"redeliver_since": "24h"}, headers=token)
            assert enabled.status_code == 200 and "Redelivering 1 failed" in enabled.text
            assert "data-enable" not in enabled.text
            redelivered = receiver.wait_for(6)[5]
            assert redelivered.headers["X-JS2Mail-Delivery-Id"] == missed["id"]
            assert run_cli("webhooks", "list", "--json").json()[0]["status"] == "active"
