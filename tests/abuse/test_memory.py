"""Many large sends at once: the request-body budget bounds the server's memory, and the memory
comes back after the burst."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import json
import threading
import time

from tests.abuse.conftest import Serve, rss_kib
from tests.support.smtp_server import SmtpServer

CLIENTS, SENDS_EACH = 12, 2
BUDGET = "[server]\nmax_body_bytes = 20971520\nmax_inflight_body_bytes = 50331648\n"  # 20 MiB; 48 MiB in flight


def test_concurrent_large_bodies_keep_memory_bounded_and_it_returns(serve: Serve, smtp: SmtpServer) -> None:
    server, client = serve(BUDGET, smtp=smtp)
    assert server.proc is not None
    pid = server.proc.pid
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    attachment = base64.b64encode(bytes(range(256)) * (12 * 1024 * 1024 // 256)).decode()  # 12 MiB → 16 MiB base64
    body = json.dumps({"to": "bob@example.org", "subject": "big", "text": "see attachment", "scheduledAt": when,
                       "attachments": [{"filename": "big.bin", "content": attachment}]}).encode()
    headers = {"Content-Type": "application/json"}
    time.sleep(1.0)
    baseline = rss_kib(pid)
    peak = [baseline]
    sampling = threading.Event()
    sampling.set()

    def sample() -> None:
        while sampling.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)

    def send_all() -> list[int]:
        statuses = []
        for _ in range(SENDS_EACH):
            for _attempt in range(200):  # bounded: a 503 says when to come back
                r = client.post("/v1/send", content=body, headers=headers, timeout=120)
                statuses.append(r.status_code)
                if r.status_code != 503:
                    break
                assert r.json()["error"]["code"] == "server_busy" and r.headers["Retry-After"] == "1"
                time.sleep(0.2)
        return statuses

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for f in [pool.submit(send_all) for _ in range(CLIENTS)] for s in f.result(300)]
    took = time.monotonic() - started
    time.sleep(3.0)
    sampling.clear()
    sampler.join(5)
    after = rss_kib(pid)
    print(f"{CLIENTS} clients x {SENDS_EACH} sends of {len(body) >> 20} MiB in {took:.1f}s: "
          f"{statuses.count(202)} accepted, {statuses.count(503)} busy answers; RSS {baseline >> 10} MiB before, "
          f"{peak[0] >> 10} MiB peak, {after >> 10} MiB 3 s after")
    assert statuses.count(202) == CLIENTS * SENDS_EACH and set(statuses) <= {202, 503}, sorted(set(statuses))
    assert peak[0] - baseline < 320 * 1024, (baseline, peak[0])  # bounded by the budget, not by the clients
    assert after - baseline < 120 * 1024, (baseline, after)  # and handed back after the burst
    listed = client.get("/v1/messages", params={"status": "queued", "limit": 100}).json()["data"]
    assert len(listed) == CLIENTS * SENDS_EACH
