"""The three form flavors in a real headless Chromium: a page on one loopback origin posts to
`js2mail serve` on another; the mail must arrive and the page must show the right result."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from js2mail import snippets
from tests.support.browser import CHROMIUM, PageServer, chromium
from tests.support.cli import run_cli
from tests.support.server import ServerProcess, free_port
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture
def site(home: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    (home / "config.toml").write_text(f"[server]\nport = {port}\n[dispatch]\npoll_interval = 0.2\n")
    with SmtpServer(tls="none") as smtp, PageServer() as pages, chromium() as browser:
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "site", "--address", "forms@example.com",
                       "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth").code == 0
        allowed = run_cli("forms", "create", "-w", "acme", "-a", "site", "--to", "owner@example.com",
                          "--origin", pages.origin, "--json").json()["id"]
        elsewhere = run_cli("forms", "create", "-w", "acme", "-a", "site", "--to", "owner@example.com",
                            "--origin", "https://another-site.example", "--json").json()["id"]
        with ServerProcess(home, port=port) as server:
            yield {"server": server, "smtp": smtp, "pages": pages, "browser": browser, "form": allowed,
                   "foreign_form": elsewhere}


def page_with(site: dict[str, Any], path: str, form_id: str, flavor: str, ajax: bool) -> Any:
    html = snippets.form_snippet(public_id=form_id, public_url=site["server"].url, flavor=flavor, ajax=ajax)
    site["pages"].pages[path] = f"<!doctype html><html><head><meta charset=utf-8></head><body>{html}</body></html>"
    page = site["browser"].new_page()
    page.goto(site["pages"].origin + path)
    page.fill("input[name=name]", f"Visitor {flavor}")
    page.fill("input[name=email]", "visitor@example.org")
    page.fill("textarea[name=message]", f"Hello from the {flavor} form")
    return page


@pytest.mark.parametrize("flavor", snippets.FLAVORS)
def test_plain_submit_lands_on_thank_you_page(site: dict[str, Any], flavor: str) -> None:
    page = page_with(site, f"/{flavor}.html", site["form"], flavor, ajax=False)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site['server'].url}/f/{site['form']}/thanks")
    assert "Thank you" in page.inner_text("h1")
    (got,) = site["smtp"].wait_for(1)
    assert f"Hello from the {flavor} form" in got.message.get_body(("plain",)).get_content()
    assert got.message["Reply-To"] == "visitor@example.org"


@pytest.mark.parametrize("flavor", snippets.FLAVORS)
def test_ajax_submit_shows_success_inline_across_origins(site: dict[str, Any], flavor: str) -> None:
    page = page_with(site, f"/{flavor}-ajax.html", site["form"], flavor, ajax=True)
    page.click("button[type=submit]")
    status = page.wait_for_selector("[data-js2mail-status][data-result]")
    assert status.get_attribute("data-result") == "ok", status.inner_text()
    assert "Thanks" in status.inner_text()
    assert page.url == site["pages"].origin + f"/{flavor}-ajax.html"  # no navigation
    assert page.input_value("textarea[name=message]") == ""  # the form was reset
    (got,) = site["smtp"].wait_for(1)
    assert f"Hello from the {flavor} form" in got.message.get_body(("plain",)).get_content()


def test_ajax_from_a_site_not_allowed_shows_an_error_and_sends_nothing(site: dict[str, Any]) -> None:
    page = page_with(site, "/foreign.html", site["foreign_form"], "plain", ajax=True)
    page.click("button[type=submit]")
    status = page.wait_for_selector("[data-js2mail-status][data-result]")
    assert status.get_attribute("data-result") == "error"
    assert page.input_value("textarea[name=message]") == "Hello from the plain form"  # nothing lost
    page.wait_for_timeout(500)
    assert site["smtp"].messages == []
