"""Dispatch in-process: N queued messages through a `Dispatcher` (uvloop) to the loopback sink,
counting CPU per message, write jobs and commits per message — optionally under cProfile.

    python bench/dispatch_profile.py [--messages 2000] [--profile out.prof] [--yappi]   # --yappi: pip install yappi

A quicker loop than bench/dispatch.py for finding where the dispatcher's time goes; its CPU figure
leaves out the HTTP server and the scheduler, so compare it only with itself.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
from collections import Counter
from pathlib import Path

from common import REPO, fresh_home, js2mail
from dispatch import CONFIG, Sink, queue_messages


def thread_cpu() -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds of each thread of this process so far, by thread id."""
    out: dict[str, tuple[float, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        name = task.name
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        user, system = out.get(name, (0.0, 0.0))
        out[name] = (user + int(fields[11]) / tick, system + int(fields[12]) / tick)
    return out


def area(module: str, name: str) -> str:
    """Where a function belongs, for the yappi summary: the package, or js2mail's module."""
    if "js2mail/" in module:
        return "js2mail." + module.rsplit("js2mail/", 1)[1].removesuffix(".py").replace("/", ".")
    for package in ("aiosmtplib", "email", "asyncio", "concurrent", "threading", "prometheus_client", "logging",
                    "uvloop", "cryptography", "json", "msgspec"):
        if f"/{package}/" in module or f"/{package}.py" in module:
            return package
    return f"{name.split('.')[0] if module == '' else module.rsplit('/', 1)[-1]}: {name}"[:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--profile", help="write a cProfile dump here")
    parser.add_argument("--yappi", action="store_true", help="print yappi's CPU-time profile of all threads")
    args = parser.parse_args()
    sink, home = Sink(), fresh_home(CONFIG)
    try:
        js2mail(home, "mailboxes", "add", "smtp", "-w", "bench", "--app", "load", "--address", "bench@example.com",
                "--host", "127.0.0.1", "--port", str(sink.smtp_port), "--security", "none", "--no-auth")
        queue_messages(home, args.messages)
        sink.status(b"reset")
        sys.path.insert(0, str(REPO))
        import uvloop

        from js2mail.config import load_settings
        from js2mail.dispatch import Dispatcher
        from js2mail.service import open_context
        from js2mail.store import Store

        counts: Counter[str] = Counter()
        commit, write = Store._commit, Store.write

        def counted_commit(conn: object) -> None:
            counts["commits"] += 1
            commit(conn)  # type: ignore[arg-type]

        def counted_write(self: Store, fn: object, *a: object, **k: object) -> object:
            counts[f"write {getattr(fn, '__name__', fn)}"] += 1
            return write(self, fn, *a, **k)  # type: ignore[arg-type]

        Store._commit = staticmethod(counted_commit)  # type: ignore[method-assign,assignment]
        Store.write = counted_write  # type: ignore[assignment,method-assign]
        ctx = open_context(load_settings(home))
        profiler = cProfile.Profile() if args.profile else None

        async def run() -> None:
            dispatcher = Dispatcher(ctx)
            try:
                await dispatcher.run_once()
            finally:
                await dispatcher.providers.close()

        before = thread_cpu()
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        if args.yappi:
            import yappi

            yappi.set_clock_type("cpu")
            yappi.start(builtins=True)
        uvloop.run(run())
        if args.yappi:
            yappi.stop()
            by_area: Counter[str] = Counter()
            for stat in yappi.get_func_stats():
                by_area[area(stat.module, stat.name)] += stat.tsub
            total = sum(by_area.values())
            for name, spent in by_area.most_common():
                print(f"  {name:40} {spent / total * 100:5.1f}%")
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        threads = thread_cpu()
        ctx.close()
        got = max(1, sink.status()[0])
        print(f"{got} of {args.messages} sent in {wall:.2f}s: {cpu / got * 1e6:.0f} µs CPU per message")
        for name, n in sorted(counts.items()):
            print(f"  {name}: {n} ({n / got:.2f} per message)")
        for name, (user, system) in threads.items():
            user, system = user - before.get(name, (0, 0))[0], system - before.get(name, (0, 0))[1]
            print(f"  thread {name}: user {user / got * 1e6:.0f} µs, system {system / got * 1e6:.0f} µs per message")
    finally:
        sink.close()


if __name__ == "__main__":
    main()
