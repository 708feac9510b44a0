"""Gmail API provider: sends the message's RFC 5322 bytes through `users.messages.send`.

Pure parts first (which endpoint and body a message needs, what an error answer means), then the
thin `GmailProvider` that owns one httpx client and one google-auth credential and reuses both.
The HTTP plumbing it shares with the Microsoft provider lives in `providers/http.py`.

Gmail reads the recipients from the To, Cc and Bcc headers of `raw` and strips Bcc itself, so the
message goes up exactly as `js2mail.mail.flatten(OutgoingMessage.email)` renders it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import httpx

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

GMAIL_SCOPES = ["https://www.googleapis.com/auth/gmail.send"]
# The discovery document's mediaUpload.maxSize for messages.send: 35 MiB of MIME.
GMAIL_MAX_MESSAGE_BYTES = registry.GMAIL.max_message_bytes
# Google's upload guide: a plain request up to about 5 MB; beyond that the upload endpoint.
GMAIL_UPLOAD_THRESHOLD = 5 * 1024 * 1024
GMAIL_SEND_PATH = "/gmail/v1/users/me/messages/send"
GMAIL_UPLOAD_PATH = "/upload/gmail/v1/users/me/messages/send"
# A provider's Retry-After is honoured up to a day; a larger value is more likely a bug than a plan.

_RATE_REASONS = frozenset({"ratelimitexceeded", "userratelimitexceeded"})
_QUOTA_REASONS = frozenset({"dailylimitexceeded", "quotaexceeded", "dailylimitexceededunreg"})
_SCOPE_REASONS = frozenset({"insufficientpermissions", "accesstokenscopeinsufficient"})
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client", "deleted_client", "invalid_scope"})
# Gmail's sending-limit 429 names the moment the window reopens inside its message.
_RETRY_AT = re.compile(r"Retry after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)")
_PACIFIC = "America/Los_Angeles"


# --- Gmail: pure -------------------------------------------------------------------------------


def build_gmail_send(api_base: str, raw: bytes) -> ApiRequest:
    """JSON `{"raw": base64url}` for ordinary mail; the media upload endpoint for big mail.

    The upload endpoint takes the bytes as they are, which spares the 4/3 base64 growth that would
    push a 30 MB message past what the metadata endpoint accepts.
    """
    base = api_base.rstrip("/")
    if len(raw) <= GMAIL_UPLOAD_THRESHOLD:
        body = json.dumps({"raw": base64.urlsafe_b64encode(raw).decode("ascii")}).encode("ascii")
        return ApiRequest("POST", base + GMAIL_SEND_PATH, {"Content-Type": "application/json"}, body)
    return ApiRequest(
        "POST", base + GMAIL_UPLOAD_PATH + "?uploadType=media", {"Content-Type": "message/rfc822"}, raw
    )


def parse_gmail_success(status: int, body: bytes) -> SendResult:
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    message_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(message_id, str):
        return SendResult(response=f"{status} OK")
    return SendResult(response=f"{status} OK id={message_id}", provider_message_id=message_id)


def _norm(reason: str) -> str:
    return reason.replace("_", "").lower()


def _google_error(body: bytes) -> tuple[set[str], str]:
    """Reasons (normalised) and message from Google's JSON error, in either of its two shapes."""
    try:
        data = json.loads(body)
    except ValueError:
        return set(), body[:200].decode("utf-8", "replace").strip()
    if not isinstance(data, dict):
        return set(), ""
    err = data.get("error")
    if isinstance(err, str):  # OAuth shape: {"error": "invalid_grant", "error_description": ...}
        return {_norm(err)}, str(data.get("error_description") or err)
    if not isinstance(err, dict):
        return set(), ""
    reasons: set[str] = set()
    for key in ("errors", "details"):  # legacy errors[].reason; google.rpc.ErrorInfo details[].reason
        items = err.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("reason"), str):
                reasons.add(_norm(item["reason"]))
    return reasons, str(err.get("message") or err.get("status") or "")


def next_pacific_midnight(now: float) -> float:
    """When Google's per-day API quotas reset: midnight in Mountain View.

    Without a tz database we use UTC-8, which lands on or after the real reset in both PST and PDT,
    so a deferral is never too early.
    """
    try:
        tz: ZoneInfo | timezone = ZoneInfo(_PACIFIC)
    except ZoneInfoNotFoundError:
        tz = timezone(timedelta(hours=-8))
    local = datetime.fromtimestamp(now, tz)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


def _retry_at(message: str, now: float) -> float | None:
    match = _RETRY_AT.search(message)
    if not match:
        return None
    when = datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()
    return when if when > now else None


