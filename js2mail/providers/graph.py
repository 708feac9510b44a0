"""Microsoft Graph provider: sends the message's MIME through `POST /me/sendMail`.

Pure parts first (the request, the error classifier), then `GraphProvider`, which owns one httpx
client and one MSAL `PublicClientApplication` over the mailbox's serialized token cache. Entra
rotates refresh tokens on use, so every MSAL call that changes the cache hands the new
serialization to `on_cache_change` for the caller to encrypt and store (SPEC §9).

The MIME form (Content-Type text/plain, body = base64 of the RFC 5322 bytes) keeps our headers
and structure; Exchange reads To, Cc and Bcc from it. With only Mail.Send a Graph request may
carry about 4 MB, so bigger messages are refused before any HTTP call: upload sessions would
need Mail.ReadWrite, which we do not ask for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from js2mail.errors import ProviderError
from js2mail.mail import flatten
from js2mail.providers import registry
from js2mail.providers.base import OutgoingMessage, SendResult
from js2mail.providers.http import (
    DEFAULT_TIMEOUT,
    ApiRequest,
    PinnedCASession,
    header,
    httpx_verify,
    message_too_large,
    post,
)
from js2mail.retry import parse_retry_after

# Reserved scopes (offline_access, openid, profile) are added by MSAL, which refuses them here.
GRAPH_SCOPES = ["Mail.Send"]
# "4 MB" read conservatively as 4,000,000 bytes of request body, which is base64 (4/3 growth).
GRAPH_MAX_REQUEST_BYTES = 4_000_000
GRAPH_MAX_MESSAGE_BYTES = registry.MICROSOFT.max_message_bytes  # base64 of it fits GRAPH_MAX_REQUEST_BYTES
# Exchange does not say which window ErrorSubmissionQuotaExceeded belongs to.
SUBMISSION_QUOTA_DEFER = 3600.0
_DEAD_GRANT = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_scope"})
_QUOTA_CODES = frozenset({"errorsubmissionquotaexceeded"})
_TOO_LARGE_CODES = frozenset({"errormessagesizeexceeded", "requestbodytoolarge"})


# --- pure --------------------------------------------------------------------------------------


def build_graph_send(graph_base: str, raw: bytes) -> ApiRequest:
    return ApiRequest(
        "POST", graph_base.rstrip("/") + "/me/sendMail", {"Content-Type": "text/plain"}, base64.b64encode(raw)
    )


def _graph_error(body: bytes) -> tuple[str, str]:
    try:
        data = json.loads(body)
    except ValueError:
        return "", body[:200].decode("utf-8", "replace").strip()
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return "", ""
    return str(err.get("code") or ""), str(err.get("message") or "")


def classify_graph_response(
    status: int, body: bytes, headers: Mapping[str, str], *, now: float
) -> ProviderError:
    """Map a non-2xx Graph answer to a classified error; the caller has already retried one 401."""
    code, detail = _graph_error(body)
    text = (
        f"Microsoft Graph answered {status}"
        + (f" {code}" if code else "")
        + (f": {detail}" if detail else "")
    )
    retry_after = parse_retry_after(header(headers, "Retry-After"), now)
    if code.lower() in _QUOTA_CODES:
        return ProviderError(
            text,
            code="quota_exceeded",
            retryable=True,
            defer_until=now + (retry_after or SUBMISSION_QUOTA_DEFER),
        )
    if status == 429:
        return ProviderError(text, code="rate_limited", retryable=True, retry_after=retry_after)
    if status == 413 or code.lower() in _TOO_LARGE_CODES:
        return ProviderError(text, code="message_too_large", retryable=False)
    if status == 401:
        return ProviderError(text + " (even with a fresh access token)", code="unauthorized", retryable=False)
    if status == 408 or status >= 500:
        return ProviderError(text, code="provider_unavailable", retryable=True, retry_after=retry_after)
    return ProviderError(text, code="provider_rejected", retryable=False)


def classify_msal_result(result: Mapping[str, Any] | None) -> ProviderError:
    """An MSAL answer without an access token: dead grant, broken app registration, or a blip."""
    if not result:
        return ProviderError(
            "the token cache holds no usable sign-in for this mailbox",
            code="grant_revoked",
            retryable=False,
            needs_reconnect=True,
            hint="Reconnect with `js2mail mailboxes add microsoft`.",
        )
    error = str(result.get("error") or "")
    description = str(result.get("error_description") or "").splitlines()[0:1]
    text = f"Microsoft refused to refresh the access token: {error}" + (
        f": {description[0]}" if description else ""
    )
    if error in _DEAD_GRANT:
        return ProviderError(
            text,
            code="grant_revoked",
            retryable=False,
            needs_reconnect=True,
            hint="Reconnect with `js2mail mailboxes add microsoft`.",
        )
    if error in _CLIENT_ERRORS:
        return ProviderError(text, code="oauth_client_rejected", retryable=False, needs_reconnect=True)
    return ProviderError(text, code="token_refresh_failed", retryable=True)


# --- MSAL --------------------------------------------------------------------------------------


def _known_to_microsoft(authority: str) -> bool:
    return (urlsplit(authority).hostname or "").lower() in WELL_KNOWN_AUTHORITY_HOSTS


def build_msal_app(
    client_id: str, authority: str, cache: msal.SerializableTokenCache, http_client: object | None = None
) -> msal.PublicClientApplication:
    """A public-client app for `authority` ("{host}/{tenant}"); blocking (it fetches OIDC metadata).

    Instance discovery only knows Microsoft's own hosts, so it is switched off for any other
    authority (a sovereign cloud proxy, or the local fake in tests).
    """
    kwargs: dict[str, Any] = {"token_cache": cache, "http_client": http_client or PinnedCASession()}
    if not _known_to_microsoft(authority):
        kwargs["instance_discovery"] = False
    return msal.PublicClientApplication(client_id, authority=authority, **kwargs)


# --- I/O ---------------------------------------------------------------------------------------


class GraphProvider:
    """One Microsoft 365 / Outlook mailbox behind Graph, with its MSAL token cache."""

    kind = "microsoft"
    max_message_bytes = GRAPH_MAX_MESSAGE_BYTES

    def __init__(
        self,
        *,
        address: str,
        client_id: str,
        authority: str,
        cache: bytes,
        on_cache_change: Callable[[bytes], Awaitable[None]],
        graph_base: str,
        http: httpx.AsyncClient | None = None,
        msal_http_client: object | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.address = address
        self._client_id = client_id
        self._authority = authority
        self._cache = msal.SerializableTokenCache()
        self._cache.deserialize(cache.decode("utf-8") if cache else None)
        self._on_cache_change = on_cache_change
        self._graph_base = graph_base
        self._msal_http_client = msal_http_client
        self._app: msal.PublicClientApplication | None = None
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, verify=httpx_verify())
        self._lock = asyncio.Lock()
        self._now = clock

    async def send(self, message: OutgoingMessage) -> SendResult:
        raw = flatten(message.email)
        if len(raw) > self.max_message_bytes:
            raise message_too_large(
                len(raw),
                self.max_message_bytes,
                "Microsoft Graph",
                "4 MB per request after base64; larger sends would need Mail.ReadWrite upload sessions",
            )
        request = build_graph_send(self._graph_base, raw)
        token = await self._access_token()
        response = await post(self._http, request, token, "Microsoft Graph")
        if response.status_code == 401:
            token = await self._access_token(force_refresh=True)
            response = await post(self._http, request, token, "Microsoft Graph")
        if 200 <= response.status_code < 300:
            request_id = header(response.headers, "request-id")
            return SendResult(response=f"{response.status_code} Accepted", provider_message_id=request_id)
        raise classify_graph_response(
            response.status_code, response.content, response.headers, now=self._now()
        )

    async def _access_token(self, *, force_refresh: bool = False) -> str:
        """A token from MSAL's cache, refreshed by MSAL when near expiry or when forced.

        The lock serialises refreshes so two sends never race with the same rotating refresh
        token; MSAL is blocking (requests), so it runs in a worker thread.
        """
        async with self._lock:
            try:
                result = await asyncio.to_thread(self._acquire, force_refresh)
            finally:
                await self._save_cache()
            if result and isinstance(result.get("access_token"), str):
                return str(result["access_token"])
            raise classify_msal_result(result)

    def _acquire(self, force_refresh: bool) -> dict[str, Any] | None:
        try:
            if self._app is None:
                self._app = build_msal_app(
                    self._client_id, self._authority, self._cache, self._msal_http_client
                )
            accounts = self._app.get_accounts(username=self.address) or self._app.get_accounts()
            if not accounts:
                return None
            result: dict[str, Any] | None = self._app.acquire_token_silent_with_error(
                GRAPH_SCOPES, accounts[0], force_refresh=force_refresh
            )
            return result
        except Exception as exc:  # MSAL surfaces transport and discovery failures raw
            raise ProviderError(
                f"could not get a Microsoft access token: {exc!r}",
                code="token_refresh_failed",
                retryable=True,
            ) from exc

    async def _save_cache(self) -> None:
        if not self._cache.has_state_changed:
            return
        data = self._cache.serialize().encode("utf-8")  # resets has_state_changed
        try:
            await self._on_cache_change(data)
        except Exception as exc:
            # Keep the flag up so the next call saves again: losing a rotated refresh token
            # would strand the mailbox once the old one expires.
            self._cache.has_state_changed = True
            raise ProviderError(
                f"could not store the refreshed Microsoft token cache: {exc!r}",
                code="token_cache_save_failed",
                retryable=True,
            ) from exc

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()
        http_client = getattr(self._app, "http_client", None)
        close = getattr(http_client, "close", None)
        if self._msal_http_client is None and callable(close):
            close()


def from_parts(parts: registry.ProviderParts) -> GraphProvider:
    """The registry's factory: a Microsoft 365 mailbox from its sealed MSAL token cache, which the
    provider re-saves (through `parts.save_secret`) whenever MSAL rotates it."""
    microsoft = parts.config.providers.microsoft
    return GraphProvider(address=parts.address, client_id=parts.settings["client_id"],
                         authority=f"{microsoft.authority.rstrip('/')}/{parts.settings.get('tenant') or 'common'}",
                         cache=parts.secret or b"", on_cache_change=parts.save_secret, graph_base=microsoft.graph_base)
