"""The OpenAPI document at /schema/openapi.json is the contract: schemathesis generates valid and
invalid requests for every operation and sends them to a real `serve` subprocess, and each answer
must conform — a documented status code, a documented content type, a body that matches the
documented schema (the error envelope, with its per-route codes), the documented headers
(`RateLimit`, `RateLimit-Policy`, `Retry-After`, `WWW-Authenticate`, `Location`) — and never a 5xx.
A stateful run follows the document's links: send → get → cancel, create form → get → delete.

Seeds are fixed (`derandomize`), so a failure reproduces."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from js2mail.http.contract import ROUTES
from tests.support.cli import run_cli
from tests.support.server import ServerProcess

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES = 100


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    home = tmp_path_factory.mktemp("contract") / "home"
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
def api_schema(live: tuple[ServerProcess, str]) -> Any:
    server, _ = live
    loaded = schemathesis.openapi.from_url(server.url + "/schema/openapi.json")
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return loaded


OPERATIONS = sorted(ROUTES)  # the contract's table: one test per documented operation


def run_cases(api_schema: Any, method: str, path: str, examples: int, check: Any) -> None:
    """Hypothesis over schemathesis's strategy for one operation (positive and negative cases)."""
    operation = api_schema[path][method.upper()]

    @given(case=operation.as_strategy())
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        check(case)

    run()


@pytest.fixture(scope="module")
def form_id(live: tuple[ServerProcess, str]) -> str:
    server, key = live
    created = httpx.post(server.url + "/v1/forms", json={"to": "owner@example.org", "name": "Contract"},
                         headers={"X-Api-Key": key}, timeout=10)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
def test_every_answer_is_documented(api_schema: Any, live: tuple[ServerProcess, str], form_id: str, method: str,
                                    path: str) -> None:
    server, key = live

    statuses: list[int] = []

    def check(case: schemathesis.Case) -> None:
        if path.startswith("/f/{public_id}"):  # a real form: the generated ids would all be 404s
            case.path_parameters = {"public_id": form_id}
        response = case.call_and_validate(base_url=server.url, headers={"X-Api-Key": key}, checks=CHECKS, timeout=10)
        statuses.append(response.status_code)

    run_cases(api_schema, method, path, EXAMPLES, check)
    assert statuses  # (operations without inputs have a single case)
    if (method, path) == ("post", "/f/{public_id}"):
        assert {200, 303} & set(statuses) and {400, 413, 415, 422} & set(statuses), statuses


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
def test_auth_and_methods_are_enforced(api_schema: Any, live: tuple[ServerProcess, str], method: str,
                                       path: str) -> None:
    """Secured operations refuse requests without a key (`ignored_auth`); undocumented methods
    answer 405 with `Allow` (`unsupported_method`); invalid input is refused."""
    server, key = live
    run_cases(api_schema, method, path, 5, lambda case: case.call_and_validate(
        base_url=server.url, headers={"X-Api-Key": key},
        checks=[*CHECKS, ignored_auth, unsupported_method, negative_data_rejection], timeout=10))


