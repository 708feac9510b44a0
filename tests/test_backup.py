"""`js2mail backup` while a real `serve` takes mail, and `js2mail restore`: every message accepted
(202) before the backup began is there after the restore; a restore checks what it is given."""

from __future__ import annotations

import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import ServerProcess
from tests.support.setup import plain_mailbox_key
from tests.support.smtp_server import SmtpServer

CONFIG = "[rate_limit]\nrate = 100000\nburst = 100000\n[dispatch]\npoll_interval = 0.2\n"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="none") as server:
        yield server


@pytest.fixture
def key(home: Path, smtp: SmtpServer) -> str:
    return plain_mailbox_key(home, smtp, CONFIG)


class Sender(threading.Thread):
    """Sends mail as fast as the server takes it, noting when each 202 came back."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, headers={"X-Api-Key": key}, timeout=10)
        self.accepted: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            r = self.client.post("/v1/send", json={"to": f"user{n}@example.org", "subject": f"n{n}", "text": "x"})
            assert r.status_code == 202, r.text
            self.accepted.append((time.monotonic(), r.json()["id"]))

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.02)
        assert len(self.accepted) >= count, f"only {len(self.accepted)} accepted"


def test_a_backup_under_load_restores_every_accepted_message(home: Path, key: str, tmp_path: Path) -> None:
    target = tmp_path / "js2mail-backup.db"
    with ServerProcess(home) as server:
        sender = Sender(server.url, key)
        sender.start()
        try:
            sender.wait_for(40)
            began = time.monotonic()
            result = run_cli("backup", str(target), "--json")
            ended = time.monotonic()
            assert result.code == 0, result.err
            sender.wait_for(len(sender.accepted) + 20)  # more mail after the backup ended
            refused = run_cli("restore", str(target), "--yes")
            assert refused.code == 1 and "serve` is running" in refused.err  # not under a running serve
        finally:
            sender.stop.set()
            sender.join(15)
            sender.client.close()
    before = [mid for at, mid in sender.accepted if at < began]
    after = [mid for at, mid in sender.accepted if at > ended]
    assert len(before) >= 40 and len(after) >= 20
    report = result.json()
    assert report["backup"] == str(target) and "master key" in report["note"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not Path(str(target) + "-wal").exists()  # one self-contained file
    assert "master.key" not in target.read_bytes().decode("latin-1")

    restored = run_cli("restore", str(target), "--yes", "--json")
    assert restored.code == 0, restored.err
    previous = Path(restored.json()["previous"])
    assert previous.exists() and stat.S_IMODE(previous.stat().st_mode) == 0o600

    with ServerProcess(home) as server, \
            httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=10) as client:
        missing = [mid for mid in before if client.get(f"/v1/messages/{mid}").status_code != 200]
        assert missing == []
        assert all(client.get(f"/v1/messages/{mid}").status_code == 404 for mid in after)  # the clock went back


def test_restore_refuses_what_is_not_a_js2mail_backup(home: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    for path in (text, other, tmp_path / "absent.db"):
        result = run_cli("restore", str(path), "--yes", "--json")
        assert result.code == 1
        assert result.json()["error"]["code"] in ("backup_invalid", "backup_missing"), result.out


def test_restore_refuses_a_backup_the_master_key_cannot_open(home: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = tmp_path / "foreign-home"
    monkeypatch.setenv("JS2MAIL_HOME", str(foreign))
    assert run_cli("init").code == 0
    assert run_cli("backup", str(tmp_path / "foreign.db")).code == 0
    monkeypatch.setenv("JS2MAIL_HOME", str(home))
    result = run_cli("restore", str(tmp_path / "foreign.db"), "--yes", "--json")
    assert result.code == 1 and result.json()["error"]["code"] == "master_key_mismatch"
    again = run_cli("backup", str(tmp_path / "foreign.db"))
    assert again.code == 1 and "exists" in again.err
