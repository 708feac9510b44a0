"""A local fake of Google's OAuth 2.0 and Gmail API endpoints, over real HTTP(S) on 127.0.0.1.

Also home of `FakeServer` (threaded HTTP(S) server routing to one `handle` method) and the shared
test CA, which `fake_microsoft` reuses.

    with FakeGoogle() as google:                       # HTTPS with a trustme cert
        monkeypatch.setenv("SSL_CERT_FILE", ca_file())  # and REQUESTS_CA_BUNDLE
        config = google.config                          # GoogleConfig pointing here
        google.write_client_secrets(tmp_path / "client.json")
        rt = google.issue_refresh_token()               # skip the browser flow
        google.fail_next_send(429, reason="rateLimitExceeded", retry_after="7")
        ... google.sent[-1].email["Subject"] ...

Wire behaviour kept faithful where the code under test depends on it: the token endpoint checks
the PKCE code_verifier against the challenge the auth endpoint saw, accepts client credentials
as HTTP Basic (oauthlib) or form fields (google-auth), answers `invalid_grant` for revoked
refresh tokens and never rotates them; Gmail checks the bearer token and decodes what it gets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import httpx
import trustme

from js2mail.config import GoogleConfig

# --- shared test PKI ---------------------------------------------------------------------------

_CA_LOCK = threading.Lock()
_CA: trustme.CA | None = None
_CA_FILE: str | None = None


def test_ca() -> trustme.CA:
    global _CA
    with _CA_LOCK:
        if _CA is None:
            _CA = trustme.CA()
        return _CA


def ca_file() -> str:
    """PEM file of the test CA: point SSL_CERT_FILE / REQUESTS_CA_BUNDLE (or verify=) here."""
    global _CA_FILE
    ca = test_ca()
    with _CA_LOCK:
        if _CA_FILE is None:
            with tempfile.NamedTemporaryFile(
                "wb", prefix="js2mail-test-ca-", suffix=".pem", delete=False
            ) as f:
                f.write(ca.cert_pem.bytes())
            _CA_FILE = f.name
        return _CA_FILE


def server_ssl_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca().issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


# --- generic server ----------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body)

    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode("utf-8").partition(":")
        return unquote_plus(user), unquote_plus(password)

    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def html(cls, status: int, text: str) -> Response:
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end by themselves
    server: _Server

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            split.path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        fake = self.server.fake
        try:
            with fake.lock:
                fake.requests.append(request)
                response = fake.handle(request)
        except Exception as exc:  # a bug in the fake: make it loud in the test, not a hang
            fake.errors.append(repr(exc))
            response = Response(500, repr(exc).encode(), {"Content-Type": "text/plain"})
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer
    ssl_context: ssl.SSLContext | None = None

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, addr = super().get_request()
        if self.ssl_context is not None:  # handshake later, in the handler thread
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class FakeServer:
    """A threaded HTTP(S) server on 127.0.0.1 that records requests and routes them to `handle`."""

    def __init__(self, *, tls: bool = True) -> None:
        self.tls = tls
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.errors: list[str] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def start(self) -> FakeServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        if self.tls:
            httpd.ssl_context = server_ssl_context()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the fake first"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


def parse_email(raw: bytes) -> EmailMessage:
    """As the provider reads it: CRLF (the RFC 5322 wire form) is a line break like LF."""
    message = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
    assert isinstance(message, EmailMessage)
    return message


def browse(url: str, *, follow: bool = True) -> httpx.Response:
    """Play the user's browser: GET `url` trusting the test CA, following redirects to loopback."""
    return httpx.get(url, verify=ca_file(), follow_redirects=follow, timeout=10)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


# --- Google ------------------------------------------------------------------------------------

GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(status: int, message: str, reason: str, domain: str = "global") -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": _STATUS.get(status, "UNKNOWN"),
        }
    }


