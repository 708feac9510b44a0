"""Dispatch: N queued messages through `js2mail serve` to a loopback SMTP sink, against raw
aiosmtplib over 4 reused connections with the same messages, in the same run.

    python bench/dispatch.py [--messages 5000]

The sink runs pinned to CPU 1; js2mail serve (and the raw client) to CPU 0. Rates are measured
between the first and the last message the sink receives, so server start-up is not counted.
js2mail's figure includes building and flattening the MIME message; the raw baseline is the
ceiling: the same messages flattened to bytes before the clock starts, sent with aiosmtplib
`sendmail(raw bytes)` on four reused connections, so it carries no MIME cost at all.
It also prints the build + flatten cost per message of each writer (`--build-only` for just that).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import timeit
from pathlib import Path

from common import PY, REPO, env_for, free_port, fresh_home, js2mail, machine, pin, rss_mb, stop

CONFIG = "[rate_limit]\nrate = 1000000\nburst = 1000000\n[dispatch]\nbatch_size = 500\n"


class Sink:
    def __init__(self) -> None:
        self.smtp_port, self.status_port = free_port(), free_port()
        self.proc = subprocess.Popen([*pin(1), PY, str(REPO / "bench" / "sink.py"), str(self.smtp_port),
                                      str(self.status_port)], stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == b"READY"

    def status(self, cmd: bytes = b"get") -> tuple[int, float, float]:
        with socket.create_connection(("127.0.0.1", self.status_port), timeout=5) as s:
            s.sendall(cmd + b"\n")
            count, first, last = s.makefile().readline().split()
        return int(count), float(first), float(last)

    def wait(self, n: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            count, first, last = self.status()
            if count >= n:
                return (n - 1) / (last - first) if last > first else float("inf")
            time.sleep(0.05)
        raise RuntimeError(f"sink got {self.status()[0]} of {n} messages within {timeout}s")

    def wait_cpu(self, n: int, pid: int, timeout: float) -> tuple[float, float]:
        """(msg/s, CPU µs per message of process `pid`) between the sink's first and n-th message:
        CPU time, unlike the rate, does not depend on what else the machine is running."""
        deadline, cpu_first = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            count, first, last = self.status()
            if count >= 1 and cpu_first is None:
                cpu_first, at = cpu_seconds(pid), count
            if count >= n:
                spent = cpu_seconds(pid) - (cpu_first or 0.0)
                return (n - 1) / (last - first) if last > first else float("inf"), spent / (n - at) * 1e6
            time.sleep(0.02)
        raise RuntimeError(f"sink got {self.status()[0]} of {n} messages within {timeout}s")

    def close(self) -> None:
        stop(self.proc)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime  # type: ignore[arg-type]


def queue_messages(home: Path, n: int) -> None:
    """Queue n messages in-process through the same service path the API uses."""
    sys.path.insert(0, str(REPO))
    from js2mail.config import load_settings
    from js2mail.service import messages, open_context
    from js2mail.service.keys import ensure_scope

    ctx = open_context(load_settings(home))

    async def run() -> None:
        scope = ensure_scope(ctx, "bench", "load")
        for i in range(0, n, 200):
            await asyncio.gather(*(messages.send(ctx, scope, {
                "to": "bench@example.org", "subject": f"Benchmark message {j}",
                "text": "Lorem ipsum dolor sit amet. " * 28, "html": "<p>" + "Lorem ipsum dolor sit amet. " * 28 + "</p>",
            }) for j in range(i, min(n, i + 200))))

    try:
        asyncio.run(run())
    finally:
        ctx.close()


def js2mail_rate(sink: Sink, n: int, config: str = CONFIG, home: Path | None = None) -> tuple[float, float]:
    home = home or fresh_home(config)
    if "bench@example.com" in js2mail(home, "mailboxes", "list", "--json"):
        js2mail(home, "mailboxes", "remove", "bench@example.com", "-w", "bench")
    js2mail(home, "mailboxes", "add", "smtp", "-w", "bench", "--app", "load", "--address", "bench@example.com",
            "--host", "127.0.0.1", "--port", str(sink.smtp_port), "--security", "none", "--no-auth")
    queue_messages(home, n)
    sink.status(b"reset")
    proc = subprocess.Popen([*pin(0), PY, "-m", "js2mail", "serve", "--port", str(free_port()), "--log-level",
                             "warning"], env=env_for(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rate, CPU_US["js2mail"] = sink.wait_cpu(n, proc.pid, timeout=600)
        return rate, rss_mb(proc.pid)
    finally:
        stop(proc)


CPU_US: dict[str, float] = {}  # CPU µs per message of the last runs, by sender


RAW = r"""
import asyncio, sys, time
sys.path.insert(0, sys.argv[3])
import aiosmtplib
from js2mail import mail
port, n = int(sys.argv[1]), int(sys.argv[2])
req = mail.parse_send_request({"to": "bench@example.org", "subject": "Benchmark message",
    "text": "Lorem ipsum dolor sit amet. " * 28, "html": "<p>" + "Lorem ipsum dolor sit amet. " * 28 + "</p>"})
