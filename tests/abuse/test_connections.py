"""What a client without a key can hold: slow, silent and oversized connections."""

from __future__ import annotations

import contextlib
import socket
import time

from tests.abuse.conftest import Serve, closed_by_peer, healthz, open_fds

LIMITS = "[server]\nmax_connections = 40\nheader_timeout = 3.0\nkeepalive_timeout = 2.0\nmax_header_bytes = 16384\n"
SLOW_CLIENTS = 300


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # no TIME_WAIT pile-up
    return sock


def _trickle(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may have answered 503 and closed already
        sock.sendall(data)


def test_slowloris_cannot_lock_out_new_clients_and_is_cut_off_after_the_header_timeout(serve: Serve) -> None:
    server, _ = serve(LIMITS)
    assert server.proc is not None
    idle_fds = open_fds(server.proc.pid)
    slow = [_connect(server.port) for _ in range(SLOW_CLIENTS)]
    try:
        for sock in slow:
            _trickle(sock, b"GET /healthz HTTP/1.1\r\nHost: victim\r\n")
        statuses, peak_fds = [], 0
        started = time.monotonic()
        for line in range(2):  # one more header line a second: never finished, as slowloris does
            time.sleep(1.0)
            for sock in slow:
                _trickle(sock, b"X-Slow-%d: 1\r\n" % line)
            statuses.append(healthz(server.port))
            peak_fds = max(peak_fds, open_fds(server.proc.pid))
        # a fresh client is answered while the attack runs: 200, or 503 while the slots are full — never a reset
        assert statuses and all(s in (200, 503) for s in statuses), statuses
        # the connections beyond the cap were not kept: the server holds at most the cap (+ its own files)
        assert peak_fds <= idle_fds + 40 + 5, (idle_fds, peak_fds)
        # headers not complete within header_timeout (3 s): every slow connection has been closed
        assert all(closed_by_peer(sock, within=max(0.5, started + 3.0 + 2.0 - time.monotonic())) for sock in slow)
        assert healthz(server.port) == 200
        assert open_fds(server.proc.pid) <= idle_fds + 5
    finally:
        for sock in slow:
            sock.close()


def test_silent_and_idle_connections_are_closed(serve: Serve) -> None:
    server, _ = serve(LIMITS)
    silent = _connect(server.port)  # connects, never sends a byte
    idle = _connect(server.port)  # one request, then keeps the connection without another
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    assert closed_by_peer(idle, within=4.0)  # keepalive_timeout 2 s
    assert closed_by_peer(silent, within=max(0.5, started + 3.0 + 2.0 - time.monotonic()))  # header_timeout 3 s
    silent.close()
    idle.close()


def test_oversized_headers_are_refused_and_the_server_stays_up(serve: Serve) -> None:
    server, _ = serve(LIMITS)
    for size in (100_000, 8 * 1024 * 1024):
        sock = _connect(server.port)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
        _trickle(sock, request)
        sock.settimeout(5)
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
        sock.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert healthz(server.port) == 200
    # a request with ordinary headers under the limit still works
    sock = _connect(server.port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"b" * 8000 + b"\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()


def test_a_stalled_upload_is_closed_and_gives_its_body_budget_back(serve: Serve) -> None:
    server, client = serve("[server]\nheader_timeout = 3.0\nmax_body_bytes = 1048576\nmax_inflight_body_bytes = 1048576\n")
    key = client.headers["X-Api-Key"]
    stalled = _connect(server.port)  # declares a 1 MiB body (the whole budget), sends 100 bytes of it, then nothing
    stalled.sendall(b"POST /v1/send HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + key.encode()
                    + b"\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n" + b" " * 100)
    time.sleep(0.3)
    busy = client.post("/v1/send", json={"to": "bob@example.org", "subject": "s", "text": "t"})
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "server_busy"
    assert busy.headers["Retry-After"] == "1"
    assert closed_by_peer(stalled, within=3.0 + 2.0)  # nothing for header_timeout: closed
    stalled.close()
    after = client.post("/v1/send", json={"to": "bob@example.org", "subject": "s", "text": "t"})
    assert after.status_code != 503, after.text  # the budget is free again (no mailbox here: 422)
    assert after.json()["error"]["code"] == "no_default_mailbox"
