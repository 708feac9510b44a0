"""Ingest and dispatch with a big database: 1,000,000 rows in the send log and 100,000 messages
waiting in the queue, against the same figures on an empty database, in the same run.

    python bench/backlog.py [--log-rows 1000000] [--waiting 100000] [--messages 5000] [--duration 15]

Also reports `serve`'s idle RSS before and after the dispatch run (memory must stay flat).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import dispatch
import ingest
from common import PY, env_for, free_port, pin, rss_mb, stop, wait_http


def fill(home: Path, log_rows: int, waiting: int) -> None:
    """Old sent messages (inside retention) and far-future queued ones, inserted directly."""
    db = sqlite3.connect(home / "js2mail.db")
    ws, app = db.execute("SELECT workspace_id, id FROM applications WHERE slug = 'load'").fetchone()
    mailbox = db.execute("SELECT id FROM mailboxes").fetchone()[0]
    now = time.time()
    domains, meta = json.dumps(["example.org"]), "{}"
    with db:
        for start in range(0, log_rows, 50_000):
            db.executemany(
                "INSERT INTO messages (id, workspace_id, application_id, mailbox_id, status, attempts, created_at,"
                " updated_at, sent_at, recipient_domains, metadata) VALUES (?, ?, ?, ?, 'sent', 1, ?, ?, ?, ?, ?)",
                [(f"msg_log{i:012d}", ws, app, mailbox, now - 86400 * 20 + i / 100, now, now, domains, meta)
                 for i in range(start, min(log_rows, start + 50_000))])
        for start in range(0, waiting, 50_000):
            ids = [f"msg_wait{i:011d}" for i in range(start, min(waiting, start + 50_000))]
            db.executemany(
                "INSERT INTO messages (id, workspace_id, application_id, mailbox_id, status, attempts, created_at,"
                " updated_at, scheduled_at, next_attempt_at, recipient_domains, metadata)"
                " VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, 32503680000, 32503680000, ?, ?)",
                [(m, ws, app, mailbox, now, now, domains, meta) for m in ids])
            db.executemany("INSERT INTO message_bodies (message_id, payload) VALUES (?, ?)",
                           [(m, os.urandom(1200)) for m in ids])
    db.close()


def idle_rss(home: Path) -> float:
    port = free_port()
    proc = subprocess.Popen([*pin(0), PY, "-m", "js2mail", "serve", "--port", str(port), "--log-level", "warning"],
                            env=env_for(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        time.sleep(3)
        return rss_mb(proc.pid)
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    empty_home, empty_key = ingest.prepare()
    big_home, big_key = ingest.prepare()
    started = time.monotonic()
    fill(big_home, args.log_rows, args.waiting)
    print(f"filled {args.log_rows} log rows + {args.waiting} waiting messages in {time.monotonic() - started:.0f}s")
    rss_before = idle_rss(big_home)

    empty = ingest.measure(empty_home, empty_key, duration=args.duration, conns=32, runs=args.runs)
    big = ingest.measure(big_home, big_key, duration=args.duration, conns=32, runs=args.runs)
    ingest.report("Ingest, empty database", empty)
    ingest.report(f"Ingest, {args.log_rows} log rows + {args.waiting} waiting", big)
    print(f"backlog/empty ingest req/s: {big['js2mail']['rps'] / empty['js2mail']['rps']:.2f}x (target >= 0.85)")

    sink = dispatch.Sink()
    try:
        d_empty, _ = dispatch.js2mail_rate(sink, args.messages)
        d_big, rss_run = dispatch.js2mail_rate(sink, args.messages, home=big_home, config="")
    finally:
        sink.close()
    rss_after = idle_rss(big_home)
    print(f"\nDispatch empty {d_empty:.0f} msg/s, with backlog {d_big:.0f} msg/s: "
          f"{d_big / d_empty:.2f}x (target >= 0.85)")
    print(f"serve idle RSS with the backlog: before {rss_before:.0f} MB, during dispatch {rss_run:.0f} MB, "
          f"after {rss_after:.0f} MB")


if __name__ == "__main__":
    main()
