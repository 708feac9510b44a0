"""HTTP plumbing the API providers share (Gmail, Microsoft Graph): request values built without
I/O, one CA choice for httpx and for the blocking OAuth libraries, the authorised POST, and the
errors every HTTP provider answers alike."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import requests

from js2mail.errors import ProviderError

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0)


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request, built without I/O so tests can assert on it and the I/O stays thin."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes


def ca_bundle_from_env() -> str | None:
    """The private CA file the operator asked us to trust, whichever HTTP stack is reading it.

    httpx reads only SSL_CERT_FILE and requests only REQUESTS_CA_BUNDLE; the contract promises
    both for every provider endpoint, so each client is configured from this one answer.
    """
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(var)
        if value:
            return value
    return None


def httpx_verify() -> ssl.SSLContext | bool:
    bundle = ca_bundle_from_env()
    return ssl.create_default_context(cafile=bundle) if bundle else True


class PinnedCASession(requests.Session):
    """A requests session for the blocking OAuth libraries that trusts the same CA as httpx.

    Plain requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE override `session.verify` on every
    call, so a stray CURL_CA_BUNDLE would hide the SSL_CERT_FILE the operator set; here the
    session's choice wins while proxies still come from the environment. `timeout` is a default
    for callers (MSAL) that pass none.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        super().__init__()
        self.verify = ca_bundle_from_env() or True
        self._default_timeout = timeout

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            settings["verify"] = self.verify
        return settings

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._default_timeout)
        return super().request(method, url, *args, **kwargs)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup, because callers pass httpx.Headers or a plain dict."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def message_too_large(size: int, limit: int, provider: str, why: str) -> ProviderError:
    return ProviderError(
        f"message is {size:,} bytes; {provider} accepts at most {limit:,} bytes of MIME ({why})",
        code="message_too_large",
        retryable=False,
    )


def network_error(exc: Exception, provider: str) -> ProviderError:
    """Transport failures are retryable; a send may have landed anyway, which SPEC §5 allows."""
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(f"{provider} timed out: {exc!r}", code="timeout", retryable=True)
    return ProviderError(f"could not reach {provider}: {exc!r}", code="network_error", retryable=True)


async def post(http: httpx.AsyncClient, request: ApiRequest, token: str, provider: str) -> httpx.Response:
    headers = {**request.headers, "Authorization": f"Bearer {token}"}
    try:
        return await http.request(request.method, request.url, headers=headers, content=request.content)
    except httpx.InvalidURL as exc:
        raise ProviderError(
            f"{provider} endpoint is not a valid URL: {exc}", code="config_error", retryable=False
        ) from exc
    except httpx.HTTPError as exc:
        raise network_error(exc, provider) from exc
