"""`js2mail deploy systemd`: the unit it prints is filled in for this machine, hardened, and
accepted by `systemd-analyze verify` without a warning; the credential it names is where js2mail
looks for the master key first."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.server import cli_env


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_is_filled_in_for_this_machine_and_verifies(home: Path, tmp_path: Path) -> None:
    (home / "config.toml").write_text('[server]\nhost = "127.0.0.1"\nport = 8125\n')
    result = run_cli("deploy", "systemd", "--user", "mailer", "--home", "/var/lib/js2mail",
                     "--credential", "/etc/js2mail/master.key")
    assert result.code == 0, result.err
    unit = directives(result.out)
    script = Path(sys.executable).with_name("js2mail")
    assert unit["ExecStart"] == [f"{script} serve --host 127.0.0.1 --port 8125 --log-format text"]
    assert unit["User"] == ["mailer"] and unit["Group"] == ["mailer"]
    assert "JS2MAIL_HOME=/var/lib/js2mail" in unit["Environment"]
    assert unit["LoadCredential"] == ["js2mail-master-key:/etc/js2mail/master.key"]
    assert unit["ReadWritePaths"] == ["/var/lib/js2mail"] and unit["StateDirectory"] == ["js2mail"]
    for key, value in {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
                       "KillSignal": "SIGTERM", "WantedBy": "multi-user.target"}.items():
        assert unit[key] == [value], key
    assert "AmbientCapabilities" not in unit  # only for a port below 1024

    # the credential the unit loads is the name js2mail reads from $CREDENTIALS_DIRECTORY, before any key file
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    name = unit["LoadCredential"][0].split(":")[0]
    (home / "master.key").rename(credentials / name)
    doctor = subprocess.run([sys.executable, "-m", "js2mail", "doctor"], capture_output=True, text=True, timeout=60,
                            env=cli_env(home, CREDENTIALS_DIRECTORY=str(credentials)))
    assert "ok    master key: from credentials" in doctor.stdout, doctor.stdout + doctor.stderr

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    path = tmp_path / "js2mail.service"
    path.write_text(result.out)
    verify = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr == "" and verify.stdout == "", verify.stderr


def test_defaults_come_from_this_home_and_config(home: Path) -> None:
    (home / "config.toml").write_text('[server]\nhost = "0.0.0.0"\nport = 443\n')
    unit = directives(run_cli("deploy", "systemd").out)
    assert unit["User"] == ["js2mail"]
    assert f"JS2MAIL_HOME={home}" in unit["Environment"] and unit["ReadWritePaths"] == [str(home)]
    assert unit["ExecStart"][0].endswith("serve --host 0.0.0.0 --port 443 --log-format text")
    assert unit["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]  # port 443 needs it, nothing more
    assert unit["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
