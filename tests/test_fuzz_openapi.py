"""A fuzz pass over the OpenAPI document: whatever schemathesis sends, the answer is never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.support.cli import run_cli
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("JS2MAIL_HOME", str(home))
    try:
        assert run_cli("init").code == 0
        (home / "config.toml").write_text("[rate_limit]\nrate = 100000\nburst = 100000\n"
                                          "[forms]\nrate_per_minute = 100000\n")
        assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", "shop@example.com",
                       "--host", "127.0.0.1", "--port", "9", "--security", "none", "--no-auth").code == 0
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        with ServerProcess(home) as server:
            yield server, key
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def api_schema(live: tuple[ServerProcess, str]) -> schemathesis.schemas.BaseSchema:
    server, key = live
    schema = schemathesis.openapi.from_url(server.url + "/schema/openapi.json")
    schema.config.headers = {"X-Api-Key": key}  # type: ignore[attr-defined]
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_produces_a_server_error(case: schemathesis.Case, live: tuple[ServerProcess, str]) -> None:
    server, key = live
    response = case.call(base_url=server.url, headers={"X-Api-Key": key}, timeout=10)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    case.validate_response(response, checks=[not_a_server_error])


def test_server_log_has_no_traceback(live: tuple[ServerProcess, str]) -> None:
    server, _ = live
    log = Path(server.log).read_text()
    assert "Traceback" not in log, log[-3000:]
