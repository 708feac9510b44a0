from __future__ import annotations

import json

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from js2mail.webhooks import WebhookVerificationError, event_body, new_secret, sign_header, verify

VECTOR_BODY = b'{"id":"evt_1"}'
VECTOR = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"


def test_published_vector() -> None:
    assert sign_header(VECTOR_BODY, ["whsec_test_secret"], 1700000000) == f"t=1700000000,v1={VECTOR}"
    assert verify(VECTOR_BODY, f"t=1700000000,v1={VECTOR}", "whsec_test_secret", now=1700000000)


def test_stripe_verifies_what_we_sign_including_rotation() -> None:
    body = event_body(event_id="evt_x", type="mail.sent", created_at=1700000000, data={"messageId": "msg_1"})
    old, new = new_secret(), new_secret()
    header = sign_header(body, [new, old], 1700000000)
    assert " " not in header and header.count("v1=") == 2
    for secret in (old, new):
        assert stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=None)
        assert verify(body, header, secret, now=1700000000)


def test_reserialized_body_fails() -> None:
    body = event_body(event_id="evt_x", type="mail.sent", created_at=0, data={"a": 1})
    header = sign_header(body, ["whsec_s"], 100)
    spaced = json.dumps(json.loads(body)).encode()
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(spaced, header, "whsec_s", now=100)


def test_timestamps_more_than_five_minutes_off_either_way_are_rejected() -> None:
    header = sign_header(b"{}", ["whsec_s"], 1_000_000)
    assert verify(b"{}", header, "whsec_s", now=1_000_300)  # 5 minutes old: still fine
    assert verify(b"{}", header, "whsec_s", now=999_700)  # 5 minutes ahead: still fine
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(b"{}", header, "whsec_s", now=1_000_301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify(b"{}", header, "whsec_s", now=999_699)


def test_wrong_secret_and_tamper() -> None:
    header = sign_header(b'{"a":1}', ["whsec_right"], 5)
    with pytest.raises(WebhookVerificationError):
        verify(b'{"a":1}', header, "whsec_wrong", now=5)
    with pytest.raises(WebhookVerificationError):
        verify(b'{"a":2}', header, "whsec_right", now=5)
    assert verify('{"a":1}', header, "whsec_right", now=5)  # str bodies are the same bytes


@pytest.mark.parametrize("header", ["", "v1=abc", "t=12", "t=x,v1=abc", "garbage", "t=1,v0=abc", "t= 1,v1=ab"])
def test_malformed_headers(header: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(b"{}", header, "whsec_s", now=1)


@given(st.text(max_size=200))
def test_arbitrary_headers_never_raise_anything_else(header: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(b"{}", header, "whsec_s", now=1)


@given(st.binary(max_size=300), st.text(min_size=1, max_size=40), st.integers(0, 2**40))
def test_round_trip(body: bytes, secret: str, t: int) -> None:
    assert verify(body, sign_header(body, [secret], t), secret, now=t)
