"""`js2mail serve` as a subprocess, exercised over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.server import ServerProcess


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    (home / "config.toml").write_text("[rate_limit]\nrate = 1\nburst = 5\n")
    with ServerProcess(home) as proc:
        yield proc


def new_key(app: str = "shop") -> str:
    return run_cli("keys", "create", "-w", "acme", "-a", app).out.strip()


def test_health_ready_and_openapi(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    ready = httpx.get(server.url + "/readyz").json()
    assert ready == {"status": "ready", "scheduler": True}
    schema = httpx.get(server.url + "/schema/openapi.json").json()
    assert "/v1/send" in schema["paths"] and "/v1/messages" in schema["paths"]


def test_missing_malformed_unknown_and_revoked_keys_get_the_same_401(server: ServerProcess) -> None:
    key = new_key()
    revoked = new_key()
    assert run_cli("keys", "revoke", revoked.split("_")[2]).code == 0
    unknown = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    attempts = [{}, {"X-Api-Key": "nonsense"}, {"X-Api-Key": unknown}, {"X-Api-Key": revoked},
                {"Authorization": "Bearer " + revoked}, {"Authorization": "Basic " + key}]
    replies = [httpx.get(server.url + "/v1/messages", headers=h) for h in attempts]
    assert {r.status_code for r in replies} == {401}
    assert len({r.content for r in replies}) == 1
    assert replies[0].json()["error"]["code"] == "unauthorized"


def test_valid_key_by_either_header(server: ServerProcess) -> None:
    key = new_key()
    for headers in ({"X-Api-Key": key}, {"Authorization": f"Bearer {key}"}):
        r = httpx.get(server.url + "/v1/messages", headers=headers)
        assert r.status_code == 200
        assert r.json() == {"data": [], "nextCursor": None}
        assert r.headers["RateLimit-Policy"] == '"default";q=5;w=5'
        assert r.headers["RateLimit"].startswith('"default";r=')


def test_rotation_grace_keeps_the_old_key_working(server: ServerProcess) -> None:
    old = new_key()
    new = run_cli("keys", "rotate", old.split("_")[2], "--grace", "1h").out.strip()
    for key in (old, new):
        assert httpx.get(server.url + "/v1/messages", headers={"X-Api-Key": key}).status_code == 200
    run_cli("keys", "rotate", new.split("_")[2])
    assert httpx.get(server.url + "/v1/messages", headers={"X-Api-Key": new}).status_code == 401


def test_rate_limit_per_application_ignores_x_forwarded_for(server: ServerProcess) -> None:
    key, other = new_key("shop"), new_key("blog")
    codes = []
    with httpx.Client(base_url=server.url) as client:
        for i in range(8):
            r = client.get("/v1/messages", headers={"X-Api-Key": key, "X-Forwarded-For": f"10.0.0.{i}"})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                assert r.json()["error"]["code"] == "rate_limited"
        assert 429 in codes and codes[:4] == [200] * 4
        assert client.get("/v1/messages", headers={"X-Api-Key": other}).status_code == 200


def test_unknown_ids_and_bad_queries_are_4xx(server: ServerProcess) -> None:
    key = new_key()
    h = {"X-Api-Key": key}
    assert httpx.get(server.url + "/v1/messages/msg_nope", headers=h).status_code == 404
    assert httpx.get(server.url + "/v1/messages?limit=0", headers=h).status_code in (400, 422)
    assert httpx.get(server.url + "/v1/messages?cursor=%%%", headers=h).status_code == 400
    assert httpx.get(server.url + "/v1/messages?status=weird", headers=h).status_code == 422