def classify_gmail_response(
    status: int, body: bytes, headers: Mapping[str, str], *, now: float
) -> ProviderError:
    """Map a non-2xx Gmail answer to a classified error; the caller has already retried one 401.

    dailyLimitExceeded/quotaExceeded are per-day API quotas, so they defer to the next Pacific
    midnight; Gmail's own sending limit (a 429 "(Mail sending)" naming "Retry after <time>")
    defers to that time. Both defer rather than fail, so the attempt is not counted.
    """
    reasons, detail = _google_error(body)
    text = f"Gmail API answered {status}" + (f": {detail}" if detail else "")
    retry_after = parse_retry_after(header(headers, "Retry-After"), now)
    if status == 429 or (status == 403 and reasons & _RATE_REASONS):
        until = _retry_at(detail, now)
        if until is not None:
            return ProviderError(text, code="sending_limit", retryable=True, defer_until=until)
        return ProviderError(text, code="rate_limited", retryable=True, retry_after=retry_after)
    if status == 403 and reasons & _QUOTA_REASONS:
        return ProviderError(
            text, code="quota_exceeded", retryable=True, defer_until=next_pacific_midnight(now)
        )
    if status == 403 and reasons & _SCOPE_REASONS:
        return ProviderError(
            text,
            code="insufficient_scope",
            retryable=False,
            needs_reconnect=True,
            hint="The grant lacks gmail.send; reconnect the mailbox and tick the permission to send mail.",
        )
    if status == 401:
        return ProviderError(text + " (even with a fresh access token)", code="unauthorized", retryable=False)
    if status == 413:
        return ProviderError(text, code="message_too_large", retryable=False)
    if status == 408 or status >= 500:
        return ProviderError(text, code="provider_unavailable", retryable=True, retry_after=retry_after)
    return ProviderError(text, code="provider_rejected", retryable=False)


def classify_google_refresh_error(exc: google.auth.exceptions.GoogleAuthError) -> ProviderError:
    """A refresh that cannot succeed later marks the mailbox instead of burning retries."""
    if isinstance(exc, google.auth.exceptions.TransportError):
        return ProviderError(
            f"could not reach Google's token endpoint: {exc}", code="network_error", retryable=True
        )
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
    error = data.get("error")
    if error == "invalid_grant":
        return ProviderError(
            f"Google refused the refresh token ({exc}); the grant was revoked or has expired",
            code="grant_revoked",
            retryable=False,
            needs_reconnect=True,
            hint="Reconnect with `js2mail mailboxes add gmail`. Grants of apps in 'Testing' status "
            "expire after 7 days; publish the OAuth consent screen to keep them.",
        )
    if getattr(exc, "retryable", False):
        return ProviderError(
            f"Google's token endpoint failed: {exc}", code="token_refresh_failed", retryable=True
        )
    code = "oauth_client_rejected" if error in _CLIENT_ERRORS else "token_refresh_failed"
    return ProviderError(
        f"Google refused to refresh the access token: {exc}", code=code, retryable=False, needs_reconnect=True
    )


# --- Gmail: I/O --------------------------------------------------------------------------------


class GmailProvider:
    """One Gmail mailbox: a reused httpx client plus a google-auth credential refreshed on demand."""

    kind = "gmail"
    max_message_bytes = GMAIL_MAX_MESSAGE_BYTES

    def __init__(
        self,
        *,
        address: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_uri: str,
        api_base: str,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.address = address
        self._api_base = api_base
        # Built directly: from_authorized_user_info() would silently reset token_uri to Google's.
        self._creds = google.oauth2.credentials.Credentials(
            token=None,
            refresh_token=refresh_token,
            token_uri=token_uri,
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(GMAIL_SCOPES),
        )
        self._session = PinnedCASession()
        self._auth_request = google.auth.transport.requests.Request(session=self._session)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, verify=httpx_verify())
        self._lock = asyncio.Lock()
        self._now = clock

    async def send(self, message: OutgoingMessage) -> SendResult:
        raw = flatten(message.email)
        if len(raw) > self.max_message_bytes:
            raise message_too_large(len(raw), self.max_message_bytes, "Gmail", "the API's 35 MiB cap")
        request = build_gmail_send(self._api_base, raw)
        token = await self._access_token()
        response = await post(self._http, request, token, "Gmail API")
        if response.status_code == 401:
            # The token can die before its expiry (password change, revoked session): refresh once.
            token = await self._access_token(stale=token)
            response = await post(self._http, request, token, "Gmail API")
        if 200 <= response.status_code < 300:
            return parse_gmail_success(response.status_code, response.content)
        raise classify_gmail_response(
            response.status_code, response.content, response.headers, now=self._now()
        )

    async def _access_token(self, *, stale: str | None = None) -> str:
        """The cached token, refreshed when near expiry or when `stale` was just refused.

        The lock keeps concurrent sends from refreshing at once; the refresh itself is blocking
        (requests), so it runs in a worker thread.
        """
        async with self._lock:
            creds = self._creds
            if not creds.valid or (stale is not None and creds.token == stale):
                try:
                    await asyncio.to_thread(creds.refresh, self._auth_request)
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise classify_google_refresh_error(exc) from exc
            token = creds.token
            if not isinstance(token, str):
                raise ProviderError(
                    "Google returned no access token", code="token_refresh_failed", retryable=True
                )
            return token

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()
        self._session.close()


def from_parts(parts: registry.ProviderParts) -> GmailProvider:
    """The registry's factory: a Gmail mailbox from its sealed grant (client id, secret, refresh token)."""
    grant = json.loads(parts.secret or b"{}")
    google = parts.config.providers.google
    return GmailProvider(address=parts.address, client_id=grant["client_id"], client_secret=grant["client_secret"],
                         refresh_token=grant["refresh_token"], token_uri=google.token_uri, api_base=google.api_base)
