from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from js2mail.config import Settings, load_settings
from js2mail.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_then_file_then_env(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[server]\nport = 9000\npublic_url = "https://mail.example.com/"\n'
                                          '[rate_limit]\nrate = 2.5\n')
    s = load_settings(tmp_path, env={"JS2MAIL_SERVER_PORT": "9100", "JS2MAIL_WEBHOOKS_ALLOW_PRIVATE": "yes"})
    assert s.server.port == 9100
    assert s.rate_limit.rate == 2.5
    assert s.rate_limit.burst == 50
    assert s.webhooks.allow_private is True
    assert s.public_url == "https://mail.example.com"
    assert s.dispatch.retry_schedule == [60, 300, 1500, 7200, 36000, 86400]


def test_config_file_named_by_env(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text("[dispatch]\nretry_schedule = [1, 2]\n")
    s = load_settings(tmp_path / "home", env={"JS2MAIL_CONFIG": str(other)})
    assert s.dispatch.retry_schedule == [1.0, 2.0]
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path, env={"JS2MAIL_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize("text,match", [
    ("[server]\nprot = 1\n", "unknown setting 'server.prot'"),
    ("[server]\nport = 'x'\n", "server.port"),
    ("[webhooks]\nallow_private = 3\n", "allow_private"),
    ("not toml [", "not valid TOML"),
])
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_settings(tmp_path, env={})


def _leaves(obj: object, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if f.name == "home":
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out |= _leaves(value, f"{prefix}{f.name}.")
        else:
            out.add(f"{prefix}{f.name}")
    return out


def _toml_leaves(data: dict[str, object], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _toml_leaves(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out


def test_example_config_documents_every_setting_with_its_default() -> None:
    example = tomllib.loads((REPO / "config.example.toml").read_text())
    assert _toml_leaves(example) == _leaves(Settings())
    defaults = Settings()
    for dotted in _toml_leaves(example):
        node: object = example
        value: object = defaults
        for part in dotted.split("."):
            node = node[part]  # type: ignore[index]
            value = getattr(value, part)
        assert node == value, dotted


def test_example_config_loads(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text((REPO / "config.example.toml").read_text())
    assert load_settings(tmp_path, env={}).server.port == 8025


# --- every setting has bounds; every error names where, the key, the value and what is allowed ---------


@pytest.mark.parametrize("text,key,value", [
    ("[rate_limit]\nrate = nan\n", "rate_limit.rate", "nan"),
    ("[rate_limit]\nrate = -1\n", "rate_limit.rate", "-1"),
    ("[rate_limit]\nrate = inf\n", "rate_limit.rate", "inf"),
    ("[rate_limit]\nburst = 0\n", "rate_limit.burst", "0"),
    ("[rate_limit]\nburst = 2.5\n", "rate_limit.burst", "2.5"),
    ("[rate_limit]\nburst = true\n", "rate_limit.burst", "true"),
    ("[dispatch]\nbatch_size = 0\n", "dispatch.batch_size", "0"),
    ("[dispatch]\nretry_schedule = []\n", "dispatch.retry_schedule", "[]"),
    ("[dispatch]\nretry_schedule = [60, -1]\n", "dispatch.retry_schedule", "-1"),
    ("[dispatch]\nretry_schedule = 60\n", "dispatch.retry_schedule", "60"),
    ("[webhooks]\nretry_schedule = []\n", "webhooks.retry_schedule", "[]"),
    ("[forms]\nmax_file_bytes = -1\n", "forms.max_file_bytes", "-1"),
    ("[server]\nmax_body_bytes = -5\n", "server.max_body_bytes", "-5"),
    ("[server]\nport = 70000\n", "server.port", "70000"),
    ("[server]\nport = 'x'\n", "server.port", "x"),
    ("[server]\nhost = 5\n", "server.host", "5"),
    ("[database]\nsynchronous = 'sometimes'\n", "database.synchronous", "sometimes"),
    ("[webhooks]\nallow_private = 3\n", "webhooks.allow_private", "3"),
    ("[privacy]\nretention_days = 0\n", "privacy.retention_days", "0"),
])
def test_out_of_range_setting_in_the_file_names_file_key_value_and_allowed(
        tmp_path: Path, text: str, key: str, value: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env={})
    message = err.value.message
    assert str(tmp_path / "config.toml") in message and key in message and value in message, message
    assert "must be" in message and "\n" not in message


@pytest.mark.parametrize("var,value,key", [
    ("JS2MAIL_DISPATCH_BATCH_SIZE", "0", "dispatch.batch_size"),
    ("JS2MAIL_RATE_LIMIT_RATE", "nan", "rate_limit.rate"),
    ("JS2MAIL_RATE_LIMIT_BURST", "1e400", "rate_limit.burst"),
    ("JS2MAIL_SERVER_PORT", "-1", "server.port"),
    ("JS2MAIL_DISPATCH_RETRY_SCHEDULE", "", "dispatch.retry_schedule"),
    ("JS2MAIL_DISPATCH_POLL_INTERVAL", "0", "dispatch.poll_interval"),
    ("JS2MAIL_DATABASE_SYNCHRONOUS", "off", "database.synchronous"),
])
def test_out_of_range_setting_in_the_environment_names_the_variable(var: str, value: str, key: str,
                                                                     tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env={var: value})
    assert err.value.message.startswith(f"{var}: {key} = {value}") and "must be" in err.value.message


def test_range_edges_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[rate_limit]\nrate = 0.001\nburst = 1\n[dispatch]\nbatch_size = 10000\n"
                                          "retry_schedule = [1]\n[database]\nsynchronous = 'normal'\n")
    s = load_settings(tmp_path, env={"JS2MAIL_SERVER_PORT": "65535"})
    assert (s.rate_limit.rate, s.rate_limit.burst, s.dispatch.batch_size, s.server.port) == (0.001, 1, 10000, 65535)
    assert s.database.synchronous == "NORMAL" and s.dispatch.retry_schedule == [1.0]


def test_every_numeric_setting_has_a_range_and_every_default_is_inside_it() -> None:
    from js2mail.config import RANGES

    defaults = Settings()
    for dotted in _leaves(defaults):
        value: object = defaults
        for part in dotted.split("."):
            value = getattr(value, part)
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items) or dotted in RANGES:
            assert dotted in RANGES, f"{dotted} has no range in js2mail.config.RANGES"
            low, high = RANGES[dotted]
            assert all(low <= v <= high for v in items), dotted  # type: ignore[operator]


def test_bad_setting_through_the_cli_is_one_line_exit_1(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.cli import run_cli

    (home / "config.toml").write_text("[rate_limit]\nrate = nan\n")
    result = run_cli("serve")
    assert result.code == 1 and "please report it" not in result.err
    assert result.err.strip().splitlines() == [
        f"Error: {home / 'config.toml'}: rate_limit.rate = nan is not allowed: must be a number from 0.001 to 1000000"]
    (home / "config.toml").unlink()
    monkeypatch.setenv("JS2MAIL_DISPATCH_BATCH_SIZE", "0")
    result = run_cli("serve")
    assert result.code == 1
    assert result.err.strip() == ("Error: JS2MAIL_DISPATCH_BATCH_SIZE: dispatch.batch_size = 0 is not allowed: "
                                  "must be an integer from 1 to 10000")
