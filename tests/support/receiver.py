"""A real HTTP receiver on 127.0.0.1 that records every request and answers from a script."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, port: int = 0) -> None:  # a given port: a receiver that was down comes back
        self.requests: list[Recorded] = []
        self.script: list[tuple[int, dict[str, str], float]] = []  # answers for the next requests
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with outer.lock:
                    outer.requests.append(Recorded("POST", self.path, {k: v for k, v in self.headers.items()}, body))
                    status, headers, delay = outer.script.pop(0) if outer.script else (200, {}, 0.0)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def respond(self, status: int, headers: dict[str, str] | None = None, *, times: int = 1, delay: float = 0) -> None:
        with self.lock:
            self.script.extend([(status, headers or {}, delay)] * times)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} request(s), got {len(self.requests)} within {timeout}s")

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
