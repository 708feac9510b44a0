from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.server import cli_env

KEY = re.compile(r"^js2_live_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}$")


def test_init_creates_home_db_and_0600_key_then_changes_nothing(home: Path) -> None:
    assert (home / "js2mail.db").exists()
    assert stat.S_IMODE((home / "master.key").stat().st_mode) == 0o600
    again = run_cli("init", "--json")
    assert again.code == 0
    assert again.json()["changed"] is False
    assert "nothing changed" in run_cli("init").out


def test_init_without_keyring_on_a_headless_box_needs_no_prompt(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "js2mail", "init"], env=cli_env(tmp_path / "h"),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "h" / "master.key").exists()


def test_keys_create_prints_the_key_once_and_list_never_shows_it(home: Path) -> None:
    created = run_cli("keys", "create", "--workspace", "acme", "--app", "shop")
    assert created.code == 0
    key = created.out.strip()
    assert KEY.match(key)
    as_json = run_cli("keys", "create", "--workspace", "acme", "--app", "shop", "--json")
    data = json.loads(as_json.out)  # JSON only on stdout
    assert KEY.match(data["key"])
    listed = run_cli("keys", "list", "--json").json()
    assert [k["prefix"] for k in listed] == [key.split("_")[2], data["prefix"]]
    assert key.split("_")[3] not in run_cli("keys", "list").out
    assert key.split("_")[3] not in json.dumps(listed)
    db = (home / "js2mail.db").read_bytes()
    assert key.split("_")[3].encode() not in db


def test_revoke_and_rotate(home: Path) -> None:
    first = run_cli("keys", "create", "-w", "acme", "-a", "shop", "--json").json()
    rotated = run_cli("keys", "rotate", first["prefix"], "--grace", "24h", "--json").json()
    assert rotated["workspace"] == "acme" and rotated["application"] == "shop"
    listed = {k["prefix"]: k for k in run_cli("keys", "list", "--json").json()}
    assert listed[first["prefix"]]["revoked"] is False and listed[first["prefix"]]["revokesAt"]
    assert run_cli("keys", "revoke", first["prefix"]).code == 0
    listed = {k["prefix"]: k for k in run_cli("keys", "list", "--json").json()}
    assert listed[first["prefix"]]["revoked"] is True
    assert listed[rotated["prefix"]]["revoked"] is False


def test_user_errors_are_one_line_without_traceback(home: Path) -> None:
    for args in (["keys", "revoke", "nope"], ["keys", "create", "-w", "Bad Slug", "-a", "x"],
                 ["keys", "rotate", "nope", "--grace", "soon"], ["messages", "show", "msg_missing"]):
        result = run_cli(*args)
        assert result.code != 0
        assert "Traceback" not in result.err + result.out
        assert len(result.err.strip().splitlines()) == 1, result.err
    as_json = run_cli("keys", "revoke", "nope", "--json")
    assert as_json.code == 1
    assert as_json.json()["error"]["code"] == "key_not_found"


def test_commands_before_init_say_what_to_do(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "js2mail", "keys", "list"], env=cli_env(tmp_path / "none"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "js2mail init" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_config_file_is_one_line(home: Path) -> None:
    (home / "config.toml").write_text("[server]\nprot = 1\n")
    result = run_cli("keys", "list")
    assert result.code == 1
    assert "unknown setting 'server.prot'" in result.err


def test_loose_key_file_is_refused(home: Path) -> None:
    os.chmod(home / "master.key", 0o644)
    result = run_cli("keys", "list")
    assert result.code == 1 and "chmod 600" in result.err


def test_usage_errors_are_click_messages_with_exit_code_2(home: Path) -> None:
    missing = run_cli("keys", "create")
    assert missing.code == 2 and "Missing option" in missing.err and "Traceback" not in missing.err
    assert run_cli("nonsense").code == 2
    as_json = run_cli("keys", "create", "--json")
    assert as_json.code == 2 and as_json.json()["error"]["code"] == "usage_error"
