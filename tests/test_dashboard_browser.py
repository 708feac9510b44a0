"""The dashboard in Debian's Chromium (Playwright) against a real `serve` and a real SMTP server:
sign in with a link, create a key and watch a mail sent with it turn `sent`, rotate a key, export
and delete a workspace. Screenshots of every page at desktop and phone width go to tests/artifacts/."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import CHROMIUM, PageServer, chromium
from tests.support.cli import run_cli
from tests.support.receiver import Receiver
from tests.support.server import ServerProcess, free_port, wait_status
from tests.support.smtp_server import SmtpServer
from tests.test_dashboard_security import PAGES, link, prepare

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
ARTIFACTS = Path(__file__).parent / "artifacts"
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}


@pytest.fixture
def site(home: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    with SmtpServer(tls="none") as smtp:
        keys = prepare(home, smtp.port, port, "[webhooks]\nallow_private = true\npoll_interval = 0.2\nretry_schedule = [1]\n")
        # a failing endpoint for the webhooks page (added before Playwright's loop runs in this thread)
        assert run_cli("webhooks", "add", "http://127.0.0.1:9/hook", "-w", "acme", "-a", "site").code == 0
        with chromium() as browser, ServerProcess(home, port=port) as server:
            page = browser.new_page()
            problems: list[str] = []
            # 4xx answers are expected; a form preview refusing its CDN stylesheet is by design
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" and not (
                m.text.startswith("Failed to load resource") or "/preview/" in m.location.get("url", "")) else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(link())
            page.click("text=Open the dashboard")
            page.wait_for_url(server.url + "/dashboard")
            yield {"server": server, "smtp": smtp, "page": page, "browser": browser, "keys": keys,
                   "problems": problems}
            assert problems == []  # no CSP violation, no script error on any dashboard page


def unlabelled_controls(page: Any) -> list[str]:
    return list(page.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea, button'))
        .filter(el => el.type !== 'hidden')
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !(el.tagName === 'BUTTON' && el.textContent.trim()))
        .map(el => el.outerHTML)"""))


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(site: dict[str, Any]) -> str:
    """Something on every page: sent and scheduled mail, a form."""
    url = site["server"].url
    for ws, key in site["keys"].items():
        api = httpx.Client(base_url=url, headers={"X-Api-Key": key["key"]}, timeout=10)
        sent = api.post("/v1/send", json={"to": f"a@{ws}-customer.example", "subject": "s", "text": "t"}).json()["id"]
        wait_status(api, sent, {"sent"})
    api = httpx.Client(base_url=url, headers={"X-Api-Key": site["keys"]["acme"]["key"]}, timeout=10)
    later = api.post("/v1/send", json={"to": "b@later.example", "subject": "s", "text": "t",
                                       "scheduledAt": tomorrow()})
    assert later.status_code == 202, later.text
    assert run_cli("forms", "create", "-w", "acme", "-a", "site", "--to", "owner@acme.example", "--name", "Contact",
                   "--origin", "https://www.acme.example").code == 0
    return str(later.json()["id"])


