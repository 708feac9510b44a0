"""`POST /v1/send` answered as a plain ASGI endpoint, ahead of Litestar's router.

This is the one route where the framework's per-request work (request object, guards, signature
model, response object, exception middleware) cost more than accepting the mail itself, so the
front door (`js2mail.http.front_door`) hands authenticated `POST /v1/send` requests straight here.
The Litestar handler in `routes.py` only carries the route's schema and never runs; every answer
— success, replay or error — has the same status codes and JSON envelope as the rest of the API
(`js2mail.http.errors`).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from js2mail.errors import BadRequest, Js2MailError, TooLarge, UnsupportedMediaType, database_busy, is_database_busy
from js2mail.http.errors import INTERNAL_ERROR, domain_error_parts, error_body, error_object
from js2mail.models import Principal, is_json_media
from js2mail.service import Context
from js2mail.service import messages as svc

log = logging.getLogger("js2mail.http")

PATH = "/v1/send"  # every spelling Litestar would route here (`/v1/send/`, `/v1//send`) comes here instead
_JSON = (b"content-type", b"application/json")


class ClientGone(Exception):
    """The client disconnected before its body arrived; nothing to answer."""


async def read_body(receive: Any, limit: int, declared: int | None) -> bytes:
    """The request body, refusing (413) as soon as it is known to exceed `limit` bytes."""
    if declared is not None and declared > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes", code="too_large")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes", code="too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _headers(scope: dict[str, Any]) -> tuple[bytes | None, bytes | None, bytes | None]:
    ctype = length = idem = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            ctype = value
        elif name == b"content-length":
            length = value
        elif name == b"idempotency-key":
            idem = value
    return ctype, length, idem


async def handle(ctx: Context, principal: Principal, scope: dict[str, Any], receive: Any, send: Any) -> None:
    status, body, extra = await _answer(ctx, principal, scope, receive)
    if status == 0:
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _answer(ctx: Context, principal: Principal, scope: dict[str, Any],
                  receive: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    try:
        ctype, length, idem = _headers(scope)
        if not is_json_media(ctype.decode("latin-1") if ctype is not None else None):
            raise UnsupportedMediaType("send the request body as JSON (Content-Type: application/json)")
        declared = int(length) if length is not None and length.isdigit() else None
        raw = await read_body(receive, ctx.settings.server.max_body_bytes, declared)
        try:
            payload = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec follows
            raise BadRequest("The request body is not valid JSON.", code="bad_json") from None
        outcome = await svc.send(ctx, principal, payload, idem.decode("latin-1") if idem is not None else None)
    except ClientGone:
        return 0, b"", []
    except Js2MailError as exc:
        return _error_answer(exc)
    except Exception as exc:  # a bug: logged, answered like every other unhandled error, never a traceback
        if is_database_busy(exc):  # not a bug: SQLite busy outside the write path (a read during recovery)
            return _error_answer(database_busy(exc))
        log.exception("unhandled error in POST /v1/send")
        return 500, error_body(error_object("internal_error", INTERNAL_ERROR)), []
    headers = [(b"idempotent-replayed", b"true")] if outcome.replayed else []
    return outcome.status_code, msgspec.json.encode(outcome.body), headers


def _error_answer(exc: Js2MailError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    status, error, extra = domain_error_parts(exc)
    return status, error_body(error), [(k.lower().encode(), v.encode()) for k, v in extra.items()]
