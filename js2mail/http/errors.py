"""Domain errors → HTTP, at one edge. Every error body is `{"error": {"code", "message", "details"?}}`."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from js2mail.errors import Js2MailError, RateLimited, ServiceUnavailable, database_busy, is_database_busy

log = logging.getLogger("js2mail.http")

STATUS_BY_KIND = {
    "bad_request": 400,
    "validation": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "unavailable": 503,
    "config": 500,
    "crypto": 500,
    "provider": 502,
}

CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}

UNAUTHORIZED_BODY = {
    "error": {
        "code": "unauthorized",
        "message": "A valid API key is required: send it as X-Api-Key or Authorization: Bearer.",
    }
}


INTERNAL_ERROR = "Something went wrong on our side."


def error_object(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The envelope's `error` member: `details` only when there are some, each `{field, code, message}`."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = [detail_entry(d) for d in (details if isinstance(details, list) else [details])]
    return error


def form_error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """A contact form's JSON error: the same `error` object, beside `"status": "error"`."""
    return {"status": "error", "error": error_object(code, message, details)}


def error_response(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"error": error_object(code, message, details)}, status_code=status, media_type=MediaType.JSON,
                    headers=headers)


def error_body(error: dict[str, Any]) -> bytes:
    """The envelope's bytes, for the endpoints that answer without Litestar."""
    return msgspec.json.encode({"error": error})


def domain_error_parts(exc: Js2MailError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A domain error's status, `error` object and extra headers."""
    status = STATUS_BY_KIND.get(exc.kind, 400)
    if status >= 500 and status != 503:
        log.error("server-side error: %s (%s)", exc.message, exc.code)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, (RateLimited, ServiceUnavailable)) else {}
    return status, error_object(exc.code, exc.message, exc.details), headers


def domain_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, Js2MailError)
    status, error, headers = domain_error_parts(exc)
    return Response({"error": error}, status_code=status, media_type=MediaType.JSON, headers=headers or None)


def http_exception_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, ValidationException):
        cause = str(exc.detail or "")
        if "JSON" in cause or "decode" in cause.lower() or "Malformed" in cause:
            return error_response(400, "bad_json", "The request body is not valid JSON.")
        details = _extra(exc)
        message = f"{details[0]['field']}: {details[0]['message']}" if details else "The request is not valid."
        return error_response(422, "validation_error", message, details)
    if status >= 500:
        log.error("unhandled HTTP exception: %r", exc)
        return error_response(500, "internal_error", INTERNAL_ERROR)
    if status == 400 and "JSON is malformed" in str(exc.detail):
        return error_response(400, "bad_json", f"The request body is not valid JSON: {exc.detail}")
    code = CODE_BY_STATUS.get(status, "http_error")
    return error_response(status, code, str(exc.detail) if exc.detail else code, headers=exc.headers or None)


def _extra(exc: HTTPException) -> list[dict[str, str]] | None:
    """Litestar's validation entries (`{message, key, source}`) as the API's `details` entries."""
    extra = exc.extra
    entries = extra if isinstance(extra, list) else [extra] if isinstance(extra, dict) else []
    return [detail_entry(e) for e in entries] or None


def detail_entry(entry: object) -> dict[str, str]:
    """One `details` entry, `{field, code, message}`, as `js2mail.mail` writes them."""
    if not isinstance(entry, dict):
        return {"field": "", "code": "invalid_value", "message": str(entry)}
    return {"field": str(entry.get("field") or entry.get("key") or ""),
            "code": str(entry.get("code") or "invalid_value"),
            "message": str(entry.get("message") or "invalid value")}


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_database_busy(exc):  # another process holds SQLite's lock: busy, not broken
        return domain_error_handler(request, database_busy(exc))
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", INTERNAL_ERROR)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    Js2MailError: domain_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
