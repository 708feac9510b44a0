"""A busy database: another process's write lock, and the operator's long commands
(`data delete`, `crypto rotate`) while the API serves."""

from __future__ import annotations

import concurrent.futures
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.abuse.conftest import Serve, healthz
from tests.support.server import REPO, ServerProcess, cli_env, wait_status
from tests.support.smtp_server import SmtpServer

MESSAGE = {"to": "bob@example.org", "subject": "hello", "text": "hi"}


class Pinger(threading.Thread):
    """GET /healthz back to back on fresh connections; the longest wait for an answer is the gap."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop, self.gaps, self.failures = port, threading.Event(), [0.0], 0
        self.at = [0.0]

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            ok = healthz(self.port, timeout=10) == 200
            self.gaps.append(time.monotonic() - started)
            self.at.append(started)
            self.failures += not ok
            time.sleep(0.01)

    def __enter__(self) -> Pinger:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(15)


def _sends_while(client: httpx.Client, busy: threading.Event, workers: int = 4) -> list[tuple[int, float, httpx.Response]]:
    """Sends from `workers` threads until `busy` clears: (status, seconds, response) of each."""
    results: list[tuple[int, float, httpx.Response]] = []

    def loop() -> None:
        while busy.is_set():
            started = time.monotonic()
            r = client.post("/v1/send", json=MESSAGE)
            results.append((r.status_code, time.monotonic() - started, r))

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(loop) for _ in range(workers)]:
            f.result(60)
    return results


def test_deep_json_is_a_400_not_a_500(serve: Serve) -> None:
    _, client = serve()
    for body in (b"[" * 5000 + b"]" * 5000, b'{"to":' * 3000 + b'"a@b.c"' + b"}" * 3000):
        r = client.post("/v1/send", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "bad_json"
    nested = {"to": "bob@example.org", "subject": "s", "text": "t", "metadata": {}}
    node = nested["metadata"]
    for _ in range(900):  # under msgspec's own limit: decoded, then refused by validation
        node["a"] = {}  # type: ignore[index]
        node = node["a"]  # type: ignore[index]
    r = client.post("/v1/send", json=nested)
    assert 400 <= r.status_code < 500, r.text


def test_an_external_write_lock_gives_503_with_retry_after_and_never_freezes_the_server(
        serve: Serve, smtp: SmtpServer, home: Path) -> None:
    server, client = serve("[database]\nbusy_timeout_ms = 500\n", smtp=smtp)
    warm = client.post("/v1/send", json=MESSAGE)
    assert warm.status_code == 202
    wait_status(client, warm.json()["id"], {"sent"})

    lock = sqlite3.connect(home / "js2mail.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock for 3 s
    busy = threading.Event()
    busy.set()
    threading.Timer(3.0, busy.clear).start()
    with Pinger(server.port) as pinger:
        results = _sends_while(client, busy)
        ready = client.get("/readyz")
    lock.execute("ROLLBACK")
    lock.close()
    print(f"write lock held 3 s: {len(results)} sends, statuses {sorted({s for s, _, _ in results})}, longest send "
          f"{max(t for _, t, _ in results) * 1000:.0f} ms; longest /healthz {max(pinger.gaps) * 1000:.0f} ms")

    assert results and all(status == 503 for status, _, _ in results), sorted({s for s, _, _ in results})
    for _, _, r in results:
        assert r.json()["error"]["code"] == "database_busy" and int(r.headers["Retry-After"]) >= 1
    assert ready.status_code == 503
    assert pinger.failures == 0 and max(pinger.gaps) < 0.2, max(pinger.gaps)

    after = client.post("/v1/send", json=MESSAGE)  # the lock released: everything works again
    assert after.status_code == 202, after.text
    assert wait_status(client, after.json()["id"], {"sent", "failed"})["status"] == "sent"
    assert client.get("/readyz").status_code == 200


def _seed_messages(db: Path, workspace: str, count: int, body: Callable[[str], bytes] = lambda _: os.urandom(64)) -> None:
    """`count` messages with bodies (`body(message_id)`) in `workspace`'s application, written straight to the file."""
    conn = sqlite3.connect(db, isolation_level=None)
    ws_id, app_id = conn.execute("SELECT w.id, a.id FROM workspaces w JOIN applications a ON a.workspace_id = w.id"
                                 " WHERE w.slug = ?", (workspace,)).fetchone()
    conn.execute("BEGIN")
    now = time.time()
    conn.executemany(
        "INSERT INTO messages (id, workspace_id, application_id, status, created_at, updated_at, size)"
        " VALUES (?, ?, ?, 'sent', ?, ?, 100)",
        ((f"msg_seed{i:08d}", ws_id, app_id, now, now) for i in range(count)))
    conn.executemany("INSERT INTO message_bodies (message_id, payload) VALUES (?, ?)",
                     ((f"msg_seed{i:08d}", body(f"msg_seed{i:08d}")) for i in range(count)))
    conn.execute("COMMIT")
    conn.close()


