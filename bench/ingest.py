"""Ingest: `POST /v1/send` on `js2mail serve` against a bare Litestar endpoint, in the same run.

    python bench/ingest.py [--duration 15] [--conns 32] [--runs 3]

Server pinned to CPU 0, wrk to CPU 1. Each request carries a unique Idempotency-Key and a
scheduledAt far in the future, so this measures acceptance (auth, rate limit, validation,
idempotency claim, sealing, the durable insert) without the dispatcher competing for the core.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from common import PY, REPO, env_for, free_port, fresh_home, js2mail, machine, pin, rss_mb, run_wrk, stop, wait_http

CONFIG = ("[rate_limit]\nrate = 1000000\nburst = 1000000\n"
          "[dispatch]\nmax_schedule_days = 400000\n"  # post.lua schedules its mail in 2999
          "[limits]\nmax_queued_messages = 1000000000\nmax_queued_bytes = 1099511627776\n")


def serve_js2mail(home: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*pin(0), PY, "-m", "js2mail", "serve", "--port", str(port), "--log-level", "warning"],
                            env=env_for(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def serve_bare(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*pin(0), PY, "-m", "uvicorn", "--app-dir", str(REPO / "bench"), "bare_app:app",
                             "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/schema", proc)
    return proc


def prepare(config: str = CONFIG) -> tuple[Path, str]:
    home = fresh_home(config)
    js2mail(home, "mailboxes", "add", "smtp", "-w", "bench", "--app", "load", "--address", "bench@example.com",
            "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth")
    return home, js2mail(home, "keys", "create", "-w", "bench", "-a", "load")


def measure(home: Path, key: str, *, duration: int, conns: int, runs: int) -> dict[str, dict[str, float]]:
    script = REPO / "bench" / "post.lua"
    results: dict[str, list[dict[str, float]]] = {"bare": [], "js2mail": []}
    rss = 0.0
    for _ in range(runs):  # interleaved, so drift hits both alike
        for name in ("bare", "js2mail"):
            port = free_port()
            proc = serve_bare(port) if name == "bare" else serve_js2mail(home, port)
            try:
                env = {"JS2MAIL_BENCH_KEY": key, "JS2MAIL_BENCH_RUN": uuid.uuid4().hex[:12]}
                run_wrk(f"http://127.0.0.1:{port}", script, duration=2, conns=conns, cpu=1, env=env)  # warm-up
                env["JS2MAIL_BENCH_RUN"] = uuid.uuid4().hex[:12]
                results[name].append(run_wrk(f"http://127.0.0.1:{port}", script, duration=duration, conns=conns,
                                             cpu=1, env=env))
                if name == "js2mail":
                    rss = max(rss, rss_mb(proc.pid))
            finally:
                stop(proc)
    out = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in results.items()}
    out["js2mail"]["rss_mb"] = rss
    return out


def report(title: str, res: dict[str, dict[str, float]]) -> None:
    bare, ours = res["bare"], res["js2mail"]
    print(f"\n{title}  ({machine()})")
    print(f"{'endpoint':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for name, r in (("bare Litestar", bare), ("js2mail /v1/send", ours)):
        print(f"{name:<22}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['non2xx']:>10.0f}")
    print(f"ratio req/s {ours['rps'] / bare['rps']:.2f}x (target >= 0.6), "
          f"p99 {ours['p99'] / bare['p99']:.2f}x bare (target <= 2), serve RSS under load {ours['rss_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--synchronous", default="FULL", help="[database] synchronous for js2mail: FULL or NORMAL")
    args = parser.parse_args()
    started = time.monotonic()
    home, key = prepare(CONFIG + f'[database]\nsynchronous = "{args.synchronous}"\n')
    report(f"Ingest, empty database, synchronous={args.synchronous}",
           measure(home, key, duration=args.duration, conns=args.conns, runs=args.runs))
    print(f"(took {time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
