"""The README's dashboard screenshots (docs/img/), taken from a real `serve` with a real SMTP server
in Debian's Chromium, through the browser tests' own support code. Run by hand, loopback only:

    python bench/dashboard_screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from js2mail.clock import FakeClock  # noqa: E402
from js2mail.config import load_settings  # noqa: E402
from js2mail.service import messages as message_svc  # noqa: E402
from js2mail.service import open_context  # noqa: E402
from js2mail.service.keys import ensure_scope  # noqa: E402
from tests.support.browser import chromium  # noqa: E402
from tests.support.cli import run_cli  # noqa: E402
from tests.support.server import ServerProcess, free_port, wait_status  # noqa: E402
from tests.support.smtp_server import SmtpServer  # noqa: E402
from tests.test_dashboard_security import link, prepare  # noqa: E402

VIEWPORT = {"width": 1100, "height": 700}  # desktop width; a viewport shot keeps each PNG small
MESSAGES_VIEWPORT = {"width": 1100, "height": 540}  # the log's rows are dense text: fewer keep it < 150 KB
DOMAINS = ["gmail.com", "outlook.com", "acme-customer.example", "fastmail.com", "proton.me"]


def backfill(home: Path) -> int:
    """A week of history for the chart: mail accepted at earlier hours (on a FakeClock), which
    `serve` then sends; the number per hour rises and falls like a working day."""
    ctx = open_context(load_settings(home), clock=(clock := FakeClock(time.time() - 7 * 86400 + 3600)))
    try:
        scope = ensure_scope(ctx, "acme", "site")

        async def run() -> int:
            count = 0
            for hour in range(0, 7 * 24 - 2, 3):
                clock.advance(time.time() - (7 * 24 - hour) * 3600 - clock.now())
                for n in range(1 + (hour % 24) // 4):
                    await message_svc.send(ctx, scope, {"to": f"r{n}@{DOMAINS[n % len(DOMAINS)]}",
                                                        "subject": "Weekly digest", "text": "Hello"})
                    count += 1
            return count

        return asyncio.run(run())
    finally:
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["JS2MAIL_HOME"] = str(Path(tmp) / "home")
        assert run_cli("init").code == 0
        port = free_port()
        with SmtpServer(tls="none") as smtp:
            keys = prepare(Path(os.environ["JS2MAIL_HOME"]), smtp.port, port)
            earlier = backfill(Path(os.environ["JS2MAIL_HOME"]))
            with ServerProcess(Path(os.environ["JS2MAIL_HOME"]), port=port) as server:
                sent = []
                for i in range(12):
                    ws = "acme" if i % 3 else "other"
                    api = httpx.Client(base_url=server.url, headers={"X-Api-Key": keys[ws]["key"]}, timeout=10)
                    reply = api.post("/v1/send", json={"to": f"reader{i}@{DOMAINS[i % len(DOMAINS)]}",
                                                       "subject": f"Order #{1000 + i}", "text": "Thanks!"})
                    sent.append((api, reply.json()["id"]))
                for api, message_id in sent:
                    wait_status(api, message_id, {"sent"})
                smtp.wait_for(earlier + len(sent), timeout=120)
                with chromium() as browser:
                    page = browser.new_page()
                    page.set_viewport_size(VIEWPORT)
                    page.goto(link())
                    page.click("text=Open the dashboard")
                    page.wait_for_url(server.url + "/dashboard")
                    page.screenshot(path=str(out / "dashboard-overview.png"))
                    page.set_viewport_size(MESSAGES_VIEWPORT)
                    page.goto(server.url + "/dashboard/messages")
                    page.screenshot(path=str(out / "dashboard-messages.png"))
    for name in ("dashboard-overview.png", "dashboard-messages.png"):
        print(out / name, (out / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
