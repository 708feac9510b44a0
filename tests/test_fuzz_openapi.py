"""A fuzz pass over the OpenAPI document: schemathesis generates requests for every operation
(valid and invalid shapes), and whatever it sends, the answer is never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

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


def operations(server: ServerProcess) -> list[schemathesis.APIOperation]:  # type: ignore[name-defined]
    schema = schemathesis.openapi.from_url(server.url + "/schema/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_input_produces_a_server_error(live: tuple[ServerProcess, str]) -> None:
    server, key = live
    ops = operations(server)
    assert {op.path for op in ops} >= {"/v1/send", "/v1/messages", "/v1/messages/{message_id}", "/v1/forms",
                                       "/f/{public_id}"}
    sent: list[int] = []
    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, headers={"X-Api-Key": key}, timeout=10)
            sent.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                                 response.text[:300])

        fuzz()
    assert len(sent) >= 10 * len(ops)
    assert any(400 <= code < 500 for code in sent) and any(code < 300 for code in sent)


def test_server_log_has_no_traceback(live: tuple[ServerProcess, str]) -> None:
    server, _ = live
    log = Path(server.log).read_text()
    assert "Traceback" not in log, log[-3000:]
