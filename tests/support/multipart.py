"""Hand-built multipart/form-data bodies, byte for byte: ordered parts, any charset, any bytes —
what a browser (or an attacker) can put on the wire, which httpx's encoder would normalize."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None  # e.g. "text/plain; charset=utf-16"


def _quoted(value: str) -> bytes:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A").encode()


def encode(parts: list[Part], boundary: str = "js2mailTestBoundary7MA4YWxk") -> tuple[bytes, str]:
    """The body and its Content-Type header value."""
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = b'Content-Disposition: form-data; name="' + _quoted(part.name) + b'"'
        if part.filename is not None:
            disposition += b'; filename="' + _quoted(part.filename) + b'"'
        out += disposition + b"\r\n"
        if part.content_type is not None:
            out += b"Content-Type: " + part.content_type.encode() + b"\r\n"
        out += b"\r\n" + part.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
