"""`js2mail dns check` through the real CLI against a DNS server on loopback: strict SPF/DMARC
parsing, strict input, one total timeout, a spinner on terminals only, and exit codes 0/1/2."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Result, run_cli
from tests.support.dns_server import FakeDns
from tests.support.server import REPO, cli_env

# What the include:/redirect= targets used below publish (receivers count their look-ups too).
INCLUDED = {
    "_spf.google.com": ["v=spf1 include:_netblocks.google.com include:_netblocks2.google.com ~all"],
    "_netblocks.google.com": ["v=spf1 ip4:192.0.2.0/24 ~all"],
    "_netblocks2.google.com": ["v=spf1 ip6:2001:db8::/32 ~all"],
    **{f"s{i}.ex.net": [f"v=spf1 ip4:198.51.100.{i} -all"] for i in range(12)},
    **{f"{n}.example.net": ["v=spf1 a -all"] for n in "abc"},
}
GOOD = {
    **INCLUDED,
    "example.com": ["v=spf1 include:_spf.google.com ~all", "google-site-verification=x"],
    "google._domainkey.example.com": ["v=DKIM1; k=rsa; p=MIIBIjANBg"],
    "_dmarc.example.com": ["v=DMARC1; p=reject; pct=100; rua=mailto:dmarc@example.com,mailto:x@example.net!10m"],
}


def check(records: dict[str, list[str]], *args: str) -> tuple[Result, dict[str, dict[str, Any]]]:
    with FakeDns(records) as dns:
        result = run_cli("dns", "check", "example.com", "--nameserver", dns.address, "--json", *args)
    return result, {c["name"]: c for c in result.json()}


def with_spf(*spf: str) -> dict[str, list[str]]:
    return {**GOOD, "example.com": list(spf)}


def with_dmarc(*dmarc: str) -> dict[str, list[str]]:
    return {**GOOD, "_dmarc.example.com": list(dmarc)}


def test_a_good_domain_is_ok_and_exits_0(home: Path) -> None:
    result, checks = check(GOOD, "--provider", "gmail")
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert all(c["problems"] == [] for c in checks.values())
    assert result.code == 0


@pytest.mark.parametrize(("spf", "status", "needle"), [
    ("v=spf1 +all", "invalid", "+all lets any server"),
    ("v=spf1 include:_spf.google.com all", "invalid", "+all lets any server"),
    ("v=spf1 include:_spf.google.com ?all", "warning", "?all (neutral)"),
    ("v=spf1 include:_spf.google.com", "warning", "no all mechanism"),
    ("v=spf1 " + " ".join(f"include:s{i}.ex.net" for i in range(11)) + " -all", "invalid",
     "11 DNS-lookup mechanisms"),
    ("v=spf1 a mx include:a.example.net include:b.example.net exists:%{i}.x.example.net ptr redirect=c.example.net",
     "warning", "ptr is slow"),
    ("v=spf1 ip4:300.1.2.3 -all", "invalid", "not an IPv4"),
    ("v=spf1 include -all", "invalid", "include needs :domain"),
    ("v=spf1 bogus:x -all", "invalid", "not an SPF mechanism"),
])
def test_spf_is_parsed_strictly(home: Path, spf: str, status: str, needle: str) -> None:
    result, checks = check(with_spf(spf))
    assert checks["spf"]["status"] == status, checks["spf"]
    assert any(needle in p for p in checks["spf"]["problems"]), checks["spf"]
    assert result.code == 1


def test_ten_lookups_are_allowed_eleven_are_not(home: Path) -> None:
    ten = "v=spf1 " + " ".join(f"include:s{i}.ex.net" for i in range(10)) + " -all"
    assert check(with_spf(ten))[1]["spf"]["status"] == "ok"
    eleven = ten.replace(" -all", " mx -all")
    assert check(with_spf(eleven))[1]["spf"]["status"] == "invalid"


def test_look_ups_inside_includes_count_toward_the_limit(home: Path) -> None:
    nested = {**GOOD, "example.com": ["v=spf1 include:_spf.google.com include:a.ex.net include:b.ex.net -all"],
              "a.ex.net": ["v=spf1 " + " ".join(f"include:s{i}.ex.net" for i in range(4)) + " -all"],
              "b.ex.net": ["v=spf1 " + " ".join(f"include:s{i}.ex.net" for i in range(4, 8)) + " mx -all"]}
    # 3 + (2 in _spf.google.com) + 4 + 5 = 14, though the record itself has only 3
    result, checks = check(nested)
    assert checks["spf"]["status"] == "invalid"
    assert any(p.startswith("14 DNS look-ups counting those inside") for p in checks["spf"]["problems"])
    assert result.code == 1
    # 3 + 2 + 4 = 9: fine
    del nested["b.ex.net"]
    nested["example.com"] = ["v=spf1 include:_spf.google.com include:a.ex.net ~all"]
    assert check(nested)[1]["spf"]["status"] == "ok"


def test_an_include_without_an_spf_record_is_flagged(home: Path) -> None:
    _, checks = check(with_spf("v=spf1 include:_spf.google.com include:nothing-here.example.org -all"))
    assert checks["spf"]["status"] == "invalid"
    assert "nothing-here.example.org (an include:/redirect= target) has no SPF record" in checks["spf"]["detail"]


def test_two_spf_records_are_flagged(home: Path) -> None:
    result, checks = check(with_spf("v=spf1 include:_spf.google.com ~all", "v=spf1 ip4:192.0.2.1 -all"))
    assert checks["spf"]["status"] == "invalid" and "2 SPF records" in checks["spf"]["detail"]
    assert result.code == 1


@pytest.mark.parametrize(("dmarc", "needle"), [
    ("v=DMARC1; p=bogus", "p=bogus: must be none, quarantine or reject"),
    ("p=reject; v=DMARC1", "must start with v=DMARC1"),
    ("v=DMARC1; rua=mailto:d@example.com", "no p= tag"),
    ("v=DMARC1; p=reject; pct=150", "pct=150"),
    ("v=DMARC1; p=reject; pct=-1", "pct=-1"),
    ("v=DMARC1; p=quarantine; rua=dmarc@example.com", "'dmarc@example.com' is not a mailto: address"),
    ("v=DMARC1; p=quarantine; ruf=https://example.com/report", "is not a mailto: address"),
    ("v=DMARC1; p=none; sp=maybe", "sp=maybe"),
    ("v=DMARC1; p=none; p=reject", "tag p appears twice"),
])
def test_dmarc_tags_are_validated(home: Path, dmarc: str, needle: str) -> None:
    result, checks = check(with_dmarc(dmarc))
    assert checks["dmarc"]["status"] == "invalid", checks["dmarc"]
    assert any(needle in p for p in checks["dmarc"]["problems"]), checks["dmarc"]
    assert result.code == 1


def test_two_dmarc_records_are_flagged(home: Path) -> None:
    _, checks = check(with_dmarc("v=DMARC1; p=none", "v=DMARC1; p=reject"))
    assert checks["dmarc"]["status"] == "invalid" and "2 DMARC records" in checks["dmarc"]["detail"]


def test_everything_missing_exits_1_with_records_to_publish(home: Path) -> None:
    with FakeDns({"other.example": ["v=spf1 -all"]}) as dns:
        result = run_cli("dns", "check", "example.org", "--provider", "microsoft", "--nameserver", dns.address)
    assert result.code == 1
    # the Microsoft 365 record as Microsoft documents it: hard fail
    assert 'publish: example.org. TXT "v=spf1 include:spf.protection.outlook.com -all"' in result.out
    assert "_dmarc.example.org. TXT" in result.out and "Problems found" in result.err


@pytest.mark.parametrize(("args", "needle"), [
    (("example.com", "--provider", "yahoo"), "'yahoo': must be one of gmail, microsoft, smtp"),
    (("not a domain",), "is not a domain name"),
    (("https://example.com/",), "is not a domain name"),
    (("user@example.com",), "is not a domain name"),
    (("localhost",), "is not a domain name"),
    (("bad-.example.com",), "is not a domain name"),
    (("example.com", "--nameserver", "dns.google"), "expected IP, IP:PORT"),
    (("example.com", "--timeout", "0"), "must be more than 0"),
])
def test_what_cannot_be_checked_is_refused_with_exit_2(home: Path, args: tuple[str, ...], needle: str) -> None:
    result = run_cli("dns", "check", *args, "--nameserver", "127.0.0.1:9") if "--nameserver" not in args else \
        run_cli("dns", "check", *args)
    assert result.code == 2, result
    assert needle in result.err


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A UDP port on loopback that takes DNS questions and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_an_unreachable_nameserver_is_bounded_by_the_total_timeout(home: Path, black_hole: str) -> None:
    started = time.monotonic()
    result = run_cli("dns", "check", "example.com", "--nameserver", black_hole, "--timeout", "1.5", "--json")
    elapsed = time.monotonic() - started
    assert result.code == 2
    assert 1.4 <= elapsed < 2.5, elapsed  # one budget for all six look-ups, not 3 s each
    checks = {c["name"]: c for c in result.json()}
    assert {c["status"] for c in checks.values()} == {"error"}
    assert "timed out" in checks["spf"]["detail"]


def run_on_a_terminal(args: list[str], home: Path) -> tuple[int, str, str]:
    """Run `python -m js2mail ARGS` with stderr on a pseudo-terminal; return (rc, stdout, terminal output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "js2mail", *args], stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, env=cli_env(home, TERM="xterm-256color", COLUMNS="100"),
                            cwd=str(REPO))
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    out = proc.communicate(timeout=10)[0].decode()
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode("utf-8", "replace")


def test_a_spinner_shows_on_a_terminal_and_stays_off_stdout(home: Path, black_hole: str) -> None:
    code, out, terminal = run_on_a_terminal(["dns", "check", "example.com", "--nameserver", black_hole,
                                             "--timeout", "1"], home)
    assert code == 2
    assert "Checking example.com: SPF: TXT example.com" in terminal
    assert "Checking" not in out and "SPF" in out  # the results on stdout, the spinner on the terminal only
    # not a terminal (a script, a pipe, a log file): no spinner, no escape codes
    with FakeDns(GOOD) as dns:
        piped = run_cli("dns", "check", "example.com", "--nameserver", dns.address)
    assert piped.code == 0 and "Checking" not in piped.err and "\x1b" not in piped.err
