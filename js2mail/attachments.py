"""The one attachment policy, for `/v1/send` and for contact-form uploads. Pure: no I/O.

- **Blocked extensions**: executables Gmail refuses (`.exe`, `.js`, `.bat`, …) are refused, also
  when hidden behind what Windows and mail clients ignore: the name is checked after NFKC
  normalization, with format characters (category Cf: zero-width spaces, bidi overrides, …)
  dropped and trailing dots and spaces stripped — `a.exe.`, `a.bat `, `a.scr\\u200b`, `ａ.ｅｘｅ`.
- **Content types** come from a vetted table: Python's built-in extension map (not the host's
  /etc/mime.types), never `multipart/*` or `message/*` (those cannot be a base64 leaf part); an
  unknown extension is `application/octet-stream`. A caller-given type (`/v1/send`'s
  `contentType`) must look like `type/subtype` and not be multipart/message; form uploads never
  get to choose theirs.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass

BLOCKED_EXTENSIONS = frozenset({
    ".ade", ".adp", ".apk", ".appx", ".bat", ".cab", ".chm", ".cmd", ".com", ".cpl", ".dll", ".dmg", ".exe", ".hta",
    ".ins", ".isp", ".iso", ".jar", ".js", ".jse", ".lib", ".lnk", ".mde", ".msc", ".msi", ".msix", ".msp", ".mst",
    ".nsh", ".pif", ".ps1", ".scr", ".sct", ".shb", ".sys", ".vb", ".vbe", ".vbs", ".vxd", ".wsc", ".wsf", ".wsh"})
NEVER_TYPES = ("multipart/", "message/")
FALLBACK_TYPE = "application/octet-stream"
TYPE_SHAPE = re.compile(r"[\w.+-]+/[\w.+-]+", re.ASCII)
_BUILTIN_TYPES = mimetypes.MimeTypes().types_map[True]  # built-in table only: the same on every host


class AttachmentRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Vetted:
    filename: str  # normalized
    content_type: str


def normalize_filename(filename: str) -> str:
    """NFKC, without format (Cf) characters, without trailing dots and spaces."""
    text = unicodedata.normalize("NFKC", filename)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return text.rstrip(". ")


def extension(filename: str) -> str:
    """The lowercase extension (with its dot) of the normalized name; '' when there is none."""
    name = normalize_filename(filename)
    return ("." + name.rsplit(".", 1)[1].lower()) if "." in name else ""


def allowed_type(content_type: str) -> bool:
    lowered = content_type.lower()
    return bool(TYPE_SHAPE.fullmatch(lowered)) and not lowered.startswith(NEVER_TYPES)


def type_for(filename: str) -> str:
    """The vetted content type for a name: the built-in table by extension, else octet-stream."""
    found = _BUILTIN_TYPES.get(extension(filename))
    return found if found and allowed_type(found) else FALLBACK_TYPE


def vet(filename: str, content_type: str | None = None) -> Vetted:
    """The normalized name and the type to send, or AttachmentRefused (`blocked_attachment`,
    `invalid_filename`, `invalid_content_type`). Without a caller-given type it is derived."""
    name = normalize_filename(filename)
    if not name:
        raise AttachmentRefused("invalid_filename", "the filename is empty once normalized")
    ext = extension(name)
    if ext in BLOCKED_EXTENSIONS:
        raise AttachmentRefused("blocked_attachment", f"{ext} attachments are refused by mail providers")
    if content_type is None:
        return Vetted(name, type_for(name))
    if not allowed_type(content_type):
        raise AttachmentRefused("invalid_content_type",
                                "contentType must look like type/subtype and not be multipart/* or message/*")
    return Vetted(name, content_type.lower())
