"""A counting SMTP sink (aiosmtpd) for the dispatch benchmarks.

    python bench/sink.py SMTP_PORT STATUS_PORT

Connecting to STATUS_PORT returns "count first_ts last_ts"; sending "reset" there zeroes it.
"""

from __future__ import annotations

import socketserver
import sys
import threading
import time
from typing import Any

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        with self.lock:
            if self.count == 0:
                self.first = now
            self.count += 1
            self.last = now
        return "250 OK"


def main() -> None:
    smtp_port, status_port = int(sys.argv[1]), int(sys.argv[2])
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=smtp_port, data_size_limit=50 * 1024 * 1024)
    controller.start()

    class Status(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().strip()
            with counter.lock:
                if line == b"reset":
                    counter.count, counter.first, counter.last = 0, 0.0, 0.0
                self.wfile.write(f"{counter.count} {counter.first} {counter.last}\n".encode())

    with socketserver.TCPServer(("127.0.0.1", status_port), Status) as status:
        print("READY", flush=True)
        status.serve_forever()


if __name__ == "__main__":
    main()
