"""A local fake of Microsoft Entra (v2.0 endpoints) and Graph `sendMail`, over HTTPS on 127.0.0.1.

MSAL insists on an https authority, so this fake always uses TLS with the shared trustme CA
(`fake_google.ca_file()`): set SSL_CERT_FILE / REQUESTS_CA_BUNDLE to it, or hand MSAL
`msal_http_client=ms.requests_session()`.

    with FakeMicrosoft() as ms:
        config = ms.config                         # MicrosoftConfig: authority host + graph_base
        cache = ms.seed_cache()                    # a signed-in token cache, without any flow
        ms.fail_next_send(429, retry_after="3")
        ms.revoke_all()                            # every refresh token -> invalid_grant
        ms.sent[-1].email["Bcc"]

Faithful where MSAL depends on it: OIDC discovery at {authority}/v2.0/.well-known/openid-
configuration, scopes echoed back as requested (minus offline_access) so MSAL's cache matches,
ID tokens with the nonce MSAL sent, client_info for the account key, refresh tokens that rotate
on every use, device codes that stay `authorization_pending` for `device_pending_polls` polls.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import secrets
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

import httpx
import msal
import requests

from js2mail.config import MicrosoftConfig
from tests.support.fake_google import (
    FakeIdentityProvider,
    Request,
    Response,
    ca_file,
    parse_email,
    pkce_challenge,
)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GRAPH_MAX_REQUEST = 4 * 1024 * 1024


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt(claims: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}."


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2026-01-01T00:00:00", "request-id": secrets.token_hex(8)},
        }
    }


@dataclass
class SentGraph:
    raw: bytes
    email: EmailMessage
    access_token: str


class FakeMicrosoft(FakeIdentityProvider):
    def __init__(
        self,
        *,
        client_id: str = "11111111-2222-3333-4444-555555555555",
        username: str = "alice@contoso.example",
        tenant_id: str = "9188040d-6c67-4c5b-b112-36a304b66dad",
        access_token_lifetime: int = 3600,
        device_pending_polls: int = 1,
        device_interval: int = 0,
    ) -> None:
        super().__init__(tls=True)
        self.client_id = client_id
        self.username = username
        self.tenant_id = tenant_id
        self.oid = "00000000-0000-0000-66f3-3332eca7ea81"
        self.access_token_lifetime = access_token_lifetime
        self.device_pending_polls = device_pending_polls
        self.device_interval = device_interval
        self.consent = "approve"  # or "deny"
        self.authorize_requests: list[dict[str, str]] = []
        self.refresh_tokens: dict[str, bool] = {}  # token -> still valid
        self.issued_refresh_tokens: list[str] = []
        self.sent: list[SentGraph] = []
        self._codes: dict[str, dict[str, str]] = {}
        self._devices: dict[str, dict[str, Any]] = {}

    # -- test controls

    @property
    def config(self) -> MicrosoftConfig:
        return MicrosoftConfig(authority=self.base_url, graph_base=f"{self.base_url}/v1.0")

    def env(self) -> dict[str, str]:
        """Environment for a `js2mail` subprocess (serve, mailboxes add) to use this fake."""
        return {
            "JS2MAIL_PROVIDERS_MICROSOFT_AUTHORITY": self.config.authority,
            "JS2MAIL_PROVIDERS_MICROSOFT_GRAPH_BASE": self.config.graph_base,
            "SSL_CERT_FILE": ca_file(),
            "REQUESTS_CA_BUNDLE": ca_file(),
        }

    def authority(self, tenant: str = "common") -> str:
        return f"{self.base_url}/{tenant}"

    @property
    def latest_refresh_token(self) -> str:
        return self.issued_refresh_tokens[-1]

    def requests_session(self) -> requests.Session:
        """An http_client for MSAL that trusts the test CA without touching the environment."""
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override verify
        session.verify = ca_file()
        return session

    def seed_cache(self, scopes: list[str] | None = None) -> bytes:
        """A serialized MSAL cache for a signed-in user, as `connect_microsoft` would have left it.

        Filled by MSAL itself (a device-code sign-in against this fake) so the format is real.
        """
        saved = self.device_pending_polls
        self.device_pending_polls = 0
        try:
            cache = msal.SerializableTokenCache()
            app = msal.PublicClientApplication(
                self.client_id,
                authority=self.authority(),
                token_cache=cache,
                http_client=self.requests_session(),
                instance_discovery=False,
            )
            flow = app.initiate_device_flow(scopes=scopes or ["Mail.Send"])
            result = app.acquire_token_by_device_flow(flow)
            assert "access_token" in result, result
            return cache.serialize().encode("utf-8")
        finally:
            self.device_pending_polls = saved

    def revoke_all(self) -> None:
        with self.lock:
            for token in self.refresh_tokens:
                self.refresh_tokens[token] = False

    def fail_next_send(
        self,
        status: int,
        *,
        code: str = "ErrorInternalServerError",
        message: str | None = None,
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._fail_next_sends(Response.json(status, graph_error(code, message or code), headers), times)

    # -- routing

    def handle(self, request: Request) -> Response:
        path = request.path
        if request.method == "POST" and path == "/v1.0/me/sendMail":
            return self._send(request)
        match = re.fullmatch(
            r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/(authorize|token|devicecode))",
            path,
        )
        if not match:
            return Response.json(404, graph_error("ResourceNotFound", f"no route {path}"))
        tenant, what = match.group(1), match.group(3) or "openid"
        if what == "openid" and request.method == "GET":
            return Response.json(200, self._openid(tenant))
        if what == "authorize" and request.method == "GET":
            return self._authorize(request)
        if what == "devicecode" and request.method == "POST":
            return self._devicecode(request)
        if what == "token" and request.method == "POST":
            return self._token(request)
        return Response.json(405, graph_error("MethodNotAllowed", path))

    def _openid(self, tenant: str) -> dict[str, Any]:
        base = f"{self.base_url}/{tenant}"
        return {
            "issuer": f"{self.base_url}/{self.tenant_id}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
        }

    def _authorize(self, request: Request) -> Response:
        q = request.query
        self.authorize_requests.append(q)
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or not redirect_uri.startswith("http://localhost"):
            return Response.html(400, "AADSTS50011: The redirect URI does not match.")
        if self.consent == "deny":
            fields = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent.",
                "state": q.get("state", ""),
            }
        else:
            code = "0.A" + secrets.token_urlsafe(24)
            self._codes[code] = {
                "challenge": q.get("code_challenge", ""),
                "method": q.get("code_challenge_method", ""),
                "redirect_uri": redirect_uri,
                "nonce": q.get("nonce", ""),
                "scope": q.get("scope", ""),
            }
            fields = {
                "code": code,
                "state": q.get("state", ""),
                "client_info": self._client_info(),
                "session_state": secrets.token_hex(8),
            }
        if q.get("response_mode") == "form_post":
            inputs = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
                for k, v in fields.items()
            )
            page = (
                f'<html><body onload="document.forms[0].submit()"><form method="POST" '
                f'action="{html.escape(redirect_uri)}">{inputs}</form></body></html>'
            )
            return Response.html(200, page)
        return Response(302, b"", {"Location": f"{redirect_uri}?{urlencode(fields)}"})

    def _devicecode(self, request: Request) -> Response:
        form = request.form()
        if form.get("client_id") != self.client_id:
            return Response.json(
                400,
                {"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found."},
            )
        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        self._devices[device_code] = {
            "user_code": user_code,
            "polls": 0,
            "scope": form.get("scope", ""),
            "state": "pending",
        }
        uri = f"{self.base_url}/devicelogin"
        return Response.json(
            200,
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": uri,
                "expires_in": 900,
                "interval": self.device_interval,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
                "to authenticate.",
            },
        )

    def approve_device(self, approve: bool = True) -> None:
        with self.lock:
            for device in self._devices.values():
                device["state"] = "approved" if approve else "declined"

    def _token(self, request: Request) -> Response:
        form = request.form()
        self.token_requests.append(form)
        if form.get("client_id") != self.client_id:
            return Response.json(400, {"error": "unauthorized_client", "error_description": "AADSTS700016"})
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            device = self._devices.get(form.get("device_code", ""))
            if device is None:
                return Response.json(400, {"error": "expired_token", "error_description": "AADSTS70020"})
            device["polls"] += 1
            if device["state"] == "declined":
                return Response.json(
                    400, {"error": "authorization_declined", "error_description": "AADSTS70000"}
                )
            if device["state"] == "pending" and device["polls"] <= self.device_pending_polls:
                return Response.json(
                    400,
                    {
                        "error": "authorization_pending",
                        "error_description": "AADSTS70016: OAuth 2.0 device flow error.",
                    },
                )
            del self._devices[form["device_code"]]
            return Response.json(200, self._tokens(device["scope"], nonce=None))
        if grant == "authorization_code":
            code = self._codes.pop(form.get("code", ""), None)
            if code is None:
                return Response.json(
                    400, {"error": "invalid_grant", "error_description": "AADSTS70008: expired code"}
                )
            if form.get("redirect_uri") != code["redirect_uri"]:
                return Response.json(
                    400, {"error": "invalid_grant", "error_description": "AADSTS70009: redirect_uri"}
                )
            verifier = form.get("code_verifier", "")
            if code["method"] != "S256" or pkce_challenge(verifier) != code["challenge"]:
                return Response.json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "AADSTS501481: The Code_Verifier does not match.",
                    },
                )
            return Response.json(200, self._tokens(code["scope"], nonce=code["nonce"] or None))
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            if not self.refresh_tokens.get(token):
                return Response.json(
                    400,
                    {
                        "error": "invalid_grant",
                        "suberror": "bad_token",
                        "error_codes": [50173],
                        "error_description": "AADSTS50173: The provided grant has expired due to it being revoked.",
                    },
                )
            return Response.json(200, self._tokens(form.get("scope", ""), nonce=None))
        return Response.json(400, {"error": "unsupported_grant_type", "error_description": str(grant)})

    def _client_info(self) -> str:
        return _b64url(json.dumps({"uid": self.oid, "utid": self.tenant_id}).encode())

    def _tokens(self, scope: str, *, nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        access = "eyJ0eXAi." + secrets.token_urlsafe(24)
        refresh = "0.AXo" + secrets.token_urlsafe(32)
        self.access_tokens[access] = now + self.access_token_lifetime
        self.refresh_tokens[refresh] = True
        self.issued_refresh_tokens.append(refresh)
        claims: dict[str, Any] = {
            "aud": self.client_id,
            "iss": f"{self.base_url}/{self.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": "Alice",
            "oid": self.oid,
            "preferred_username": self.username,
            "sub": "sub-" + self.oid,
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        granted = " ".join(s for s in scope.split() if s != "offline_access")
        return {
            "token_type": "Bearer",
            "scope": granted,
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": _jwt(claims),
            "client_info": self._client_info(),
        }

    def _send(self, request: Request) -> Response:
        token = request.bearer() or ""
        if self.access_tokens.get(token, 0) < time.time():
            return Response.json(
                401,
                graph_error("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
            )
        failure = self._next_send_failure()
        if failure is not None:
            return failure
        if len(request.body) > GRAPH_MAX_REQUEST:
            return Response.json(
                413, graph_error("RequestBodyTooLarge", "The maximum request length supported is 4MB.")
            )
        if not request.headers.get("content-type", "").startswith("text/plain"):
            return Response.json(415, graph_error("UnsupportedMediaType", "use the MIME form"))
        try:
            raw = base64.b64decode(request.body, validate=True)
        except (binascii.Error, ValueError):
            return Response.json(
                400,
                graph_error("ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."),
            )
        email = parse_email(raw)
        if not (email["To"] or email["Cc"] or email["Bcc"]):
            return Response.json(
                400, graph_error("ErrorInvalidRecipients", "At least one recipient is not valid.")
            )
        self.sent.append(SentGraph(raw, email, token))
        return Response(202, b"", {"request-id": secrets.token_hex(16)})


def submit_form_post(page: str) -> httpx.Response:
    """Do what the browser's onload script does with Entra's form_post page."""
    action = re.search(r'<form method="POST" action="([^"]+)"', page)
    assert action, page
    fields = {
        html.unescape(k): html.unescape(v)
        for k, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"/>', page)
    }
    return httpx.post(html.unescape(action.group(1)), data=fields, timeout=10)


def browse_form_post(auth_url: str) -> httpx.Response:
    """Play the browser through the interactive sign-in: GET the authorize URL, then submit the form."""
    page = httpx.get(auth_url, verify=ca_file(), timeout=10)
    assert page.status_code == 200, page.text
    return submit_form_post(page.text)
