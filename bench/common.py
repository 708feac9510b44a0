"""Shared helpers for the benchmarks: fresh homes, pinned processes, wrk, a counting SMTP sink.

Benchmarks are run by hand (never in CI) and talk to 127.0.0.1 only; every loop is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JS2MAIL_")}
    env.update({"JS2MAIL_HOME": str(home), "PYTHONPATH": str(REPO), **extra})
    return env


def js2mail(home: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run([PY, "-m", "js2mail", *args], env=env_for(home), input=stdin, capture_output=True,
                          text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"js2mail {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def fresh_home(config: str) -> Path:
    home = Path(tempfile.mkdtemp(prefix="js2mail-bench-")) / "home"
    js2mail(home, "init")
    (home / "config.toml").write_text(config)
    return home


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


WRK_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def run_wrk(url: str, script: Path, *, duration: int, conns: int, cpu: int | None, env: dict[str, str]) -> dict[str, float]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    out = subprocess.run([*pin(cpu), "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, timeout=duration + 60, env={**os.environ, **env},
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u] for p, v, u in WRK_LATENCY.findall(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50": lat.get("50", 0.0), "p99": lat.get("99", 0.0),
            "non2xx": float(non2xx.group(1)) if non2xx else 0.0, "socket_errors": 1.0 if errors else 0.0}


def machine() -> str:
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} x {cpu}, Python {sys.version.split()[0]}"
