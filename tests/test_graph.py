"""Microsoft Graph provider against the local fake: real MSAL, real httpx, real TLS."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage

import pytest

from js2mail.errors import ProviderError
from js2mail.providers.base import OutgoingMessage
from js2mail.providers.graph import (
    GRAPH_MAX_MESSAGE_BYTES,
    GRAPH_MAX_REQUEST_BYTES,
    GraphProvider,
    build_graph_send,
    classify_graph_response,
    classify_msal_result,
)
from tests.support.fake_google import ca_file
from tests.support.fake_microsoft import FakeMicrosoft, graph_error


class Saved:
    """Stands in for the store: keeps every cache blob the provider hands over."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []

    async def __call__(self, blob: bytes) -> None:
        self.blobs.append(blob)

    def refresh_tokens(self, index: int = -1) -> set[str]:
        cache = json.loads(self.blobs[index])
        return {entry["secret"] for entry in cache.get("RefreshToken", {}).values()}


def make_provider(ms: FakeMicrosoft, saved: Saved, cache: bytes | None = None, **kw: object) -> GraphProvider:
    return GraphProvider(
        address=ms.username,
        client_id=ms.client_id,
        authority=ms.authority(),
        cache=ms.seed_cache() if cache is None else cache,
        on_cache_change=saved,
        graph_base=ms.config.graph_base,
        **kw,
    )  # type: ignore[arg-type]


def outgoing(attachment: bytes | None = None) -> OutgoingMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@contoso.example>"
    msg["To"] = "bob@example.org"
    msg["Bcc"] = "audit@example.net"
    msg["Subject"] = "Quarterly report"
    msg.set_content("See attached.\n")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="report.pdf")
    return OutgoingMessage("msg_2", "alice@contoso.example", ("bob@example.org", "audit@example.net"), msg)


async def test_send_uses_the_mime_form_and_keeps_headers(ms: FakeMicrosoft) -> None:
    saved = Saved()
    provider = make_provider(ms, saved)
    result = await provider.send(outgoing(attachment=b"%PDF-1.4 fake"))
    await provider.close()
    sent = ms.sent[-1]
    assert sent.email["From"] == "Alice <alice@contoso.example>"
    assert sent.email["To"] == "bob@example.org" and sent.email["Bcc"] == "audit@example.net"
    assert sent.email["Subject"] == "Quarterly report"
    assert next(sent.email.iter_attachments()).get_content() == b"%PDF-1.4 fake"
    assert result.response == "202 Accepted"
    assert saved.blobs == []  # a cached, valid token changes nothing worth saving


async def test_rotated_refresh_token_is_handed_to_the_store(ms: FakeMicrosoft) -> None:
    ms.access_token_lifetime = 60  # MSAL refreshes tokens with under 5 minutes left
    saved = Saved()
    provider = make_provider(ms, saved)
    seeded = ms.latest_refresh_token
    await provider.send(outgoing())
    first = ms.latest_refresh_token
    await provider.send(outgoing())
    await provider.close()
    assert first != seeded and len(ms.refresh_grants()) == 2
    assert len(saved.blobs) == 2
    assert saved.refresh_tokens(0) == {first}
    assert saved.refresh_tokens(1) == {ms.latest_refresh_token}


async def test_401_forces_a_refresh_and_one_retry(ms: FakeMicrosoft) -> None:
    saved = Saved()
    provider = make_provider(ms, saved)
    ms.invalidate_access_tokens()
    await provider.send(outgoing())
    await provider.close()
    assert len(ms.sent) == 1 and len(ms.refresh_grants()) == 1
    assert saved.refresh_tokens() == {ms.latest_refresh_token}


async def test_429_is_retryable_with_retry_after(ms: FakeMicrosoft) -> None:
    ms.fail_next_send(429, code="ApplicationThrottled", retry_after="3")
    provider = make_provider(ms, Saved())
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.retryable and info.value.retry_after == 3.0 and info.value.code == "rate_limited"


