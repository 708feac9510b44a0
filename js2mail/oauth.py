"""Terminal OAuth flows that connect a Gmail or Microsoft 365 mailbox (`js2mail mailboxes add`).

They return a grant for the caller to seal and store; they keep nothing themselves. Every way a
person can get the flow wrong (missing client file, consent denied, a stale browser tab, nobody
answering) ends in one `OAuthFlowError` with a message and a hint, never a library traceback.

Gmail: the loopback redirect flow with PKCE from google-auth-oauthlib (Google's device flow
refuses Gmail scopes and the out-of-band flow is gone). On a VPS the person either tunnels the
loopback port with `ssh -L`, or pastes the address the browser landed on back into the terminal;
both talk to the same `Flow`, which holds the PKCE verifier.

Microsoft: MSAL's device-code flow (natural on a VPS) or the interactive flow, which here uses our
own loopback listener so the browser, the prompt text and the timeout stay under our control.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msal
import requests
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from js2mail.config import GoogleConfig, MicrosoftConfig
from js2mail.errors import Js2MailError
from js2mail.providers.gmail import GMAIL_SCOPES
from js2mail.providers.graph import GRAPH_SCOPES, build_msal_app
from js2mail.providers.http import ca_bundle_from_env

__all__ = [
    "GMAIL_SCOPES",
    "GRAPH_SCOPES",
    "GoogleGrant",
    "LoopbackReceiver",
    "MicrosoftGrant",
    "OAuthFlowError",
    "connect_gmail",
    "connect_microsoft",
]

Echo = Callable[[str], None]
Browser = Callable[[str], bool]
# A person answering the paste prompt with neither an address nor the tunnel gets this many tries.
MAX_PROMPTS = 5
# After "done", how long the tunnel route may still take to deliver (the browser showed our page).
TUNNEL_GRACE = 1.0
DONE_PAGE = (
    "js2mail received the authorization. You can close this tab; if the terminal asks, press Enter there."
)


def _print(text: str) -> None:
    """print, flushed: the person must see the address before the flow blocks on the browser."""
    print(text, flush=True)


class OAuthFlowError(Js2MailError):
    kind = "oauth"
    code = "oauth_failed"


@dataclass
class GoogleGrant:
    client_id: str
    client_secret: str
    refresh_token: str
    scopes: list[str]


@dataclass
class MicrosoftGrant:
    client_id: str
    authority: str  # "{authority}/{tenant}", as GraphProvider takes it
    cache: bytes  # MSAL SerializableTokenCache JSON: seal it before storing
    address: str | None  # preferred_username from the ID token, when it looks like an address


# --- loopback listener -------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer
    timeout = 30  # seconds an idle connection may hold its thread; it never holds up other requests

    def do_GET(self) -> None:
        self._answer(dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)))

    def do_POST(self) -> None:  # response_mode=form_post (Microsoft)
        length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
        self._answer(
            dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True))
        )

    def _answer(self, params: dict[str, str]) -> None:
        if "code" not in params and "error" not in params:  # favicon, a reload, a port probe
            self._reply(404, "js2mail is waiting for the sign-in redirect on this port.")
            return
        if not self.server.receiver.expects(params.get("state", "")):  # forged, or a stale tab
            self._reply(400, "This answer is not for the sign-in js2mail is waiting for; it keeps waiting.")
            return
        self.server.receiver._deliver(params)
        self._reply(200, DONE_PAGE if "code" in params else "Sign-in was not completed; see the terminal.")

    def _reply(self, status: int, text: str) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ReceiverServer(ThreadingHTTPServer):
    allow_reuse_address = False  # a busy port must fail here, not silently share the redirect
    daemon_threads = True
    receiver: LoopbackReceiver


class LoopbackReceiver:
    """A listener on 127.0.0.1 that keeps the first redirect carrying `code` or `error` *and* the
    expected `state`; any other answer gets 400 and the listener keeps waiting.

    It serves each connection in its own thread (an idle connection never delays the redirect), and
    runs in a thread itself so the terminal can prompt (paste the address) while it listens.
    """

    def __init__(self, port: int = 0) -> None:
        try:
            self._server = _ReceiverServer(("127.0.0.1", port), _Handler)
        except (OSError, OverflowError) as exc:
            raise OAuthFlowError(
                f"cannot listen on 127.0.0.1:{port} for the sign-in redirect: {getattr(exc, 'strerror', None) or exc}",
                code="oauth_port_unavailable",
                hint="Choose another --port, or 0 for any free port.",
            ) from exc
        self._server.receiver = self
        self._result: dict[str, str] | None = None
        self._state: str | None = None
        self._event = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="js2mail-oauth-loopback", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def expect_state(self, state: str) -> None:
        """The `state` of the authorization request; only a redirect carrying it is accepted."""
        self._state = state

    def expects(self, state: str) -> bool:
        return self._state is not None and hmac.compare_digest(state.encode(), self._state.encode())

    def _deliver(self, params: dict[str, str]) -> None:
        if self._result is None:
            self._result = params
            self._event.set()

    def wait(self, timeout: float | None) -> dict[str, str] | None:
        self._event.wait(timeout)
        return self._result

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=2)
        self._server.server_close()


def _default_browser(url: str) -> bool:
    """Open a real browser only where one can show up; on a bare VPS, webbrowser may start lynx."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        return webbrowser.open(url, new=1, autoraise=True)
    except webbrowser.Error:
        return False