AXE = Path(__file__).parent / "support" / "axe" / "axe.min.js"


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2 A/AA violations on the current page (evaluated through DevTools, which the
    page's CSP does not govern; the page itself still runs no inline script)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate("""() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})
        .then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))""")
    return list(found)


def test_sign_in_then_every_page_renders_labelled_at_desktop_and_phone_width(site: dict[str, Any]) -> None:
    page = site["page"]
    queued = seed(site)
    (endpoint,) = run_cli("webhooks", "list", "--json").json()
    (form,) = run_cli("forms", "list", "--json").json()
    details = [f"/dashboard/messages/{queued}", f"/dashboard/webhooks/{endpoint['id']}", f"/dashboard/forms/{form['id']}"]
    assert page.inner_text("h1") == "Overview"
    assert page.context.cookies()[0]["httpOnly"] is True
    page.evaluate("document.querySelector('main').append(document.createElement('select'))")
    assert any(v.startswith("select-name") for v in axe_violations(page))  # axe runs and sees the page
    ARTIFACTS.mkdir(exist_ok=True)
    for name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        for path in [*PAGES, *details]:
            page.goto(site["server"].url + path)
            assert page.locator("h1").count() == 1
            assert unlabelled_controls(page) == [], path
            assert axe_violations(page) == [], path
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways at {width}px"
            slug = path.strip("/").split("/")[1] + "-detail" if path in details else path.strip("/").replace("/", "-")
            page.screenshot(path=str(ARTIFACTS / f"{slug}-{name}.png"), full_page=True)
        stranger = site["browser"].new_page()  # the pages seen before signing in
        stranger.set_viewport_size({"width": width, "height": height})
        for slug, url in (("sign-in", link()), ("sign-in-refused", site["server"].url + "/dashboard/sign-in?token=x"),
                          ("signed-out", site["server"].url + "/dashboard")):
            stranger.goto(url)
            assert axe_violations(stranger) == [], slug
            stranger.screenshot(path=str(ARTIFACTS / f"{slug}-{name}.png"), full_page=True)
        stranger.close()


def test_create_a_key_send_with_it_and_watch_the_message_turn_sent(site: dict[str, Any]) -> None:
    page, server = site["page"], site["server"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.goto(server.url + "/dashboard/keys")
    page.fill("input[name=workspace]", "acme")
    page.fill("input[name=application]", "site")
    page.fill("input[name=name]", "from the dashboard")
    page.click("text=Create key")
    key = page.inner_text("#new-key [data-secret]")
    assert key.startswith("js2_live_")
    page.click("#new-key [data-copy]")
    page.wait_for_selector("#new-key button:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == key

    page.goto(server.url + "/dashboard/messages")
    reply = httpx.post(server.url + "/v1/send", headers={"X-Api-Key": key}, timeout=10,
                       json={"to": "reader@customer.example", "subject": "From the dashboard key", "text": "hello"})
    assert reply.status_code == 202
    message_id = reply.json()["id"]
    row = page.locator(f"tr[data-message='{message_id}']")
    row.wait_for()  # appears without a reload (htmx polling)
    page.wait_for_selector(f"tr[data-message='{message_id}'] [data-status]:has-text('sent')", timeout=20000)
    assert "customer.example" in row.inner_text() and "reader@" not in page.content()
    (got,) = site["smtp"].wait_for(1)
    assert got.message["Subject"] == "From the dashboard key"

    page.select_option("select[name=status]", "failed")
    page.wait_for_selector("#message-rows .empty")
    page.select_option("select[name=status]", "sent")
    page.fill("input[name=domain]", "customer.example")
    page.click("text=Filter")
    page.wait_for_selector(f"tr[data-message='{message_id}']")
    page.click(f"a:has-text('{message_id}')")
    assert "sent" in page.inner_text(".timeline")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "message-detail-desktop.png"), full_page=True)


def test_rotate_a_key_without_grace(site: dict[str, Any]) -> None:
    page, server = site["page"], site["server"]
    old = site["keys"]["acme"]
    page.goto(server.url + "/dashboard/keys")
    row = page.locator(f"tr[data-key='{old['prefix']}']")
    row.locator("select[name=grace]").select_option("0")
    row.locator("text=Rotate").click()
    new = page.inner_text("#new-key [data-secret]")
    assert new.startswith("js2_live_") and new != old["key"]
    assert "no longer works" in page.inner_text("#new-key")
    assert httpx.get(server.url + "/v1/messages", headers={"X-Api-Key": old["key"]}).status_code == 401
    assert httpx.get(server.url + "/v1/messages", headers={"X-Api-Key": new}).status_code == 200
    # the list updates in place: the old key revoked, the new one active
    assert "revoked" in page.locator(f"tr[data-key='{old['prefix']}']").inner_text()
    assert "active" in page.locator(f"tr[data-key='{new[9:17]}']").inner_text()


def test_export_then_delete_a_workspace_after_typing_its_name(site: dict[str, Any]) -> None:
    page, server = site["page"], site["server"]
    page.goto(server.url + "/dashboard/data")
    section = page.locator("section[data-workspace='acme']")
    with page.expect_download() as download:
        section.locator("text=Download the export").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["workspace"] == "acme" and exported["mailboxes"][0]["address"] == "mail@acme.example"

    section.locator("input[name=confirm]").fill("acm")
    section.locator("text=Delete workspace").click()
    assert "repeat the workspace name" in section.locator("[role=alert]").inner_text()
    assert run_cli("data", "export", "-w", "acme").code == 0

    section.locator("input[name=confirm]").fill("acme")
    section.locator("text=Delete workspace").click()
    section.locator("text=Deleted workspace acme").wait_for()
    assert run_cli("data", "export", "-w", "acme").code == 1
    assert run_cli("data", "export", "-w", "other").code == 0


def test_create_a_form_preview_it_copy_its_snippet_and_see_a_submission_in_the_log(site: dict[str, Any]) -> None:
    page, server = site["page"], site["server"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    with PageServer() as pages:
        page.goto(server.url + "/dashboard/forms")
        page.fill("input[name=workspace]", "acme")
        page.fill("input[name=application]", "site")
        page.fill("input[name=to]", "owner@owner.example")
        page.fill("input[name=origin]", pages.origin)
        page.click("text=Create form")
        page.click("#new-form a")
        for flavor in ("plain", "tailwind", "bootstrap"):
            frame = page.frame_locator(f"section[data-flavor='{flavor}'] iframe")
            frame.locator("textarea[name=message]").wait_for()  # the preview shows the real form
        ARTIFACTS.mkdir(exist_ok=True)
        for flavor in ("plain", "tailwind", "bootstrap"):
            page.locator(f"section[data-flavor='{flavor}'] iframe").screenshot(
                path=str(ARTIFACTS / f"form-preview-{flavor}.png"))
        for name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(ARTIFACTS / f"form-detail-{name}.png"), full_page=True)
        assert unlabelled_controls(page) == [] and axe_violations(page) == []
        page.click("section[data-flavor='plain'] [data-copy]")
        page.wait_for_selector("section[data-flavor='plain'] button:has-text('Copied')")
        snippet = page.evaluate("navigator.clipboard.readText()")
        assert 'data-js2mail-status' in snippet and f"{server.url}/f/" in snippet
        page.click("details[data-platform='lovable'] summary")
        page.click("details[data-platform='lovable'] [data-copy]")
        assert "js2mail form endpoint" in page.evaluate("navigator.clipboard.readText()")

        pages.pages["/contact.html"] = f"<!doctype html><html><head><meta charset=utf-8></head><body>{snippet}</body></html>"
        visitor = site["browser"].new_page()
        visitor.goto(pages.origin + "/contact.html")
        visitor.fill("input[name=name]", "Visitor")
        visitor.fill("input[name=email]", "visitor@example.org")
        visitor.fill("textarea[name=message]", "Hello from another origin")
        visitor.click("button[type=submit]")
        status = visitor.wait_for_selector("[data-js2mail-status][data-result]")
        assert status.get_attribute("data-result") == "ok", status.inner_text()

    page.goto(server.url + "/dashboard/messages?domain=owner.example")
    page.wait_for_selector("#message-rows [data-status]:has-text('sent')", timeout=20000)
    assert "acme/site" in page.inner_text("#message-rows")
    got = site["smtp"].wait_for(1)[-1]
    assert "Hello from another origin" in got.message.get_body(("plain",)).get_content()


def test_a_key_can_be_created_with_the_keyboard_alone(site: dict[str, Any]) -> None:
    page = site["page"]
    page.goto(site["server"].url + "/dashboard/keys")
    focused = []
    for _ in range(20):  # bounded: the form is reached within the header's few links
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.name || document.activeElement.textContent.trim()"))
        if focused[-1] == "workspace":
            break
    assert focused[:3] == ["js2mail", "Overview", "Messages"] and focused[-1] == "workspace"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # focus is visible
    page.keyboard.type("acme")
    page.keyboard.press("Tab")
    page.keyboard.type("keyboard")
    page.keyboard.press("Enter")
    assert page.inner_text("#new-key [data-secret]").startswith("js2_live_")
    assert any(k["application"] == "keyboard" for k in run_cli("keys", "list", "--json").json())



def test_a_failed_delivery_is_redelivered_from_the_webhook_page_and_arrives(site: dict[str, Any]) -> None:
    page, server = site["page"], site["server"]
    down = free_port()  # nothing listens here yet: every attempt is refused
    with ThreadPoolExecutor(1) as other_thread:  # `webhooks add` runs its own event loop, Playwright's is here
        added = other_thread.submit(run_cli, "webhooks", "add", f"http://127.0.0.1:{down}/hooks", "-w", "acme",
                                    "-a", "site", "--events", "mail.sent", "--json").result()
    assert added.code == 0, added.err
    endpoint = added.json()["id"]
    api = httpx.Client(base_url=server.url, headers={"X-Api-Key": site["keys"]["acme"]["key"]}, timeout=10)
    sent = api.post("/v1/send", json={"to": "a@acme-customer.example", "subject": "s", "text": "t"}).json()["id"]
    wait_status(api, sent, {"sent"})
    deadline = time.monotonic() + 20
    failed: list[dict[str, Any]] = []
    while not failed and time.monotonic() < deadline:  # the first attempt and its one retry, both refused
        time.sleep(0.2)
        failed = run_cli("webhooks", "deliveries", "--endpoint", endpoint, "--status", "failed", "--json").json()
    (delivery,) = failed

    with Receiver(down) as receiver:  # the receiver is back
        page.goto(f"{server.url}/dashboard/webhooks/{endpoint}")
        row = page.locator(f"tr[data-delivery='{delivery['id']}']")
        assert "failed" in row.locator("[data-status]").inner_text()
        row.locator("button:has-text('Redeliver')").click()
        page.wait_for_selector(f"[data-notice]:has-text('Redelivering {delivery['id']}')")
        (arrived,) = receiver.wait_for(1)
        assert arrived.headers["X-JS2Mail-Delivery-Id"] == delivery["id"]
        assert json.loads(arrived.body)["type"] == "mail.sent"
        for _ in range(75):  # bounded: the page shows it delivered once the worker has recorded it
            page.goto(f"{server.url}/dashboard/webhooks/{endpoint}")
            if "delivered" in page.locator(f"tr[data-delivery='{delivery['id']}'] [data-status]").inner_text():
                break
            time.sleep(0.2)
        assert "delivered" in page.locator(f"tr[data-delivery='{delivery['id']}'] [data-status]").inner_text()
        assert unlabelled_controls(page) == [] and axe_violations(page) == []
