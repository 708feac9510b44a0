"""Gmail provider against the local fake: real google-auth, real httpx, real sockets."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from js2mail.errors import ProviderError
from js2mail.providers.base import OutgoingMessage
from js2mail.providers.gmail import (
    GMAIL_MAX_MESSAGE_BYTES,
    GMAIL_UPLOAD_THRESHOLD,
    GmailProvider,
    build_gmail_send,
    classify_gmail_response,
    next_pacific_midnight,
)
from js2mail.retry import parse_retry_after
from tests.support.fake_google import FakeGoogle, google_error


def make_provider(google: FakeGoogle, **kw: object) -> GmailProvider:
    config = google.config
    return GmailProvider(
        address="shop@example.com",
        client_id=google.client_id,
        client_secret=google.client_secret,
        refresh_token=str(kw.pop("refresh_token", None) or google.issue_refresh_token()),
        token_uri=config.token_uri,
        api_base=config.api_base,
        **kw,
    )  # type: ignore[arg-type]


def outgoing(body: str = "Your order shipped.\n", attachment: bytes | None = None) -> OutgoingMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <shop@example.com>"
    msg["To"] = "bob@example.org"
    msg["Bcc"] = "audit@example.net"
    msg["Subject"] = "Order #123 – shipped"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="big.bin")
    return OutgoingMessage("msg_1", "shop@example.com", ("bob@example.org", "audit@example.net"), msg)


def body(payload: dict[str, object]) -> bytes:
    return json.dumps(payload).encode()


async def test_send_delivers_the_mime_including_bcc(google: FakeGoogle) -> None:
    provider = make_provider(google)
    result = await provider.send(outgoing())
    await provider.close()
    sent = google.sent[-1]
    assert sent.via == "json"
    assert sent.email["From"] == "Shop <shop@example.com>"
    assert sent.email["To"] == "bob@example.org"
    assert sent.email["Bcc"] == "audit@example.net"  # Gmail reads and strips it itself
    assert sent.email["Subject"] == "Order #123 – shipped"
    assert sent.email.get_content() == "Your order shipped.\n"
    assert result.provider_message_id and result.response == f"200 OK id={result.provider_message_id}"


async def test_access_token_is_reused_while_fresh(google: FakeGoogle) -> None:
    provider = make_provider(google)
    await provider.send(outgoing())
    await provider.send(outgoing())
    await provider.close()
    grants = google.refresh_grants()
    assert len(grants) == 1
    assert grants[0]["scope"] == "https://www.googleapis.com/auth/gmail.send"
    assert len({s.access_token for s in google.sent}) == 1


async def test_token_near_expiry_is_refreshed_before_sending(google: FakeGoogle) -> None:
    google.expires_in = 60  # inside google-auth's 3m45s refresh margin
    provider = make_provider(google)
    await provider.send(outgoing())
    await provider.send(outgoing())
    await provider.close()
    assert len(google.refresh_grants()) == 2
    assert google.sent[0].access_token != google.sent[1].access_token


async def test_large_message_goes_through_the_upload_endpoint(google: FakeGoogle) -> None:
    blob = bytes(range(256)) * (6 * 1024 * 1024 // 256)
    provider = make_provider(google)
    await provider.send(outgoing(attachment=blob))
    await provider.close()
    sent = google.sent[-1]
    assert sent.via == "upload"
    assert len(sent.raw) > GMAIL_UPLOAD_THRESHOLD
    attachment = next(sent.email.iter_attachments())
    assert attachment.get_filename() == "big.bin" and attachment.get_content() == blob
    assert sent.email["Bcc"] == "audit@example.net"


async def test_message_over_35_mib_is_refused_without_a_request(google: FakeGoogle) -> None:
    provider = make_provider(google)
    before = len(google.requests)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing(attachment=b"\0" * (GMAIL_MAX_MESSAGE_BYTES * 3 // 4)))
    await provider.close()
    assert info.value.code == "message_too_large" and not info.value.retryable
    assert len(google.requests) == before


async def test_401_refreshes_once_and_retries(google: FakeGoogle) -> None:
    provider = make_provider(google)
    await provider.send(outgoing())
    google.invalidate_access_tokens()  # revoked server-side while the client still trusts its expiry
    await provider.send(outgoing())
    await provider.close()
    assert len(google.sent) == 2 and len(google.refresh_grants()) == 2


async def test_401_after_a_fresh_token_is_permanent(google: FakeGoogle) -> None:
    google.fail_next_send(401, reason="authError", times=2)
    provider = make_provider(google)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.code == "unauthorized" and not info.value.retryable and not info.value.needs_reconnect
    assert len(google.refresh_grants()) == 2 and google.sent == []


async def test_429_is_retryable_and_carries_retry_after(google: FakeGoogle) -> None:
    google.fail_next_send(429, reason="rateLimitExceeded", retry_after="7")
    provider = make_provider(google)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.retryable and info.value.retry_after == 7.0 and info.value.code == "rate_limited"


async def test_403_rate_limit_is_retryable(google: FakeGoogle) -> None:
    google.fail_next_send(403, reason="userRateLimitExceeded", domain="usageLimits")
    provider = make_provider(google)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.retryable and info.value.defer_until is None


async def test_403_daily_limit_defers_to_the_next_window(google: FakeGoogle) -> None:
    google.fail_next_send(403, reason="dailyLimitExceeded", domain="usageLimits")
    provider = make_provider(google, clock=lambda: 1_773_172_800.0)  # 2026-03-10T20:00Z = 13:00 PDT
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.code == "quota_exceeded" and info.value.retryable
    assert info.value.defer_until == datetime(2026, 3, 11, 7, 0, tzinfo=UTC).timestamp()


async def test_400_is_permanent(google: FakeGoogle) -> None:
    google.fail_next_send(400, reason="invalidArgument", message="Invalid To header")
    provider = make_provider(google)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert not info.value.retryable and "Invalid To header" in info.value.message


async def test_500_is_retryable(google: FakeGoogle) -> None:
    google.fail_next_send(503, reason="backendError", retry_after="2")
    provider = make_provider(google)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.retryable and info.value.retry_after == 2.0


async def test_revoked_grant_needs_reconnect_and_sends_nothing(google: FakeGoogle) -> None:
    refresh_token = google.issue_refresh_token()
    google.revoke(refresh_token)
    provider = make_provider(google, refresh_token=refresh_token)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.code == "grant_revoked"
    assert info.value.needs_reconnect and not info.value.retryable
    assert not any(r.path.endswith("/send") for r in google.requests)


async def test_unreachable_api_is_retryable(google: FakeGoogle) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    provider = GmailProvider(
        address="a@x",
        client_id=google.client_id,
        client_secret=google.client_secret,
        refresh_token=google.issue_refresh_token(),
        token_uri=google.config.token_uri,
        api_base=f"https://127.0.0.1:{dead}",
    )
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.retryable and info.value.code == "network_error"


# --- pure parts --------------------------------------------------------------------------------


def test_small_message_is_json_and_big_one_is_media_upload() -> None:
    small = build_gmail_send("https://gmail.example/", b"Subject: x\r\n\r\nhi\r\n")
    assert small.url == "https://gmail.example/gmail/v1/users/me/messages/send"
    assert json.loads(small.content) == {"raw": "U3ViamVjdDogeA0KDQpoaQ0K"}
    big = build_gmail_send("https://gmail.example", b"x" * (GMAIL_UPLOAD_THRESHOLD + 1))
    assert big.url == "https://gmail.example/upload/gmail/v1/users/me/messages/send?uploadType=media"
    assert big.headers["Content-Type"] == "message/rfc822" and len(big.content) == GMAIL_UPLOAD_THRESHOLD + 1


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now) == 90.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("99999999", now) == 86_400.0


def test_429_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    err = classify_gmail_response(
        429,
        body(google_error(429, "Too many", "rateLimitExceeded")),
        {"retry-after": "Thu, 01 Jan 2026 12:00:45 GMT"},
        now=now,
    )
    assert err.retryable and err.retry_after == 45.0


def test_mail_sending_limit_defers_to_the_time_gmail_names() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    message = "User-rate limit exceeded.  Retry after 2026-01-01T15:30:00.000Z (Mail sending)"
    err = classify_gmail_response(429, body(google_error(429, message, "rateLimitExceeded")), {}, now=now)
    assert err.code == "sending_limit" and err.retryable
    assert err.defer_until == datetime(2026, 1, 1, 15, 30, tzinfo=UTC).timestamp()


def test_quota_exceeded_in_error_info_shape_defers() -> None:
    payload = {
        "error": {
            "code": 403,
            "message": "Quota exceeded",
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA_EXCEEDED"}],
        }
    }
    now = datetime(2026, 1, 15, 9, 0, tzinfo=UTC).timestamp()  # 01:00 PST
    err = classify_gmail_response(403, body(payload), {}, now=now)
    assert (
        err.defer_until == next_pacific_midnight(now) == datetime(2026, 1, 16, 8, 0, tzinfo=UTC).timestamp()
    )


def test_missing_scope_needs_reconnect_and_other_4xx_are_permanent() -> None:
    scope = classify_gmail_response(
        403, body(google_error(403, "Insufficient Permission", "insufficientPermissions")), {}, now=0
    )
    assert scope.needs_reconnect and not scope.retryable
    for status in (403, 404, 409):
        err = classify_gmail_response(status, body(google_error(status, "nope", "forbidden")), {}, now=0)
        assert not err.retryable and not err.needs_reconnect and err.defer_until is None
    assert classify_gmail_response(408, b"", {}, now=0).retryable
    assert classify_gmail_response(502, b"<html>Bad Gateway</html>", {}, now=0).retryable
