"""Abuse tests: `js2mail serve` as a subprocess on loopback, attacked the way the internet does it —
slow and silent connections, oversized headers and bodies, a greedy tenant, a busy database."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import ServerProcess
from tests.support.smtp_server import SmtpServer
from tests.test_send_e2e import PASSWORD, USER, connect_mailbox

RELAXED_RATE = "[rate_limit]\nrate = 100000\nburst = 100000\n"

__all__ = ["PASSWORD", "USER"]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(tls="starttls", auth=(USER, PASSWORD)) as server:
        yield server


Serve = Callable[..., tuple[ServerProcess, httpx.Client]]


@pytest.fixture
def serve(home: Path) -> Iterator[Serve]:
    """Start `js2mail serve` with extra config (TOML); with `smtp`, a connected mailbox and a key."""
    started: list[tuple[ServerProcess, httpx.Client]] = []

    def start(config: str = "", smtp: SmtpServer | None = None) -> tuple[ServerProcess, httpx.Client]:
        (home / "config.toml").write_text(RELAXED_RATE + config)
        env = {}
        if smtp is not None:
            connect_mailbox(smtp)
            env["SSL_CERT_FILE"] = str(smtp.ca_path)
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        server = ServerProcess(home, env=env).start()
        client = httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=30)
        started.append((server, client))
        return server, client

    yield start
    for server, client in started:
        client.close()
        server.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True when the server closes `sock` (EOF or reset) within `within` seconds; what it sent first is read and dropped."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


def healthz(port: int, timeout: float = 2.0) -> int:
    """GET /healthz on a fresh connection (a plain socket: no client set-up cost in the timing): the
    status, or 0 if the connection was refused, reset or timed out."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError:
        return 0
    head = answer.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[1].isdigit() else 0
