"""RFC 5322 / MIME bytes written directly, for the shapes the API sends: text, html or both, with
or without attachments. Pure and exact: what a standard parser decodes is what was asked for.

- Bodies: UTF-8, quoted-printable (binascii's C encoder), or base64 when mostly non-ASCII (QP
  would triple it); every line ending (CRLF, CR, LF) goes out as CRLF; no `From ` mangling; a QP
  body without a final newline ends in a soft break, so the CRLF that SMTP needs at the end
  decodes to nothing.
- Headers: ASCII text as is (folded at whitespace); anything else, or anything a parser would
  change (leading/trailing whitespace, `=?`), as RFC 2047 base64 encoded words split on character
  boundaries. Display names are atoms, quoted strings or encoded words; addresses carry A-label
  domains; a non-ASCII local part stays raw UTF-8 (RFC 6532: needs SMTPUTF8 or an EAI API).
- Attachments: base64, byte-identical; text/* declares the charset it can prove (UTF-8, or a
  UTF-16/32 byte-order mark); filenames RFC 2231-encoded when not plain ASCII.

`js2mail.mail.build_email` decides when this writer is used; the stdlib path stays for the rest
and shares the header encoders below.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CRLF = "\r\n"
MAX_LINE = 78
EW_BYTES = 39  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 52 base64 + "?=" = 64 characters
_LINE_ENDS = re.compile(r"\r\n|\r")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_FOLD_POINTS = re.compile(r"(?<=\S)(?=[ \t]+\S)")
_ATTR_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~")
_QUOTABLE = re.compile(r"[ -~]{1,60}")


# --- headers ------------------------------------------------------------------------------------


def encoded_words(value: str) -> list[str]:
    """RFC 2047 base64 words of at most EW_BYTES UTF-8 bytes each, never splitting a character."""
    data = value.encode("utf-8")
    if len(data) <= EW_BYTES:
        return [f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="]
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        n = len(char.encode("utf-8"))
        if size + n > EW_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += n
    words.append("".join(chunk))
    return [f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words]


def raw_safe(value: str) -> bool:
    """Can this go into an unstructured header verbatim and come back unchanged?"""
    return value.isascii() and value == value.strip(" \t") and "=?" not in value and bool(value)


def fold(name: str, value: str) -> str:
    """`value` folded before whitespace so lines stay within 78 characters where a break exists.
    Unfolding (removing the CRLFs) gives `value` back exactly."""
    if len(name) + 2 + len(value) <= MAX_LINE:
        return value
    lines: list[str] = []
    line, room = "", MAX_LINE - len(name) - 2
    for piece in _FOLD_POINTS.split(value):
        if line and len(line) + len(piece) > room:
            lines.append(line)
            line, room = "", MAX_LINE
        line += piece
    lines.append(line)
    return CRLF.join(lines)


def unstructured(name: str, value: str) -> str:
    """A Subject-like header value: verbatim (folded) when that round-trips, else encoded words."""
    if raw_safe(value):
        folded = fold(name, value)
        if all(len(line) <= 900 for line in folded.split(CRLF)):
            return folded
    return (CRLF + " ").join(encoded_words(value))


def display_name(name: str) -> str:
    """A phrase: atoms as they are, other ASCII quoted, anything else encoded words.

    Encoded words break only where the name has a space, and that space is the folding
    whitespace between them: parsers (Python's among them) read whitespace between encoded
    words of a phrase as one space. A run without spaces longer than one word holds becomes
    adjacent encoded words."""
    if "=?" not in name:
        if _ATOMS.fullmatch(name) and len(name) <= 60:
            return name
        if _QUOTABLE.fullmatch(name) and name == name.strip():
            return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    groups: list[str] = []
    for token in name.split(" "):
        if groups and len(groups[-1].encode("utf-8")) + 1 + len(token.encode("utf-8")) <= EW_BYTES:
            groups[-1] += " " + token
        else:
            groups.append(token)
    return (CRLF + " ").join("".join(encoded_words(group)) for group in groups)


def mailbox(name: str, address: str) -> str:
    """`address` or `name <address>`, ready for an address header (the address already A-labelled)."""
    return f"{display_name(name)} <{address}>" if name else address


def address_list(name: str, mailboxes: Iterable[str]) -> str:
    """Comma-separated mailboxes, a fold after a comma whenever a line would pass 78 characters."""
    out, width = "", len(name) + 2
    for i, item in enumerate(mailboxes):
        first = item.split(CRLF, 1)[0]
        if i:
            if width + 2 + len(first) > MAX_LINE:
                out += "," + CRLF + " "
                width = 1
            else:
                out += ", "
                width += 2
        out += item
        width = len(item.rsplit(CRLF, 1)[-1]) if CRLF in item else width + len(item)
    return out


def disposition(filename: str) -> str:
    """`attachment; filename=…`: a quoted string for plain short ASCII, RFC 2231 otherwise."""
    if _QUOTABLE.fullmatch(filename) and filename == filename.strip():
        return 'attachment; filename="' + filename.replace("\\", "\\\\").replace('"', '\\"') + '"'
    encoded = "".join(chr(b) if b in _ATTR_SAFE else f"%{b:02X}" for b in filename.encode("utf-8"))
    segments, i = [], 0
    while i < len(encoded):
        end = min(i + 60, len(encoded))
        if end < len(encoded) and "%" in encoded[end - 2 : end]:  # never split a %XX triplet
            end = encoded.rindex("%", end - 2, end)
        segments.append(encoded[i:end])
        i = end
    parts = [f"filename*{n}*={'utf-8' + chr(39) * 2 if n == 0 else ''}{seg}" for n, seg in enumerate(segments)]
    return "attachment;" + CRLF + " " + (";" + CRLF + " ").join(parts)


def text_charset(content: bytes) -> str | None:
    """The charset text bytes provably are: UTF-8 (ASCII included), or UTF-16/32 by their BOM."""
    if content.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        try:
            content.decode("utf-32")
            return "utf-32"
        except UnicodeDecodeError:
            pass  # UTF-16 text starting with U+0000 has the same first four bytes
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "utf-8"


# --- bodies ------------------------------------------------------------------------------------


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR become LF: the one line-ending rule for text and html bodies."""
    return _LINE_ENDS.sub("\n", text) if "\r" in text else text


_HIGH_BYTES = bytes(range(128, 256))


def prefers_base64(data: bytes) -> bool:
    """Quoted-printable triples every non-ASCII byte; past about one byte in six base64 is smaller
    (CJK or Cyrillic text: QP would be 2-3 times the size, base64 is 1.37 times)."""
    return not data.isascii() and len(data) - len(data.translate(None, _HIGH_BYTES)) > len(data) // 6


def encoded_size(data: bytes) -> int:
    """About how many bytes a text body of `data` takes on the wire, as `write` encodes it."""
    return len(data) * 4 // 3 + len(data) // 38 if prefers_base64(data) else int(len(data) * 1.05) + \
        2 * (len(data) - len(data.translate(None, _HIGH_BYTES)))


def text_body(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body) of a UTF-8 text part: quoted-printable, or base64
    when that is smaller; line breaks are CRLF inside either."""
    data = normalize_newlines(text).encode("utf-8")
    if prefers_base64(data):
        return "base64", base64_body(data.replace(b"\n", b"\r\n"))
    return "quoted-printable", qp_body(text)


def qp_body(text: str) -> bytes:
    """Quoted-printable UTF-8 with CRLF line ends; a body without a final newline ends in a soft
    break, so whatever CRLF follows it decodes to nothing."""
    text = normalize_newlines(text)
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return encoded if text.endswith("\n") else encoded + b"=\r\n"


def base64_body(content: bytes) -> bytes:
    return base64.encodebytes(content).replace(b"\n", b"\r\n")


# --- the writer ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """A finished message: header block without Bcc, the Bcc line (or b""), and the body."""

    head: bytes
    bcc: bytes
    body: bytes

    def wire(self, *, drop_bcc: bool = False) -> bytes:
        return b"".join((self.head, b"" if drop_bcc else self.bcc, b"\r\n", self.body))


def _text_part(text: str, subtype: str) -> tuple[str, bytes]:
    cte, body = text_body(text)
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n', body


def _attachment_part(att: Attachment) -> tuple[str, bytes]:
    ctype = att.content_type if att.content_type.isascii() else "application/octet-stream"
    if ctype.startswith("text/"):
        charset = text_charset(att.content)
        if charset:
            ctype += f'; charset="{charset}"'
    head = (f"Content-Type: {ctype}\r\nContent-Disposition: {disposition(att.filename)}\r\n"
            "Content-Transfer-Encoding: base64\r\n")
    return head, base64_body(att.content)


def _multipart(subtype: str, parts: Sequence[tuple[str, bytes]]) -> tuple[str, bytes]:
    boundary = "=_" + secrets.token_hex(12)  # "=_" never starts a QP or base64 line
    delimiter = f"--{boundary}\r\n".encode("ascii")
    chunks: list[bytes] = []
    for head, body in parts:
        chunks += (delimiter, head.encode("ascii"), b"\r\n", body, b"\r\n")  # that CRLF belongs to the next delimiter
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n', b"".join(chunks)


def write(headers: Sequence[tuple[str, str]], bcc: str | None, text: str | None, html: str | None,
          attachments: Sequence[Attachment]) -> Rendered:
    """`headers` are encoded values (this module's functions); `bcc` the encoded Bcc value."""
    body: tuple[str, bytes]
    if text is not None and html is not None:
        body = _multipart("alternative", [_text_part(text, "plain"), _text_part(html, "html")])
    else:
        body = _text_part(text, "plain") if text is not None else _text_part(html or "", "html")
    if attachments:
        body = _multipart("mixed", [body, *(_attachment_part(a) for a in attachments)])
    head = "".join(f"{name}: {value}\r\n" for name, value in headers) + "MIME-Version: 1.0\r\n" + body[0]
    return Rendered(head.encode("utf-8"), f"Bcc: {bcc}\r\n".encode() if bcc else b"", body[1])
