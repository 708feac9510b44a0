"""Webhook signing, the receiver-side `verify()`, the SSRF guard, and one delivery attempt.

Signature (Stripe's scheme, so receivers can use tools they know):
``X-JS2Mail-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`` where v1 is the lowercase hex
HMAC-SHA256 keyed with the secret string's UTF-8 bytes over ``f"{t}."`` + the exact body bytes.
No spaces. During a secret rotation there is one ``v1`` per active secret.

Egress: a target's host is resolved once, *every* address must be public (not loopback,
private, link-local/metadata, CGNAT, ULA, multicast, reserved, or those embedded in IPv6), and
the connection goes to the checked address with the original Host header and TLS name — so DNS
rebinding cannot swap the address after the check. Resolution failure refuses the delivery.
`[webhooks] allow_private` or `allowed_hosts` lift the address rule for a receiver on the same box.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from js2mail import __version__
from js2mail.errors import ValidationError
from js2mail.models import iso, random_base62
from js2mail.retry import parse_retry_after

if TYPE_CHECKING:
    import httpx

    from js2mail.config import WebhooksConfig

SIGNATURE_HEADER = "X-JS2Mail-Signature"
DELIVERY_ID_HEADER = "X-JS2Mail-Delivery-Id"
EVENT_HEADER = "X-JS2Mail-Event"
EVENT_TYPES = ("mail.queued", "mail.sent", "mail.retrying", "mail.failed", "mail.dry_run", "form.submitted",
               "webhook.disabled")
RESPONSE_CAP = 64 * 1024
MAX_URL = 2048

Resolver = Callable[[str, int], Awaitable[list[str]]]


# --- signing -----------------------------------------------------------------------------------
def new_secret() -> str:
    return "whsec_" + random_base62(32)


def _sign(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_header(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    return ",".join([f"t={int(timestamp)}", *(f"v1={_sign(body, s, int(timestamp))}" for s in secrets)])


def event_body(*, event_id: str, type: str, created_at: float, data: Mapping[str, Any]) -> bytes:
    return json.dumps({"id": event_id, "type": type, "createdAt": iso(created_at), "data": data},
                      separators=(",", ":"), ensure_ascii=False).encode()


def delivery_headers(*, body: bytes, event_type: str, delivery_id: str, secrets: Sequence[str],
                     now: float) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"js2mail/{__version__}",
        SIGNATURE_HEADER: sign_header(body, secrets, int(now)),
        DELIVERY_ID_HEADER: delivery_id,
        EVENT_HEADER: event_type,
    }


class WebhookVerificationError(ValueError):
    """The delivery is not provably from js2mail (or is too old / too new)."""


def verify(body: bytes | str, header: str, secret: str, tolerance: int = 300, *, now: float | None = None) -> bool:
    """Verify a delivery as a receiver: True, or WebhookVerificationError saying why.

    Pass the raw body exactly as received (bytes, or str decoded as UTF-8). Any matching `v1`
    passes (rotation), compared in constant time; `t` must be within `tolerance` seconds of now,
    in the past *or* the future.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if not isinstance(header, str) or not header:
        raise WebhookVerificationError("missing signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise WebhookVerificationError("malformed signature header")
        if key == "t" and timestamp is None:
            if not value.isascii() or not value.isdigit():
                raise WebhookVerificationError("malformed timestamp in signature header")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None:
        raise WebhookVerificationError("no timestamp in signature header")
    if not candidates:
        raise WebhookVerificationError("no v1 signature in header")
    expected = _sign(raw, secret, timestamp).encode()
    if not any(hmac.compare_digest(expected, c.encode("utf-8", "replace")) for c in candidates):
        raise WebhookVerificationError("no signature matches the body and secret")
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("timestamp too old (possible replay)")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("timestamp too far in the future")
    return True


# --- egress policy ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EgressPolicy:
    allow_private: bool = False
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, cfg: WebhooksConfig) -> EgressPolicy:
        return cls(cfg.allow_private, frozenset(h.lower().rstrip(".") for h in cfg.allowed_hosts))

    def exempt(self, host: str) -> bool:
        return self.allow_private or host.lower().rstrip(".") in self.allowed_hosts