def _open(url: str, open_browser: bool, browser: Browser | None) -> bool:
    return bool(open_browser and (browser or _default_browser)(url))


def _check_redirect(params: dict[str, str], state: str, provider: str) -> str:
    """The authorization code, once the redirect proved to answer our request and carry consent."""
    if not hmac.compare_digest(params.get("state", ""), state):
        raise OAuthFlowError(
            "the browser answered a different sign-in request (state mismatch)",
            code="oauth_state_mismatch",
            hint="Close old sign-in tabs and run the command again; use only the address it prints.",
        )
    error = params.get("error")
    if error:
        detail = params.get("error_description", "").splitlines()[0:1]
        if error in ("access_denied", "consent_required", "interaction_required"):
            raise OAuthFlowError(
                f"{provider} sign-in was cancelled or consent was refused ({error})",
                code="oauth_consent_denied",
                hint="Run the command again and allow access.",
            )
        raise OAuthFlowError(
            f"{provider} sign-in failed: {error}" + (f": {detail[0]}" if detail else ""),
            code="oauth_authorization_failed",
        )
    code = params.get("code")
    if not code:
        raise OAuthFlowError(f"{provider} redirect carried no authorization code", code="oauth_no_code")
    return code


# --- Gmail -------------------------------------------------------------------------------------


