"""The OpenAPI document served at `/schema/openapi.json`: Litestar builds it from the handlers and
msgspec Structs, and `finish` — one pure function over the table below — completes it with what
Litestar cannot see: msgspec's exact schemas of the Structs, every status a route answers (with the real error envelope and, where the
set is closed, its `code`s), the rate-limit/idempotency/retry headers, per-route security (public
routes have none), the contact form's three request bodies, operation ids and stateful links.

`finish` refuses a document whose operations differ from the table, so a new route cannot be
served undocumented.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RapidocRenderPlugin, ScalarRenderPlugin, StoplightRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from js2mail.http import schemas

Codes = tuple[str, ...] | None  # None: an open set (the `details` say what is wrong)

BUSY = ("database_busy", "server_busy")
AUTH_ERRORS: dict[int, Codes] = {401: ("unauthorized",), 429: ("rate_limited",), 503: BUSY}
BODY_ERRORS: dict[int, Codes] = {400: ("bad_json",), 413: ("too_large",), 422: None}


@dataclass(frozen=True)
class Route:
    operation_id: str
    errors: dict[int, Codes]
    public: bool = False
    links: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name → (operationId, parameter, body field)


ROUTES: dict[tuple[str, str], Route] = {
    ("get", "/healthz"): Route("healthz", {}, public=True),
    ("get", "/readyz"): Route("readyz", {503: BUSY}, public=True),
    ("post", "/v1/send"): Route("sendMail", {
        **AUTH_ERRORS, **BODY_ERRORS,
        400: ("bad_json", "invalid_idempotency_key", "idempotency_key_mismatch"),
        413: ("too_large", "message_too_large"),
        415: ("unsupported_media_type",)},
        links={"GetMessage": ("getMessage", "message_id", "id"), "CancelMessage": ("cancelMessage", "message_id", "id")}),
    ("get", "/v1/messages"): Route("listMessages", {**AUTH_ERRORS, 400: ("invalid_cursor",), 422: None}),
    ("get", "/v1/messages/{message_id}"): Route("getMessage", {**AUTH_ERRORS, 404: ("message_not_found",)}),
    ("delete", "/v1/messages/{message_id}"): Route("cancelMessage", {
        **AUTH_ERRORS, 404: ("message_not_found",), 409: ("not_cancellable",)}),
    ("post", "/v1/forms"): Route("createForm", {**AUTH_ERRORS, **BODY_ERRORS},
                                 links={"GetForm": ("getForm", "public_id", "id"),
                                        "DeleteForm": ("deleteForm", "public_id", "id")}),
    ("get", "/v1/forms"): Route("listForms", AUTH_ERRORS),
    ("get", "/v1/forms/{public_id}"): Route("getForm", {**AUTH_ERRORS, 404: ("form_not_found",)}),
    ("delete", "/v1/forms/{public_id}"): Route("deleteForm", {**AUTH_ERRORS, 404: ("form_not_found",)}),
    ("get", "/v1/webhooks/{endpoint_id}/deliveries"): Route("listWebhookDeliveries", {
        **AUTH_ERRORS, 404: ("webhook_not_found",), 422: None}),
    ("post", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): Route("redeliverWebhookDelivery", {
        **AUTH_ERRORS, 404: ("webhook_not_found", "delivery_not_found"),
        409: ("payload_gone", "delivery_pending", "endpoint_disabled")}),
    ("options", "/f/{public_id}"): Route("preflightForm", {403: ("origin_not_allowed",), 404: ("form_not_found",),
                                                           503: BUSY}, public=True),
    ("get", "/f/{public_id}/thanks"): Route("formThanks", {}, public=True),
    ("post", "/f/{public_id}"): Route("submitForm", {
        403: ("origin_not_allowed",), 404: ("form_not_found",),
        413: ("body_too_large", "file_too_large", "upload_too_large"), 415: ("unsupported_charset",),
        422: None, 429: ("rate_limited",), 503: BUSY}, public=True),
}

_FORM = "/f/{public_id}"
METHODS = ("get", "post", "put", "patch", "delete", "options")


def _header(description: str, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string"}}


HEADERS = {
    "RateLimit-Policy": _header('The bucket: `"default";q=<burst>;w=<seconds>`.'),
    "RateLimit": _header('What is left: `"default";r=<remaining>;t=<seconds>`.'),
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "WWW-Authenticate": _header("`Bearer`."),
    "Idempotent-Replayed": _header("`true` when this is the stored answer to an earlier request with the same "
                                   "idempotency key.", required=False),
    "Location": _header("Where the browser goes next: `_next`, the form's redirect, or the thank-you page."),
}

ERROR_DETAIL = {
    "type": "object", "required": ["field", "code", "message"],
    "properties": {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
}


def _error_object(codes: Codes) -> dict[str, Any]:
    code: dict[str, Any] = {"type": "string"} if codes is None else {"type": "string", "enum": list(codes)}
    return {"type": "object", "required": ["code", "message"], "properties": {
        "code": code, "message": {"type": "string"},
        "details": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}}}}


def _error_response(status: int, codes: Codes, method: str, path: str) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if path.startswith("/v1/") and status != 503:
        headers["RateLimit-Policy"] = HEADERS["RateLimit-Policy"]
        if status != 401:
            headers["RateLimit"] = HEADERS["RateLimit"]
    if status == 401:
        headers["WWW-Authenticate"] = HEADERS["WWW-Authenticate"]
    if status in (429, 503):
        headers["Retry-After"] = HEADERS["Retry-After"]
    if path == _FORM:
        content = {"application/json": {"schema": {"type": "object", "required": ["status", "error"], "properties": {
            "status": {"type": "string", "enum": ["error"]}, "error": _error_object(codes)}}}}
        description = "The form's error as JSON."
        if method == "post":
            content["text/html"] = {"schema": {"type": "string"}}
            description = "JSON mode: the error as JSON; HTML mode: a small HTML page."
    else:
        content = {"application/json": {"schema": {"type": "object", "required": ["error"],
                                                   "properties": {"error": _error_object(codes)}}}}
        description = "The error envelope." + ("" if codes is None else " Codes: " + ", ".join(codes) + ".")
    return {"description": description, "headers": headers, "content": content}


FORM_FIELDS = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in
                   ("name", "email", "message", "_replyto", "_subject", "_next", "_gotcha")},
    "additionalProperties": {"type": "string"},
}

FORM_BODY = {
    "required": False,
    "description": "The visitor's fields, in the order they are to be mailed. Multipart file parts become "
                   "attachments. A JSON body (or `Accept: application/json`) answers JSON; otherwise HTML / 303.",
    "content": {
        "application/x-www-form-urlencoded": {"schema": FORM_FIELDS},
        "multipart/form-data": {"schema": FORM_FIELDS},
        "application/json": {"schema": FORM_FIELDS},
    },
}

FORM_SUBMITTED = {
    "200": {"description": "JSON mode: queued (a filled honeypot gets the same answer, and nothing is sent).",
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["status"], "properties": {"status": {"type": "string",
                                                                                    "enum": ["queued"]}}}}}},
    "303": {"description": "HTML mode: queued; the browser goes to `Location`.", "headers": {"Location": HEADERS["Location"]}},
}


def _finish_operation(op: dict[str, Any], method: str, path: str, route: Route) -> None:
    op["operationId"] = route.operation_id
    if route.public:
        op["security"] = []
    responses = {code: answer for code, answer in op.get("responses", {}).items() if code.startswith("2")}
    if (method, path) == ("post", _FORM):
        responses = copy.deepcopy(FORM_SUBMITTED)
        op["requestBody"] = copy.deepcopy(FORM_BODY)
    if (method, path) == ("options", _FORM):
        responses = {"204": {"description": "Allowed: the CORS headers for the requesting origin."}}
    for answer in responses.values():
        headers = answer.setdefault("headers", {})
        if path.startswith("/v1/"):
            headers.update({"RateLimit-Policy": HEADERS["RateLimit-Policy"], "RateLimit": HEADERS["RateLimit"]})
        if (method, path) == ("post", "/v1/send"):
            headers["Idempotent-Replayed"] = HEADERS["Idempotent-Replayed"]
        if route.links:
            answer["links"] = {name: {"operationId": target, "parameters": {param: f"$response.body#/{member}"}}
                               for name, (target, param, member) in route.links.items()}
    for status, codes in sorted(route.errors.items()):
        responses[str(status)] = _error_response(status, codes, method, path)
    op["responses"] = responses


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """The served document: Litestar's, completed from `ROUTES` (the input is not modified)."""
    doc = copy.deepcopy(document)
    seen: set[tuple[str, str]] = set()
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            route = ROUTES.get((method, path))
            if route is None:
                raise LookupError(f"{method.upper()} {path} is served but not in js2mail.http.contract.ROUTES")
            seen.add((method, path))
            _finish_operation(op, method, path, route)
    if missing := set(ROUTES) - seen:
        raise LookupError(f"ROUTES documents operations the app does not serve: {sorted(missing)}")
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(struct_schemas())
    components["ErrorDetail"] = ERROR_DETAIL
    return doc


