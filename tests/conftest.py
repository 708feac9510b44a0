from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.provider_fixtures"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, initialized js2mail home for this test only."""
    for var in ("JS2MAIL_CONFIG", "JS2MAIL_MASTER_KEY", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "home"
    monkeypatch.setenv("JS2MAIL_HOME", str(path))
    from tests.support.cli import run_cli

    result = run_cli("init")
    assert result.code == 0, result.err
    yield path