def load_client_secrets(path: str, config: GoogleConfig) -> dict[str, Any]:
    """Google's client JSON with its endpoints replaced by ours, so tests and proxies can be used."""
    file = Path(path).expanduser()
    hint = (
        "In Google Cloud console: APIs & Services > Credentials > Create credentials > OAuth client ID > "
        "Desktop app, then download the JSON."
    )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise OAuthFlowError(
            f"client secrets file {file} does not exist", code="client_secrets_missing", hint=hint
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OAuthFlowError(
            f"client secrets file {file} is not readable JSON: {exc}",
            code="client_secrets_invalid",
            hint=hint,
        ) from exc
    if isinstance(data, dict) and "web" in data and "installed" not in data:
        raise OAuthFlowError(
            f"{file} is a 'Web application' client; its redirect URIs are fixed, so the loopback flow fails",
            code="client_secrets_invalid",
            hint=hint,
        )
    client = data.get("installed") if isinstance(data, dict) else None
    if not isinstance(client, dict) or not client.get("client_id") or not client.get("client_secret"):
        raise OAuthFlowError(
            f"{file} is not a Google OAuth client secrets file (no installed client_id/secret)",
            code="client_secrets_invalid",
            hint=hint,
        )
    return {"installed": {**client, "auth_uri": config.auth_uri, "token_uri": config.token_uri}}


def _headless_instructions(port: int) -> str:
    return (
        "No browser here, so choose how the answer gets back to this machine:\n"
        f"  (a) Tunnel: on your computer run   ssh -L {port}:127.0.0.1:{port} user@your-vps\n"
        "      then open the address there. The page that follows says js2mail received it;\n"
        "      then press Enter here.\n"
        "  (b) Paste: open the address in any browser. After you allow access the browser lands on\n"
        f"      http://127.0.0.1:{port}/?state=... and shows 'unable to connect' - that is expected.\n"
        "      Copy that whole address from the address bar and paste it here."
    )


def _paste_or_tunnel(
    receiver: LoopbackReceiver, prompt: Callable[[str], str], echo: Echo, port: int
) -> dict[str, str]:
    """Ask for the pasted address; any other answer means 'check the tunnel'.

    Anything without code=/error= counts as "done", because some prompt functions (click's) will
    not return an empty line.
    """
    for _ in range(MAX_PROMPTS):
        try:
            answer = prompt("Paste the address here (or press Enter after the tunnel route)").strip()
        except EOFError as exc:
            raise OAuthFlowError(
                "no answer on the terminal (input closed)", code="oauth_no_response"
            ) from exc
        if "code=" in answer or "error=" in answer:
            query = urlsplit(answer).query if "?" in answer else answer
            return dict(parse_qsl(query.lstrip("?#"), keep_blank_values=True))
        got = receiver.wait(timeout=TUNNEL_GRACE)
        if got is not None:
            return got
        echo(
            f"Nothing has reached 127.0.0.1:{port} yet. Paste the full address the browser ended on, "
            "starting with http://127.0.0.1."
        )
    raise OAuthFlowError(
        "no authorization arrived and none was pasted",
        code="oauth_no_response",
        hint="Run the command again; choose (a) or (b) from the instructions.",
    )


def connect_gmail(
    client_secrets_path: str,
    *,
    config: GoogleConfig,
    port: int = 0,
    open_browser: bool = True,
    echo: Echo = _print,
    prompt: Callable[[str], str] = input,
    browser: Browser | None = None,
    timeout: float = 300.0,
) -> GoogleGrant:
    """Run Google's loopback flow for `gmail.send` and return the refresh-token grant.

    `browser(url) -> bool` replaces `webbrowser.open` (tests play the browser through it); when it
    returns False, or `open_browser` is False, the headless instructions and the paste prompt
    appear. `timeout` bounds the wait for a browser that was opened.
    """
    client_config = load_client_secrets(client_secrets_path, config)
    client = client_config["installed"]
    flow = Flow.from_client_config(client_config, scopes=GMAIL_SCOPES)
    with LoopbackReceiver(port) as receiver:
        flow.redirect_uri = f"http://127.0.0.1:{receiver.port}/"
        # prompt=consent makes Google issue a refresh token even when the user consented before.
        auth_url, state = flow.authorization_url(access_type="offline", prompt="consent")
        receiver.expect_state(state)
        echo(f"Open this address in a browser signed in to the Gmail account:\n\n  {auth_url}\n")
        if _open(auth_url, open_browser, browser):
            echo(f"Waiting up to {int(timeout)} s for the browser to return to port {receiver.port} ...")
            params = receiver.wait(timeout)
            if params is None:
                raise OAuthFlowError(
                    f"the browser did not come back within {int(timeout)} s",
                    code="oauth_timeout",
                    hint="Run again, or use --no-browser to paste the address instead.",
                )
        else:
            echo(_headless_instructions(receiver.port))
            params = _paste_or_tunnel(receiver, prompt, echo, receiver.port)
    code = _check_redirect(params, state, "Google")
    token = _exchange_google_code(flow, code)
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise OAuthFlowError(
            "Google returned no refresh token",
            code="oauth_no_refresh_token",
            hint="Remove js2mail at https://myaccount.google.com/permissions and connect again.",
        )
    scopes = token.get("scope") or []
    scopes = scopes.split() if isinstance(scopes, str) else [str(s) for s in scopes]
    if GMAIL_SCOPES[0] not in scopes:
        raise OAuthFlowError(
            "Google did not grant permission to send mail (gmail.send)",
            code="oauth_scope_not_granted",
            hint="Run again and leave 'Send email on your behalf' ticked on the consent screen.",
        )
    extra = sorted(set(scopes) - set(GMAIL_SCOPES))
    if extra:
        echo(
            "Note: this grant also carries " + ", ".join(extra) + " from an earlier consent; js2mail uses "
            "only gmail.send. Remove the app at https://myaccount.google.com/permissions to drop them."
        )
    return GoogleGrant(
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        refresh_token=str(refresh_token),
        scopes=scopes,
    )


def _exchange_google_code(flow: Flow, code: str) -> dict[str, Any]:
    try:
        return dict(flow.fetch_token(code=code, verify=ca_bundle_from_env() or True))
    except Warning as changed:  # oauthlib raises (not warns) when the granted scope differs
        return dict(getattr(changed, "token", {}) or {})
    except OAuth2Error as exc:
        raise OAuthFlowError(
            f"Google refused the authorization code: {exc.error}: {exc.description}",
            code="oauth_token_exchange_failed",
            hint="Run the command again.",
        ) from exc
    except requests.RequestException as exc:
        raise OAuthFlowError(
            f"could not reach Google's token endpoint: {exc}", code="oauth_network_error"
        ) from exc


# --- Microsoft ---------------------------------------------------------------------------------


def _msal_failure(result: dict[str, Any]) -> OAuthFlowError:
    error = str(result.get("error") or "unknown_error")
    detail = str(result.get("error_description") or "").splitlines()[0:1]
    text = f"Microsoft sign-in failed: {error}" + (f": {detail[0]}" if detail else "")
    if error in ("authorization_declined", "access_denied"):
        return OAuthFlowError(text, code="oauth_consent_denied", hint="Run the command again and accept.")
    if error in ("expired_token", "authorization_pending", "code_expired"):
        return OAuthFlowError(
            "the device code expired before the sign-in finished",
            code="oauth_timeout",
            hint="Run the command again and enter the code sooner.",
        )
    hint = None
    if error in ("invalid_client", "unauthorized_client"):
        hint = "In the Entra app registration: Authentication > Allow public client flows = Yes."
    return OAuthFlowError(text, code="oauth_token_exchange_failed", hint=hint)


def connect_microsoft(
    client_id: str,
    *,
    tenant: str = "common",
    config: MicrosoftConfig,
    device_code: bool = False,
    echo: Echo = _print,
    open_browser: bool = True,
    msal_http_client: object | None = None,
    port: int = 0,
    browser: Browser | None = None,
    timeout: float = 900.0,
) -> MicrosoftGrant:
    """Sign in with MSAL for Mail.Send (MSAL adds offline_access) and return the token cache.

    The address comes from the ID token's preferred_username; no User.Read is asked for.
    """
    authority = f"{config.authority.rstrip('/')}/{tenant}"
    cache = msal.SerializableTokenCache()
    try:
        app = build_msal_app(client_id, authority, cache, msal_http_client)
    except (ValueError, RuntimeError, requests.RequestException, OSError) as exc:
        raise OAuthFlowError(
            f"cannot use the Microsoft authority {authority}: {exc}",
            code="oauth_authority_error",
            hint="Check --tenant (a tenant id, a domain, or 'common').",
        ) from exc
    try:
        if device_code:
            result = _device_flow(app, echo, timeout)
        else:
            result = _interactive_flow(app, echo, open_browser, browser, port, timeout)
    except requests.RequestException as exc:
        raise OAuthFlowError(
            f"could not reach Microsoft's sign-in service: {exc}", code="oauth_network_error"
        ) from exc
    if "access_token" not in result:
        raise _msal_failure(result)
    claims = result.get("id_token_claims") or {}
    username = claims.get("preferred_username")
    address = username if isinstance(username, str) and "@" in username else None
    return MicrosoftGrant(
        client_id=client_id, authority=authority, cache=cache.serialize().encode("utf-8"), address=address
    )


def _device_flow(app: msal.PublicClientApplication, echo: Echo, timeout: float) -> dict[str, Any]:
    flow = app.initiate_device_flow(scopes=GRAPH_SCOPES)
    if "user_code" not in flow:
        raise _msal_failure(flow)
    echo(str(flow.get("message") or f"Open {flow.get('verification_uri')} and enter {flow['user_code']}"))
    flow["expires_at"] = min(float(flow.get("expires_at") or 0), time.time() + timeout)
    return dict(app.acquire_token_by_device_flow(flow))


def _interactive_flow(
    app: msal.PublicClientApplication,
    echo: Echo,
    open_browser: bool,
    browser: Browser | None,
    port: int,
    timeout: float,
) -> dict[str, Any]:
    with LoopbackReceiver(port) as receiver:
        # Entra accepts any port on http://localhost for "Mobile and desktop" redirect URIs.
        flow = app.initiate_auth_code_flow(
            GRAPH_SCOPES,
            redirect_uri=f"http://localhost:{receiver.port}",
            prompt="select_account",
            response_mode="form_post",
        )
        auth_uri = str(flow["auth_uri"])
        receiver.expect_state(str(flow["state"]))
        echo(f"Open this address in a browser and sign in to the Microsoft 365 mailbox:\n\n  {auth_uri}\n")
        if not _open(auth_uri, open_browser, browser):
            echo(
                f"No browser here: on your computer run   ssh -L {receiver.port}:127.0.0.1:{receiver.port} "
                "user@your-vps\nthen open the address there, or run again with --device-code."
            )
        echo(f"Waiting up to {int(timeout)} s for the sign-in to finish ...")
        params = receiver.wait(timeout)
    if params is None:
        raise OAuthFlowError(
            f"the sign-in did not finish within {int(timeout)} s",
            code="oauth_timeout",
            hint="Run again, or use --device-code on a machine without a browser.",
        )
    _check_redirect(params, str(flow["state"]), "Microsoft")
    try:
        return dict(app.acquire_token_by_auth_code_flow(flow, params))
    except (ValueError, RuntimeError) as exc:  # MSAL's own state/nonce checks
        raise OAuthFlowError(
            f"Microsoft's answer failed verification: {exc}", code="oauth_state_mismatch"
        ) from exc