def struct_schemas() -> dict[str, Any]:
    """msgspec's own JSON Schema of the API's Structs (it keeps every `Meta` constraint, also inside
    unions, where Litestar's generator drops them), replacing Litestar's components of the same name."""
    structs = [obj for obj in vars(schemas).values() if isinstance(obj, type) and issubclass(obj, msgspec.Struct)
               and obj.__module__ == schemas.__name__]
    return msgspec.json.schema_components(structs, ref_template="#/components/schemas/{name}")[1]


class FinishedJsonPlugin(JsonRenderPlugin):
    """`/schema/openapi.json`: the finished document, built once."""

    _rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = self.render_json(request, finish(openapi_schema))
        return self._rendered


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="js2mail",
        version=version,
        path="/schema",
        components=Components(security_schemes={
            "ApiKey": SecurityScheme(type="apiKey", name="X-Api-Key", security_scheme_in="header"),
            "Bearer": SecurityScheme(type="http", scheme="bearer"),
        }),
        security=[{"ApiKey": []}, {"Bearer": []}],
        # Only pages that load /schema/openapi.json (Redoc, Swagger UI and YAML would embed Litestar's
        # unfinished document).
        render_plugins=[ScalarRenderPlugin(path=["/", "/scalar"]), StoplightRenderPlugin(), RapidocRenderPlugin(),
                        FinishedJsonPlugin()],
    )
