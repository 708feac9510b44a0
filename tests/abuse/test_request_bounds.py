"""One authenticated request cannot freeze the server or make it answer with a response as large as
itself: over-long lists and objects are refused before their entries are looked at, a 422 lists at
most 20 problems, and what cannot be written on one SMTP line is refused at intake (issue #18)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from js2mail import mail
from js2mail.errors import ValidationError
from tests.support.cli import run_cli
from tests.support.server import ServerProcess
from tests.support.smtp_server import SmtpServer

USER, PASSWORD = "shop@example.com", "pw-request-bounds"


@pytest.fixture
def api(home: Path) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    with SmtpServer(tls="starttls", auth=(USER, PASSWORD)) as smtp:
        result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", USER,
                         "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "starttls",
                         "--tls-ca", str(smtp.ca_path), "--password-stdin", stdin=PASSWORD + "\n")
        assert result.code == 0, result.err
        key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
        with ServerProcess(home, env={"SSL_CERT_FILE": str(smtp.ca_path)}) as server, \
                httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=60) as client:
            yield server, client


def _healthz_gaps(url: str, stop: threading.Event, gaps: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=30) as probe:
        while not stop.is_set():
            started = time.monotonic()
            probe.get("/healthz")
            gaps.append(time.monotonic() - started)
            time.sleep(0.02)


def test_a_list_of_four_million_recipients_is_refused_without_stalling_healthz(
        api: tuple[ServerProcess, httpx.Client]) -> None:
    server, client = api
    body = msgspec.json.encode({"to": ["a@b.co"] * 4_000_000, "subject": "s", "text": "t"})
    assert len(body) > 30 * 1024 * 1024  # under the 40 MiB body cap, so it reaches validation
    stop, gaps = threading.Event(), []
    prober = threading.Thread(target=_healthz_gaps, args=(server.url, stop, gaps))
    prober.start()
    try:
        time.sleep(0.2)
        r = client.post("/v1/send", content=body, headers={"Content-Type": "application/json"})
    finally:
        stop.set()
        prober.join()
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["code"] == "too_many_recipients"
    assert len(r.content) < 2_000
    # on main the validation of every entry held the event loop for over a minute
    assert max(gaps) < 5, f"/healthz waited {max(gaps):.1f}s"


def test_a_million_unknown_fields_get_a_small_answer(api: tuple[ServerProcess, httpx.Client]) -> None:
    _, client = api
    payload = {f"k{i}": 1 for i in range(1_000_000)} | {"to": "x@example.org", "subject": "s", "text": "t"}
    r = client.post("/v1/send", content=msgspec.json.encode(payload), headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "too_many_fields"
    assert len(r.content) < 2_000


def test_details_are_capped_at_twenty_and_count_the_rest(api: tuple[ServerProcess, httpx.Client]) -> None:
    _, client = api
    r = client.post("/v1/send", json={"to": [f"bad{i}" for i in range(30)], "cc": [f"worse{i}" for i in range(20)],
                                      "subject": "s", "text": "t"})
    assert r.status_code == 422
    error = r.json()["error"]
    assert len(error["details"]) == 21
    assert error["details"][-1] == {"field": "", "code": "more_problems", "message": "30 more problems not listed"}
    assert "(and 49 more)" in error["message"]


def test_reply_to_is_bounded(api: tuple[ServerProcess, httpx.Client]) -> None:
    _, client = api
    r = client.post("/v1/send", json={"to": "x@example.org", "replyTo": [f"r{i}@example.org" for i in range(100_000)],
                                      "subject": "s", "text": "t"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["code"] == "too_many_addresses"


@pytest.mark.parametrize("name", ["Received", "received", "Resent-From", "Resent-Message-ID", "Authentication-Results",
                                  "DKIM-Signature", "ARC-Seal", "ARC-Message-Signature", "Delivered-To"])
def test_trace_and_authentication_headers_cannot_be_forged(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        mail.parse_send_request({"to": "x@example.org", "subject": "s", "text": "t", "headers": {name: "v"}})
    assert caught.value.details[0]["code"] == "trace_header"


@pytest.mark.parametrize(("payload", "code"), [
    ({"from": "A" * 1200 + " <shop@example.com>"}, "invalid_address"),
    ({"to": ["Bob" + "b" * 1000 + " <bob@example.org>"]}, "invalid_address"),
    ({"subject": "x" * 950}, "line_too_long"),
    ({"headers": {"X-Long": "y" * 990}}, "line_too_long"),
])
def test_what_cannot_fit_one_smtp_line_is_refused_at_intake(payload: dict[str, object], code: str) -> None:
    request = {"to": "x@example.org", "subject": "s", "text": "t"} | payload
    with pytest.raises(ValidationError) as caught:
        mail.parse_send_request(request)
    assert caught.value.details[0]["code"] == code


def test_long_values_that_can_be_folded_are_accepted() -> None:
    words = " ".join(["word"] * 190)  # 949 characters, folded onto several lines
    req = mail.parse_send_request({"to": f"{words[:290]} <x@example.org>", "subject": words, "text": "t",
                                   "headers": {"X-Long": words}})
    assert req.subject == words


@pytest.mark.parametrize("value", ["2099-01-01T00:00:00Z\x00junk", "2099-01-01T00:00:00Zjunk", "2099-01-01",
                                   "tomorrow", "2099-01-01T00:00:00+0000x", "٢٠٩٩-01-01T00:00:00Z"])
def test_scheduled_at_is_parsed_strictly(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        mail.parse_send_request({"to": "x@example.org", "subject": "s", "text": "t", "scheduledAt": value})
    assert caught.value.details[0]["code"] == "invalid_datetime"


def test_scheduled_at_may_not_be_further_ahead_than_the_horizon() -> None:
    now = 1_800_000_000.0
    ok = mail.parse_send_request({"to": "x@example.org", "subject": "s", "text": "t",
                                  "scheduledAt": "2027-02-14T07:59:59Z"}, now=now, max_schedule_ahead=30 * 86400)
    assert ok.scheduled_at is not None
    with pytest.raises(ValidationError) as caught:
        mail.parse_send_request({"to": "x@example.org", "subject": "s", "text": "t",
                                 "scheduledAt": "2027-02-14T08:00:01Z"}, now=now, max_schedule_ahead=30 * 86400)
    assert caught.value.details[0]["code"] == "scheduled_too_far"


def test_scheduled_at_horizon_over_http(api: tuple[ServerProcess, httpx.Client]) -> None:
    _, client = api
    r = client.post("/v1/send", json={"to": "x@example.org", "subject": "s", "text": "t",
                                      "scheduledAt": "2999-01-01T00:00:00Z"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["code"] == "scheduled_too_far"


@pytest.mark.parametrize("payload", [{"text": "a\ud800b"}, {"html": "<p>\udfff</p>"}, {"subject": "x\ud83d"},
                                     {"to": "Bob\udc00 <bob@example.org>"}])
def test_lone_surrogates_are_refused_at_intake(payload: dict[str, object]) -> None:
    """The stdlib JSON decoder (MCP, the CLI) lets them through; no mail can carry them."""
    with pytest.raises(ValidationError):
        mail.parse_send_request({"to": "x@example.org", "subject": "s", "text": "t"} | payload)