class FakeIdentityProvider(FakeServer):
    """What the fake Google and Microsoft share: issued access tokens, the token requests seen,
    and queued failures for the next sends."""

    def __init__(self, *, tls: bool = True) -> None:
        super().__init__(tls=tls)
        self.token_requests: list[dict[str, str]] = []
        self.access_tokens: dict[str, float] = {}  # token -> expiry (unix)
        self._send_failures: deque[Response] = deque()

    def invalidate_access_tokens(self) -> None:
        """Server-side death of every access token (password change): the client still thinks they're fine."""
        with self.lock:
            self.access_tokens.clear()

    def refresh_grants(self) -> list[dict[str, str]]:
        return [r for r in self.token_requests if r.get("grant_type") == "refresh_token"]

    def _fail_next_sends(self, response: Response, times: int) -> None:
        with self.lock:
            self._send_failures.extend([response] * times)

    def _next_send_failure(self) -> Response | None:
        with self.lock:
            return self._send_failures.popleft() if self._send_failures else None


@dataclass
class SentGmail:
    via: str  # "json" or "upload"
    raw: bytes
    email: EmailMessage
    access_token: str


class FakeGoogle(FakeIdentityProvider):
    def __init__(
        self,
        *,
        tls: bool = True,
        client_id: str = "1234-fake.apps.googleusercontent.com",
        client_secret: str = "GOCSPX-fake-secret",
        expires_in: int = 3599,
    ) -> None:
        super().__init__(tls=tls)
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.consent = "approve"  # or "deny": the user clicks Cancel on the consent screen
        self.granted_scope: str | None = None  # what the user leaves ticked; None = what was asked
        self.auth_requests: list[dict[str, str]] = []
        self.refresh_tokens: dict[str, str] = {}  # token -> scope
        self.revoked: set[str] = set()
        self.sent: list[SentGmail] = []
        self._codes: dict[str, dict[str, str]] = {}

    # -- test controls

    @property
    def config(self) -> GoogleConfig:
        return GoogleConfig(
            token_uri=f"{self.base_url}/token",
            auth_uri=f"{self.base_url}/o/oauth2/auth",
            api_base=self.base_url,
        )

    def env(self) -> dict[str, str]:
        """Environment for a `js2mail` subprocess (serve, mailboxes add) to use this fake."""
        config = self.config
        return {
            "JS2MAIL_PROVIDERS_GOOGLE_TOKEN_URI": config.token_uri,
            "JS2MAIL_PROVIDERS_GOOGLE_AUTH_URI": config.auth_uri,
            "JS2MAIL_PROVIDERS_GOOGLE_API_BASE": config.api_base,
            "SSL_CERT_FILE": ca_file(),
            "REQUESTS_CA_BUNDLE": ca_file(),
        }

    def client_config(self, kind: str = "installed") -> dict[str, Any]:
        """Google's client-secrets JSON, as the Cloud console downloads it (endpoints are Google's)."""
        return {
            kind: {
                "client_id": self.client_id,
                "project_id": "js2mail-test",
                "client_secret": self.client_secret,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "redirect_uris": ["http://localhost"],
            }
        }

    def write_client_secrets(self, path: str | Path, kind: str = "installed") -> str:
        Path(path).write_text(json.dumps(self.client_config(kind)))
        return str(path)

    def issue_refresh_token(self, scope: str = GMAIL_SEND) -> str:
        with self.lock:
            token = "1//" + secrets.token_urlsafe(24)
            self.refresh_tokens[token] = scope
            return token

    def revoke(self, refresh_token: str | None = None) -> None:
        with self.lock:
            self.revoked.update([refresh_token] if refresh_token else list(self.refresh_tokens))

    def fail_next_send(
        self,
        status: int,
        *,
        reason: str = "backendError",
        message: str | None = None,
        retry_after: str | None = None,
        times: int = 1,
        domain: str = "global",
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._fail_next_sends(Response.json(status, google_error(status, message or reason, reason, domain), headers),
                              times)

    # -- routing

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/o/oauth2/auth":
            return self._authorize(request)
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        if request.method == "POST" and request.path == "/gmail/v1/users/me/messages/send":
            return self._send(request, "json")
        if request.method == "POST" and request.path == "/upload/gmail/v1/users/me/messages/send":
            return self._send(request, "upload")
        return Response.json(404, google_error(404, "Not Found", "notFound"))

    def _authorize(self, request: Request) -> Response:
        q = request.query
        self.auth_requests.append(q)
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or not redirect_uri.startswith(
            ("http://127.0.0.1:", "http://localhost:")
        ):
            return Response.html(400, "Error 400: invalid_request / redirect_uri_mismatch")
        if self.consent == "deny":
            params = {"error": "access_denied", "state": q.get("state", "")}
        else:
            code = "4/" + secrets.token_urlsafe(16)
            self._codes[code] = {
                "challenge": q.get("code_challenge", ""),
                "method": q.get("code_challenge_method", ""),
                "redirect_uri": redirect_uri,
                "scope": self.granted_scope or q.get("scope", ""),
            }
            params = {"state": q.get("state", ""), "code": code, "scope": self._codes[code]["scope"]}
        return Response(302, b"", {"Location": f"{redirect_uri}?{urlencode(params)}"})

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        creds = request.basic_auth() or (form.get("client_id", ""), form.get("client_secret", ""))
        return creds == (self.client_id, self.client_secret)

    def _token(self, request: Request) -> Response:
        form = request.form()
        self.token_requests.append(form)
        if not self._client_ok(request, form):
            return Response.json(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = self._codes.pop(form.get("code", ""), None)
            if code is None:
                return Response.json(
                    400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
                )
            if form.get("redirect_uri") != code["redirect_uri"]:
                return Response.json(
                    400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
                )
            verifier = form.get("code_verifier", "")
            if code["method"] != "S256" or not verifier or pkce_challenge(verifier) != code["challenge"]:
                return Response.json(
                    400, {"error": "invalid_grant", "error_description": "Invalid code verifier."}
                )
            refresh = self.issue_refresh_token(code["scope"])
            return Response.json(200, self._access(code["scope"], refresh))
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            if token not in self.refresh_tokens or token in self.revoked:
                return Response.json(
                    400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                )
            return Response.json(200, self._access(self.refresh_tokens[token], None))
        return Response.json(400, {"error": "unsupported_grant_type", "error_description": str(grant)})

    def _access(self, scope: str, refresh: str | None) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(24)
        self.access_tokens[token] = time.time() + self.expires_in
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.expires_in,
            "scope": scope,
            "token_type": "Bearer",
        }
        if refresh:
            body["refresh_token"] = refresh
        return body

    def _send(self, request: Request, via: str) -> Response:
        token = request.bearer() or ""
        if self.access_tokens.get(token, 0) < time.time():
            return Response.json(
                401,
                google_error(401, "Request had invalid authentication credentials.", "authError"),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        failure = self._next_send_failure()
        if failure is not None:
            return failure
        if via == "json":
            try:
                encoded = request.json()["raw"]
                raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (ValueError, KeyError, TypeError):
                return Response.json(
                    400, google_error(400, "Invalid value for ByteString", "invalidArgument")
                )
        else:
            if (
                request.query.get("uploadType") != "media"
                or request.headers.get("content-type") != "message/rfc822"
            ):
                return Response.json(400, google_error(400, "Media type not supported", "badContent"))
            raw = request.body
        if len(raw) > 36_700_160:
            return Response.json(413, google_error(413, "Request Entity Too Large", "uploadTooLarge"))
        email = parse_email(raw)
        if not (email["To"] or email["Cc"] or email["Bcc"]):
            return Response.json(400, google_error(400, "Recipient address required", "invalidArgument"))
        self.sent.append(SentGmail(via, raw, email, token))
        message_id = secrets.token_hex(8)
        return Response.json(200, {"id": message_id, "threadId": message_id, "labelIds": ["SENT"]})
