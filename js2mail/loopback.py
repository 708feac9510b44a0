"""Is this host only ever reached over loopback? Decides where plaintext SMTP (`--security none`) may go."""

from __future__ import annotations

import asyncio
import ipaddress
import socket


def is_loopback_ip(address: str) -> bool:
    """127.0.0.0/8, ::1, and IPv4 loopback written as IPv4-mapped IPv6 (::ffff:127.0.0.1)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _all_loopback(infos: list[tuple[object, ...]]) -> bool:
    addresses = [str(info[4][0]) for info in infos]  # type: ignore[index]
    return bool(addresses) and all(is_loopback_ip(a) for a in addresses)


def resolves_only_to_loopback(host: str, port: int) -> bool:
    """True when every address `host` resolves to is loopback; False when any is not, or it does not resolve."""
    try:
        return _all_loopback(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))  # type: ignore[arg-type]
    except (OSError, UnicodeError):
        return False


async def resolves_only_to_loopback_async(host: str, port: int) -> bool:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return _all_loopback(infos)  # type: ignore[arg-type]
