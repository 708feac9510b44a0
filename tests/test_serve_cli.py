"""`js2mail serve` as a user starts it (a real subprocess): a busy or foreign address is one line and
exit 1, ports are 1-65535 in the flag and the config, and an empty home is told what to do next."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import REPO, ServerProcess, cli_env, free_port


def serve(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `js2mail serve ARGS` expecting it to stop by itself (bounded)."""
    return subprocess.run([sys.executable, "-m", "js2mail", "serve", *args], capture_output=True, text=True,
                          timeout=60, env=cli_env(home, **env), cwd=str(REPO), stdin=subprocess.DEVNULL)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_port_is_one_line_and_exit_1(home: Path, held_port: int) -> None:
    run = serve(home, "--host", "127.0.0.1", "--port", str(held_port))
    assert run.returncode == 1
    assert run.stderr == f"Error: port {held_port} is in use: is another js2mail serve running? use --port\n"
    assert "listening" not in run.stderr and run.stdout == ""


def test_the_busy_port_from_the_config_is_named_too(home: Path, held_port: int) -> None:
    (home / "config.toml").write_text(f"[server]\nport = {held_port}\n")
    run = serve(home)
    assert run.returncode == 1 and f"port {held_port} is in use" in run.stderr
    assert "Traceback" not in run.stderr


def test_an_address_not_on_this_machine_is_one_line_and_exit_1(home: Path) -> None:
    run = serve(home, "--host", "192.0.2.1", "--port", str(free_port()))  # TEST-NET-1: never local
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert line.startswith("Error: cannot listen on 192.0.2.1:") and "--host" in line


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-5"])
def test_the_port_flag_is_1_to_65535(home: Path, port: str) -> None:
    run = serve(home, "--port", port)
    assert run.returncode == 2
    assert f"Invalid value for '--port': {port} is not a port: use 1-65535" in run.stderr
    assert "listening" not in run.stderr


def test_the_port_setting_is_1_to_65535(home: Path) -> None:
    run = serve(home, JS2MAIL_SERVER_PORT="70000")
    assert run.returncode == 1
    assert run.stderr.startswith("Error: JS2MAIL_SERVER_PORT: server.port = 70000 is not allowed: must be an "
                                 "integer from 1 to 65535")
    assert "JS2MAIL_SERVER_PORT" in run.stderr and "listening" not in run.stderr
    (home / "config.toml").write_text("[server]\nport = 0\n")
    run = serve(home)
    assert run.returncode == 1 and "server.port = 0 is not allowed" in run.stderr
    assert "config.toml" in run.stderr
    # every command reads the same settings
    assert "server.port = 0 is not allowed" in run_cli("snippet").err


def test_an_empty_home_is_told_what_to_do_next(home: Path) -> None:
    with ServerProcess(home) as server:
        assert httpx.get(f"{server.url}/schema", timeout=5).status_code == 200  # the reference it points to
    said = server.log.read_text()
    assert "js2mail mailboxes add smtp" in said and "js2mail keys create" in said
    assert f"POST {server.url}/v1/send" in said
    assert "README.md" in said and f"{server.url}/schema" in said


def test_a_ready_home_is_not_told_again(home: Path) -> None:
    assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                   "--host", "127.0.0.1", "--port", "2525", "--security", "none", "--no-auth").code == 0
    with ServerProcess(home) as server:
        pass
    assert "js2mail keys create" in server.log.read_text()  # a mailbox, but no key yet
    assert "js2mail mailboxes add" not in server.log.read_text()
    assert run_cli("keys", "create", "-w", "acme", "-a", "shop").code == 0
    server.log.unlink()
    with ServerProcess(home, port=server.port) as again:
        pass
    assert "Next steps" not in again.log.read_text()