def _sealed_bodies(home: Path) -> Callable[[str], bytes]:
    from js2mail.config import load_settings
    from js2mail.service import open_context

    ctx = open_context(load_settings(home))
    sealer = ctx.sealer
    ctx.close()
    return lambda message_id: sealer.seal(b"body of " + message_id.encode(), table="message_bodies",
                                          column="payload", row_id=message_id)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "js2mail", *args], env=cli_env(home), cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)


def _while_sending(server: ServerProcess, client: httpx.Client, home: Path,
                   *command: str) -> tuple[subprocess.CompletedProcess[str], Pinger, list[tuple[int, float, httpx.Response]]]:
    """Run an operator command while sends go on and /healthz is pinged: its result, the pinger,
    and each send's (status, seconds, response)."""
    busy = threading.Event()
    busy.set()
    with Pinger(server.port) as pinger, concurrent.futures.ThreadPoolExecutor(1) as pool:
        sends = pool.submit(_sends_while, client, busy, 2)
        time.sleep(0.5)
        started = time.monotonic()
        done = _cli(home, *command)
        took = time.monotonic() - started
        busy.clear()
        results = sends.result(60)
    print(sorted(((round(g, 3), round(a - started, 2)) for g, a in zip(pinger.gaps, pinger.at)), reverse=True)[:8])
    print(f"{' '.join(command[:2])} took {took:.2f}s; longest /healthz {max(pinger.gaps) * 1000:.0f} ms; "
          f"longest send {max(t for _, t, _ in results) * 1000:.0f} ms over {len(results)} sends")
    return done, pinger, results


def test_data_delete_of_a_big_workspace_does_not_stall_the_api(serve: Serve, smtp: SmtpServer, home: Path) -> None:
    server, client = serve(smtp=smtp)
    assert _cli(home, "keys", "create", "-w", "bulk", "-a", "app").returncode == 0
    _seed_messages(home / "js2mail.db", "bulk", 120_000)
    deleted, pinger, results = _while_sending(server, client, home, "data", "delete", "-w", "bulk", "--yes", "bulk",
                                              "--json")
    assert deleted.returncode == 0, deleted.stderr
    db = sqlite3.connect(home / "js2mail.db")
    assert db.execute("SELECT COUNT(*) FROM messages WHERE id LIKE 'msg_seed%'").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM workspaces WHERE slug = 'bulk'").fetchone()[0] == 0
    assert results and all(status == 202 for status, _, _ in results), sorted({s for s, _, _ in results})
    # one transaction for the whole delete froze the loop and held every send for its duration (seconds);
    # chunks of 1,000 rows take tens of milliseconds (the bounds leave room for a loaded 2-core machine)
    assert pinger.failures == 0 and max(pinger.gaps) < 0.5, max(pinger.gaps)
    assert max(t for _, t, _ in results) < 1.0


def test_crypto_rotate_of_many_values_does_not_stall_the_api(serve: Serve, smtp: SmtpServer, home: Path) -> None:
    server, client = serve(smtp=smtp)
    assert _cli(home, "keys", "create", "-w", "bulk", "-a", "app").returncode == 0
    _seed_messages(home / "js2mail.db", "bulk", 60_000, _sealed_bodies(home))
    rotated, pinger, results = _while_sending(server, client, home, "crypto", "rotate", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["activeKeyId"]
    assert json.loads(rotated.stdout)["resealed"] >= 60_000
    db = sqlite3.connect(home / "js2mail.db")
    headers = {bytes(v)[1:5] for (v,) in db.execute("SELECT payload FROM message_bodies WHERE message_id LIKE 'msg_seed%'")}
    assert headers == {new_key.to_bytes(4, "big")}
    assert results and all(status == 202 for status, _, _ in results), sorted({s for s, _, _ in results})
    assert pinger.failures == 0 and max(pinger.gaps) < 0.5, max(pinger.gaps)
    assert max(t for _, t, _ in results) < 1.0