async def test_too_large_message_is_refused_before_any_request(ms: FakeMicrosoft) -> None:
    provider = make_provider(ms, Saved())
    before = len(ms.requests)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing(attachment=b"\1" * (GRAPH_MAX_MESSAGE_BYTES * 3 // 4 + 1000)))
    await provider.close()
    assert info.value.code == "message_too_large" and not info.value.retryable
    assert "Mail.ReadWrite" in info.value.message
    assert len(ms.requests) == before


async def test_largest_allowed_message_fits_graphs_request_cap(ms: FakeMicrosoft) -> None:
    msg = outgoing(attachment=b"\1" * 2_100_000)
    assert len(msg.email.as_bytes()) <= GRAPH_MAX_MESSAGE_BYTES
    provider = make_provider(ms, Saved())
    await provider.send(msg)
    await provider.close()
    assert len(ms.sent) == 1


async def test_revoked_grant_needs_reconnect(ms: FakeMicrosoft) -> None:
    ms.access_token_lifetime = 60
    cache = ms.seed_cache()
    ms.revoke_all()
    provider = make_provider(ms, Saved(), cache=cache)
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.code == "grant_revoked" and info.value.needs_reconnect and not info.value.retryable
    assert ms.sent == []


async def test_401_then_revoked_grant_needs_reconnect(ms: FakeMicrosoft) -> None:
    provider = make_provider(ms, Saved())
    ms.invalidate_access_tokens()
    ms.revoke_all()
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.needs_reconnect and info.value.code == "grant_revoked"


async def test_empty_cache_needs_reconnect(ms: FakeMicrosoft) -> None:
    provider = make_provider(ms, Saved(), cache=b"")
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    await provider.close()
    assert info.value.needs_reconnect


async def test_given_msal_http_client_is_used_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeMicrosoft(access_token_lifetime=60) as ms:
        cache = ms.seed_cache()
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        import httpx

        async with httpx.AsyncClient(verify=ca_file()) as http:
            provider = make_provider(
                ms, Saved(), cache=cache, http=http, msal_http_client=ms.requests_session()
            )
            await provider.send(outgoing())
            await provider.close()
            assert not http.is_closed  # a client handed in stays the caller's
        assert len(ms.sent) == 1 and len(ms.refresh_grants()) == 1


async def test_failed_cache_save_is_retryable_and_retried(ms: FakeMicrosoft) -> None:
    ms.access_token_lifetime = 60
    calls: list[bytes] = []

    async def flaky(blob: bytes) -> None:
        calls.append(blob)
        if len(calls) == 1:
            raise OSError("database is locked")

    provider = GraphProvider(
        address=ms.username,
        client_id=ms.client_id,
        authority=ms.authority(),
        cache=ms.seed_cache(),
        on_cache_change=flaky,
        graph_base=ms.config.graph_base,
    )
    with pytest.raises(ProviderError) as info:
        await provider.send(outgoing())
    assert info.value.code == "token_cache_save_failed" and info.value.retryable
    await provider.send(outgoing())
    await provider.close()
    assert len(calls) == 2


# --- pure parts --------------------------------------------------------------------------------


def test_request_is_base64_mime_as_text_plain() -> None:
    req = build_graph_send("https://graph.example/v1.0/", b"Subject: x\r\n\r\nhi\r\n")
    assert req.url == "https://graph.example/v1.0/me/sendMail"
    assert req.headers == {"Content-Type": "text/plain"}
    assert base64.b64decode(req.content, validate=True) == b"Subject: x\r\n\r\nhi\r\n"
    assert GRAPH_MAX_MESSAGE_BYTES * 4 // 3 <= GRAPH_MAX_REQUEST_BYTES


def test_error_classes() -> None:
    def err(status: int, code: str, headers: dict[str, str] | None = None) -> ProviderError:
        payload = json.dumps(graph_error(code, "m")).encode()
        return classify_graph_response(status, payload, headers or {}, now=1000.0)

    assert not err(400, "ErrorInvalidRecipients").retryable
    assert not err(403, "ErrorSendAsDenied").retryable
    assert err(413, "RequestBodyTooLarge").code == "message_too_large"
    assert err(503, "ServiceUnavailable", {"Retry-After": "10"}).retry_after == 10.0
    assert err(504, "GatewayTimeout").retryable
    quota = err(429, "ErrorSubmissionQuotaExceeded")
    assert quota.code == "quota_exceeded" and quota.defer_until == 1000.0 + 3600
    assert err(401, "InvalidAuthenticationToken").code == "unauthorized"


def test_msal_errors() -> None:
    assert classify_msal_result(
        {"error": "invalid_grant", "error_description": "AADSTS50173"}
    ).needs_reconnect
    assert classify_msal_result({"error": "interaction_required"}).needs_reconnect
    assert classify_msal_result(None).needs_reconnect
    blip = classify_msal_result({"error": "temporarily_unavailable"})
    assert blip.retryable and not blip.needs_reconnect