raws = [mail.flatten(mail.build_email(req, from_header="bench@example.com", message_id=f"<raw{i}@example.com>",
                                      date=time.time()), drop_bcc=True) for i in range(n)]  # before the clock
async def main():
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) for _ in range(4)]
    for c in clients:
        await c.connect()
    queue = list(raws)
    async def worker(c):
        while queue:
            await c.sendmail("bench@example.com", ["bench@example.org"], queue.pop())
    await asyncio.gather(*(worker(c) for c in clients))
    for c in clients:
        await c.quit()
import uvloop; uvloop.run(main())
"""


def build_cost(writer: str, number: int = 2000) -> float:
    """µs to build and flatten the benchmark message with one writer, on this process's CPU."""
    sys.path.insert(0, str(REPO))
    from js2mail import mail

    req = mail.parse_send_request({"to": "bench@example.org", "subject": "Benchmark message",
                                   "text": "Lorem ipsum dolor sit amet. " * 28,
                                   "html": "<p>" + "Lorem ipsum dolor sit amet. " * 28 + "</p>"})

    def once() -> bytes:
        return mail.flatten(mail.build_email(req, from_header="bench@example.com", message_id="<b@example.com>",
                                             date=1_800_000_000.0, writer=writer), drop_bcc=True)

    return min(timeit.repeat(once, number=number, repeat=3)) / number * 1e6


def raw_rate(sink: Sink, n: int) -> float:
    sink.status(b"reset")
    proc = subprocess.Popen([*pin(0), PY, "-c", RAW, str(sink.smtp_port), str(n), str(REPO)])
    try:
        rate, CPU_US["raw"] = sink.wait_cpu(n, proc.pid, timeout=600)
    finally:
        proc.wait(60)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--build-only", action="store_true", help="only the per-message build + flatten cost")
    args = parser.parse_args()
    costs = {writer: build_cost(writer) for writer in ("direct", "stdlib")}
    print(f"build + flatten per message: direct writer {costs['direct']:.0f} µs, stdlib {costs['stdlib']:.0f} µs")
    if args.build_only:
        return
    sink = Sink()
    try:
        raw = raw_rate(sink, args.messages)
        ours, rss = js2mail_rate(sink, args.messages)
    finally:
        sink.close()
    print(f"\nDispatch, {args.messages} messages  ({machine()})")
    print(f"raw aiosmtplib sendmail, 4 reused connections, pre-flattened bytes: {raw:8.0f} msg/s")
    print(f"js2mail serve (MIME build and flatten included):                  {ours:8.0f} msg/s")
    print(f"ratio {ours / raw:.2f}x (target >= 0.6), serve RSS after the run {rss:.0f} MB")
    cpu_raw, cpu_ours = CPU_US["raw"], CPU_US["js2mail"]
    print(f"CPU per message: raw {cpu_raw:.0f} µs, js2mail {cpu_ours:.0f} µs; one core's ceiling "
          f"{1e6 / cpu_raw:.0f} vs {1e6 / cpu_ours:.0f} msg/s = {cpu_raw / cpu_ours:.2f}x")


if __name__ == "__main__":
    main()
