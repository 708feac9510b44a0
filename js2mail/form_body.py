"""A contact form's urlencoded or multipart body as ordered (name, value) pairs and uploads. Pure: no I/O.

Litestar's own form parser groups repeated names together (so the owner's mail lost the order the
visitor filled the form in) and decodes text parts with whatever charset they claim, unchecked.
Here every part keeps its place, the charset (the part's, else the request's, else UTF-8) must be
a real text encoding, and bytes that do not decode are a 4xx — never a 500. The multipart framing
itself is parsed by `multipart` (the parser Litestar uses).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from multipart import MultipartError, MultipartSegment, ParserLimitReached, PushMultipartParser, parse_options_header

from js2mail.errors import UnsupportedMediaType, ValidationError
from js2mail.forms import UploadedFile

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
Pairs = list[tuple[str, str]]


def text_codec(charset: str | None) -> str:
    """The codec name for a declared charset (default UTF-8); 415 when it is not a text encoding."""
    label = (charset or "utf-8").strip().strip('"').lower()
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise UnsupportedMediaType(f"charset {label[:40]!r} is not supported; send UTF-8",
                                   code="unsupported_charset")
    return info.name


def decode_text(data: bytes, codec: str, where: str) -> str:
    try:
        return data.decode(codec)
    except (UnicodeError, ValueError):
        raise ValidationError(f"{where[:100]!r} is not valid {codec}", code="invalid_encoding") from None


def read_urlencoded(body: bytes, charset: str | None) -> Pairs:
    """Every `name=value` in order, blank values kept; `+` is a space, %XX a byte of the charset."""
    codec = text_codec(charset)
    pairs: Pairs = []
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        raw_name, _, raw_value = chunk.partition(b"=")
        name = decode_text(unquote_to_bytes(raw_name.replace(b"+", b" ")), codec, "a field name")
        pairs.append((name, decode_text(unquote_to_bytes(raw_value.replace(b"+", b" ")), codec, name)))
    return pairs


def _parts(body: bytes, boundary: str, max_parts: int) -> Iterator[tuple[MultipartSegment, bytes]]:
    parser = PushMultipartParser(boundary, max_segment_count=max_parts)
    segment: MultipartSegment | None = None
    data = bytearray()
    with parser:
        for chunk in (body, b""):
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    segment, data = event, bytearray()
                elif event:
                    data += event
                elif segment is not None:
                    yield segment, bytes(data)
                    segment = None
            if parser.closed:
                break


def read_multipart(body: bytes, boundary: str | None, charset: str | None, *,
                   max_fields: int) -> tuple[Pairs, list[UploadedFile]]:
    """Text parts as pairs and file parts as uploads, each in the order sent. A file input left
    empty (no name, no bytes) is skipped."""
    if not boundary:
        raise ValidationError("multipart body without a boundary", code="malformed_body")
    default = text_codec(charset)
    pairs: Pairs = []
    files: list[UploadedFile] = []
    try:
        for segment, data in _parts(body, boundary, max_fields + 1):
            name = segment.name or ""
            if segment.filename is not None:
                if segment.filename or data:
                    files.append(UploadedFile(name, segment.filename or "upload", "application/octet-stream", data))
                continue
            codec = text_codec(segment.charset) if segment.charset else default
            pairs.append((name, decode_text(data, codec, name)))
    except ParserLimitReached:
        raise ValidationError(f"a submission may have at most {max_fields} fields", code="too_many_fields") from None
    except MultipartError as exc:
        raise ValidationError(f"the multipart body could not be read: {exc}", code="malformed_body") from None
    return pairs, files


def read_form(content_type: str | None, body: bytes, *, max_fields: int) -> tuple[Pairs, list[UploadedFile]]:
    """A urlencoded or multipart body; 415 for any other media type."""
    media, options = parse_options_header(content_type or "")
    if media == URLENCODED:
        return read_urlencoded(body, options.get("charset")), []
    if media == MULTIPART:
        return read_multipart(body, options.get("boundary"), options.get("charset"), max_fields=max_fields)
    raise UnsupportedMediaType("send the form as urlencoded, multipart or JSON")