class WebhookUrlRefused(ValidationError):
    code = "webhook_url_refused"


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    path_qs: str
    address: str


def check_url(url: str) -> None:
    """Syntax rules, at registration and before every delivery."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise WebhookUrlRefused(f"webhook URL must be a string of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlRefused(f"{url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlRefused(f"webhook URL must start with http:// or https:// (got {parts.scheme or 'none'!r})")
    if not parts.hostname:
        raise WebhookUrlRefused("webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("webhook URL may not carry credentials (user:password@)")
    if parts.fragment:
        raise WebhookUrlRefused("webhook URL may not have a #fragment")
    if port == 0:
        raise WebhookUrlRefused("webhook URL port must be 1-65535")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise WebhookUrlRefused("webhook URL may not contain spaces or control characters")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.ip_network("64:ff9b::/96") or ip in ipaddress.ip_network("::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(address: str) -> str | None:
    """Why this address may not receive webhooks, or None when it is a public unicast address."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None and int(inner) != 0:
            problem = address_problem(str(inner))
            if problem:
                return f"{problem} (embedded in {ip})"
    for label, test in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
                        ("link-local or cloud metadata", ip.is_link_local), ("multicast", ip.is_multicast),
                        ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if test:
            return label
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return "carrier-grade NAT"
    if not ip.is_global:
        return "not globally routable"
    return None


def _literal(host: str) -> str | None:
    """The address an IP literal means, in every spelling a resolver accepts (127.1, 0x7f.1, 2130706433)."""
    bare = host.strip("[]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(bare))
    except OSError:
        return None


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_target(url: str, policy: EgressPolicy, *, resolver: Resolver | None = None) -> Target:
    check_url(url)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path_qs = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await (resolver or _system_resolver)(host, port)
        except (OSError, UnicodeError) as exc:
            raise WebhookUrlRefused(f"cannot resolve {host}: {exc}; refusing to deliver") from None
        if not addresses:
            raise WebhookUrlRefused(f"{host} resolves to no address; refusing to deliver")
    if not policy.exempt(host):
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise WebhookUrlRefused(
                    f"{host} resolves to {address}, a {problem} address; webhooks go to public addresses only",
                    hint="for a receiver on this machine or network set [webhooks] allow_private = true, "
                         f'or allowed_hosts = ["{host}"]',
                )
    return Target(url, parts.scheme, host, port, path_qs, addresses[0])


# --- one delivery attempt -----------------------------------------------------------------------
@dataclass
class DeliveryResult:
    delivered: bool
    status_code: int | None
    retry_after: float | None
    gone: bool
    error: str | None


async def deliver(target: Target, body: bytes, headers: Mapping[str, str], *, timeout: float = 10.0,
                  client: httpx.AsyncClient | None = None) -> DeliveryResult:
    """One POST to the checked address. Never follows redirects; never raises for network trouble."""
    import httpx

    ip = target.address
    netloc = f"[{ip}]" if ":" in ip else ip
    url = f"{target.scheme}://{netloc}:{target.port}{target.path_qs}"
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    own = client is None
    http = client or httpx.AsyncClient(follow_redirects=False, trust_env=False)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        async with asyncio.timeout(timeout):
            async with http.stream("POST", url, content=body, headers={**headers, "Host": host_header},
                                   extensions=extensions, timeout=timeout) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= RESPONSE_CAP:
                        break
            status = response.status_code
    except TimeoutError:
        return DeliveryResult(False, None, None, False, f"timeout after {timeout:g}s")
    except httpx.HTTPError as exc:
        return DeliveryResult(False, None, None, False, f"{type(exc).__name__}: {exc}"[:300])
    except OSError as exc:
        return DeliveryResult(False, None, None, False, f"connection failed: {exc}"[:300])
    finally:
        if own:
            await http.aclose()
    retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
    if 200 <= status < 300:
        return DeliveryResult(True, status, None, False, None)
    if 300 <= status < 400:
        return DeliveryResult(False, status, retry_after, False, f"redirect not followed ({status})")
    return DeliveryResult(False, status, retry_after, status == 410, f"HTTP {status}")