def test_links_send_get_cancel_and_form_create_get_delete(api_schema: Any, live: tuple[ServerProcess, str]) -> None:
    """Schemathesis follows the document's links; the linked calls reach real resources (2xx or
    the documented 409 for a message already past cancelling), never a 404 for an id just made."""
    server, key = live
    seen: list[tuple[str, str, int]] = []
    failures: list[str] = []

    class Contract(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": server.url, "headers": {"X-Api-Key": key}, "timeout": 10}

        def before_call(self, case: schemathesis.Case) -> None:
            # Deployment data no schema can know: the connected mailbox sends, a scheduled mail
            # stays cancellable. Half the roots keep the generated body.
            if case.method == "POST" and isinstance(case.body, dict) and len(seen) % 2 == 0:
                if case.operation.path == "/v1/send":
                    later = datetime.now(UTC) + timedelta(days=1)
                    case.body = {"to": "bob@example.org", "subject": "links", "text": "hi",
                                 "scheduledAt": later.isoformat(timespec="seconds")}
                    case.headers = {}
                elif case.operation.path == "/v1/forms":
                    case.body = {"to": "owner@example.org", "name": "links"}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            seen.append((case.method, case.operation.path, response.status_code))
            try:
                case.validate_response(response, checks=CHECKS, headers={"X-Api-Key": key})
            except Exception as exc:  # collected, not raised: a replay cannot reproduce the server's state
                failures.append(f"{case.method} {case.formatted_path} → {response.status_code}: {exc}")

    # The server's state moves on, so Hypothesis may find that a replayed prefix draws other steps
    # (its Flaky); schemathesis's own runner ends a stateful run there too. What was seen is checked.
    with contextlib.suppress(Flaky):
        Contract.run(settings=settings(max_examples=40, stateful_step_count=6, derandomize=True, deadline=None,
                                       database=None, phases=[Phase.generate],
                                       suppress_health_check=list(HealthCheck)))
    assert not failures, "\n\n".join(failures[:3])
    linked = {(m, p) for m, p, status in seen if status in (200, 409)}
    assert {("GET", "/v1/messages/{message_id}"), ("DELETE", "/v1/messages/{message_id}"),
            ("GET", "/v1/forms/{public_id}"), ("DELETE", "/v1/forms/{public_id}")} <= linked, sorted(set(seen), key=str)


def test_public_routes_declare_no_security_and_v1_routes_do(live: tuple[ServerProcess, str]) -> None:
    server, _ = live
    doc = httpx.get(server.url + "/schema/openapi.json", timeout=5).json()
    public = {(m, p) for p, item in doc["paths"].items() for m, op in item.items() if op.get("security") == []}
    assert public == {("get", "/healthz"), ("get", "/readyz"), ("post", "/f/{public_id}"),
                      ("options", "/f/{public_id}"), ("get", "/f/{public_id}/thanks")}
    assert doc["security"] == [{"ApiKey": []}, {"Bearer": []}]
    send = doc["paths"]["/v1/send"]["post"]
    assert {p["name"] for p in send["parameters"] if p["in"] == "header"} == {"Idempotency-Key"}
    assert set(send["responses"]) == {"202", "400", "401", "413", "415", "422", "429", "503"}
    for page in ("/schema", "/schema/scalar", "/schema/elements", "/schema/rapidoc"):  # they load the finished JSON
        html = httpx.get(server.url + page, timeout=5)
        assert html.status_code == 200 and "/schema/openapi.json" in html.text and '"paths"' not in html.text
    form = doc["paths"]["/f/{public_id}"]["post"]
    assert set(form["requestBody"]["content"]) == {"application/json", "application/x-www-form-urlencoded",
                                                   "multipart/form-data"}


def test_server_log_has_no_traceback(live: tuple[ServerProcess, str]) -> None:
    server, _ = live
    log = Path(server.log).read_text()
    assert "Traceback" not in log, log[-3000:]


# --- The one POST /v1/send: the front door answers it; the Litestar handler only carries its schema ---


@pytest.fixture
def in_process(home: Path) -> Iterator[tuple[Any, str, Any]]:
    from js2mail.clock import FakeClock
    from js2mail.config import load_settings
    from js2mail.http.app import create_app
    from js2mail.service import mailboxes, open_context

    ctx = open_context(load_settings(home), clock=FakeClock(1_800_000_000.0))
    mailboxes.add_smtp(ctx, workspace="acme", address="shop@example.com", host="127.0.0.1", port=9,
                       username=None, password=None, security="none", app="shop")
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    try:
        yield create_app(ctx, start_background=False), key, ctx
    finally:
        ctx.close()


MAIL = {"to": "bob@example.org", "subject": "front door", "text": "hi"}
SPELLINGS = ["/v1/send", "/v1/send/", "/v1/send?x=1", "/v1/send/?to=x", "/v1//send", "/v1/send//"]
BODIES: list[dict[str, Any]] = [
    {"json": MAIL},
    {"content": b"{not json", "headers": {"content-type": "application/json"}},
    {"content": b"to=bob", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {"content": b""},
    {"json": {**MAIL, "unknown": 1}},
    {"json": MAIL, "headers": {"idempotency-key": "\x7f"}},
]


async def test_every_post_to_v1_send_is_answered_by_the_fast_path(in_process: tuple[Any, str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Both spellings, with or without a query, whatever the body: the front door's endpoint
    answers, and the Litestar carrier (which would answer 500) never runs."""
    from js2mail.http import routes, send_endpoint

    app, key, ctx = in_process
    handled: list[str] = []
    real_handle = send_endpoint.handle

    async def counting_handle(*args: Any) -> None:
        handled.append(args[2]["path"])
        await real_handle(*args)

    monkeypatch.setattr(send_endpoint, "handle", counting_handle)
    answers: list[int] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://js2mail.test") as client:
        for path in SPELLINGS:
            for body in BODIES:
                extra = body.get("headers", {})
                r = await client.post(path, **{k: v for k, v in body.items() if k != "headers"},
                                      headers={"X-Api-Key": key, **extra})
                answers.append(r.status_code)
                assert r.status_code < 500, (path, body, r.text)
                assert "error" in r.json() or r.status_code == 202
                assert r.headers.get("RateLimit") and r.headers.get("RateLimit-Policy"), (path, r.status_code, r.text)
        unauthenticated = await client.post("/v1/send/", json=MAIL)
    assert unauthenticated.status_code == 401 and len(handled) == len(SPELLINGS) * len(BODIES)
    assert {"/" + "/".join(s for s in p.split("/") if s) for p in handled} == {"/v1/send"}
    assert answers.count(202) == len(SPELLINGS)  # the valid mail, once per spelling
    queued = ctx.store.read(lambda conn: conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    assert queued == len(SPELLINGS)
    with pytest.raises(RuntimeError, match="front door"):
        await routes.send_mail.fn(data=None)  # the carrier, were it ever reached


def test_the_send_carrier_documents_what_the_fast_path_accepts() -> None:
    """The schema's fields are exactly the fields `js2mail.mail` validates: no drift."""
    import msgspec

    from js2mail import mail
    from js2mail.http import schemas

    documented = {f.encode_name for f in msgspec.structs.fields(schemas.SendRequest)}
    assert documented == mail.KNOWN_FIELDS
    assert schemas.SendRequest.__struct_config__.forbid_unknown_fields  # as the service refuses unknown fields


# --- What the document promises, spot-checked where a user would look ---


async def test_errors_from_every_edge_share_one_envelope(in_process: tuple[Any, str, Any]) -> None:
    app, key, _ = in_process
    auth = {"X-Api-Key": key}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://js2mail.test") as client:
        # unknown /v1 paths and wrong methods pass the gate like real routes
        for method, path in [("GET", "/v1/nope"), ("PUT", "/v1/messages/msg_x"), ("PATCH", "/v1/forms")]:
            anonymous = await client.request(method, path)
            assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
            assert anonymous.headers["RateLimit-Policy"] and anonymous.headers["WWW-Authenticate"] == "Bearer"
            known = await client.request(method, path, headers=auth)
            assert known.status_code in (404, 405) and known.headers["RateLimit"] and known.headers["RateLimit-Policy"]
            assert known.json() == {"error": {"code": "not_found" if known.status_code == 404 else "method_not_allowed",
                                              "message": known.json()["error"]["message"]}}
        assert (await client.put("/v1/messages/msg_x", headers=auth)).headers["Allow"] == "GET, OPTIONS, DELETE"
        # Litestar's own parameter validation speaks in the same `details` entries
        limit = await client.get("/v1/messages", params={"limit": 0}, headers=auth)
        assert limit.status_code == 422
        assert limit.json()["error"]["code"] == "validation_error"
        assert limit.json()["error"]["details"] == [{"field": "limit", "code": "invalid_value",
                                                     "message": "Expected `int` >= 1"}]
        # the API's `to`, not the CLI's `--to`
        bad_to = await client.post("/v1/forms", json={"to": "not an address"}, headers=auth)
        assert bad_to.status_code == 422
        error = bad_to.json()["error"]
        assert error["code"] == "invalid_address" and "--to" not in error["message"]
        assert error["message"].startswith("to: ")
        assert [(d["field"], d["code"]) for d in error["details"]] == [("to", "invalid_address")]


async def test_form_answers_say_what_they_are(in_process: tuple[Any, str, Any]) -> None:
    app, key, ctx = in_process
    auth = {"X-Api-Key": key}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://js2mail.test") as client:
        form = (await client.post("/v1/forms", json={"to": "owner@example.org"}, headers=auth)).json()
        posted = await client.post(f"/f/{form['id']}", data={"email": "v@example.net", "message": "hello"})
        assert posted.status_code == 303
        assert posted.headers["Location"] == f"{ctx.settings.public_url}/f/{form['id']}/thanks"
        assert posted.content == b"" and "json" not in posted.headers.get("content-type", "")
        assert (await client.get(f"/v1/forms/{form['id']}", headers=auth)).json()["status"] == "active"
        deleted = await client.delete(f"/v1/forms/{form['id']}", headers=auth)
        assert deleted.status_code == 200 and deleted.json()["status"] == "deleted" and deleted.json()["id"] == form["id"]
        gone = await client.post(f"/f/{form['id']}", json={"message": "hello"})
        assert gone.status_code == 404
        assert gone.json() == {"status": "error", "error": {"code": "form_not_found",
                                                            "message": "this form does not exist or is disabled"}}
        assert (await client.get(f"/v1/forms/{form['id']}", headers=auth)).status_code == 404


def test_finish_is_pure_and_refuses_routes_missing_from_the_table() -> None:
    import copy

    from js2mail.http.contract import finish

    litestar_like = {"openapi": "3.1.0", "paths": {p: {m: {"responses": {"200": {"description": "ok"}}}
                                                       for m, q in ROUTES if q == p} for _, p in ROUTES}}
    before = copy.deepcopy(litestar_like)
    finished = finish(litestar_like)
    assert litestar_like == before  # the input is not touched
    assert finished["paths"]["/v1/messages/{message_id}"]["delete"]["responses"]["409"]["content"][
        "application/json"]["schema"]["properties"]["error"]["properties"]["code"]["enum"] == ["not_cancellable"]
    with pytest.raises(LookupError, match="GET /v1/new"):
        finish({"paths": {**litestar_like["paths"], "/v1/new": {"get": {"responses": {}}}}})
    del litestar_like["paths"]["/healthz"]
    with pytest.raises(LookupError, match="healthz"):
        finish(litestar_like)
