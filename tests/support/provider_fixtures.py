"""Fixtures for the provider tests (test_gmail, test_graph, test_oauth), loaded by conftest's
`pytest_plugins`: the fake Google and Microsoft servers, trusted through the test CA, each
checking on the way out that it saw no protocol error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_google import FakeGoogle, ca_file
from tests.support.fake_microsoft import FakeMicrosoft


@pytest.fixture
def trust_test_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_file())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file())


@pytest.fixture
def google(trust_test_ca: None) -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def ms(trust_test_ca: None) -> Iterator[FakeMicrosoft]:
    with FakeMicrosoft() as fake:
        yield fake
        assert fake.errors == []
