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
