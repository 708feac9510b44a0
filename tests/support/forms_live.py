"""One `js2mail serve` with a contact form wired to a real SMTP server, shared by a test module,
and the queue seen from the database (a failed request must add no row)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import ServerProcess
from tests.support.smtp_server import Received, SmtpServer

SITE = "https://www.site.example"
CONFIG = ("[server]\nmax_body_bytes = 400000\n[dispatch]\npoll_interval = 0.1\n[forms]\nrate_per_minute = 100000\n"
          "max_file_bytes = 100000\nmax_total_bytes = 150000\n")


@dataclass
class Live:
    home: Path
    server: ServerProcess
    smtp: SmtpServer
    api: httpx.Client
    form_id: str

    @property
    def form_url(self) -> str:
        return f"{self.server.url}/f/{self.form_id}"

    def sql(self, statement: str, *args: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.home / "js2mail.db", timeout=10) as db:
            return db.execute(statement, args).fetchall()

    def queued(self) -> int:
        """Every message ever queued, from the messages table."""
        return int(self.sql("SELECT count(*) FROM messages")[0][0])  # type: ignore[call-overload]

    def one_mail(self, before: int) -> Received:
        """The single message queued since `before`, as the SMTP server received it."""
        assert self.queued() == before + 1
        return self.smtp.wait_for(before + 1)[before]


def live_form(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Body of a module-scoped fixture: `live = pytest.fixture(scope="module")(live_form)`."""
    home = tmp_path_factory.mktemp("forms-live") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("JS2MAIL_HOME", str(home))
    try:
        assert run_cli("init").code == 0
        (home / "config.toml").write_text(CONFIG)
        with SmtpServer(tls="none") as smtp:
            added = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "site", "--address", "forms@example.com",
                            "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth")
            assert added.code == 0, added.err
            key = run_cli("keys", "create", "-w", "acme", "-a", "site").out.strip()
            created = run_cli("forms", "create", "-w", "acme", "-a", "site", "--to", "owner@example.com",
                              "--name", "Contact", "--origin", SITE, "--json")
            assert created.code == 0, created.err
            with ServerProcess(home) as server, httpx.Client(base_url=server.url, headers={"X-Api-Key": key},
                                                             timeout=10) as api:
                yield Live(home, server, smtp, api, created.json()["id"])
    finally:
        mp.undo()
