"""Public contact-form endpoints (`/f/<publicId>`) and the `/v1/forms` API.

JSON mode answers JSON only (never a redirect or HTML); HTML mode answers 303 redirects and small
HTML pages. Origins are checked before anything else is read, and the per-IP limit before the body.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, route
from litestar.enums import MediaType
from litestar.exceptions import HTTPException, SerializationException
from litestar.response import Redirect

from js2mail import form_body, forms
from js2mail.errors import Js2MailError, RateLimited, TooLarge, ValidationError
from js2mail.http import schemas
from js2mail.http.errors import STATUS_BY_KIND, form_error
from js2mail.models import Principal, is_json_media, media_type
from js2mail.ratelimit import TokenBuckets
from js2mail.service import Context
from js2mail.service import forms as svc

FORM_TAGS = ["forms"]


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The visitor's address. Behind a proxy listed in `[server] trusted_proxies`, uvicorn has already
    put the X-Forwarded-For client here (`serve` passes the list as `forwarded_allow_ips`): one
    mechanism, not two."""
    return request.client.host if request.client else "unknown"


def form_buckets(ctx: Context) -> TokenBuckets:
    """The per-visitor buckets of the form endpoints (one set per app, held in its state)."""
    per_minute = ctx.settings.forms.rate_per_minute
    return TokenBuckets(per_minute / 60.0, per_minute, ctx.clock, name="forms")


def _html_page(title: str, message: str) -> str:
    import html

    return (f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>{html.escape(title)}</title><body style='font-family:system-ui;max-width:32rem;margin:4rem auto'>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")


def _error(exc: Js2MailError, json_mode: bool, cors: dict[str, str]) -> Response[Any]:
    status = STATUS_BY_KIND.get(exc.kind, 400)
    headers = dict(cors)
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if json_mode:
        return Response(form_error(exc.code, exc.message, exc.details), status_code=status, headers=headers,
                        media_type=MediaType.JSON)
    return Response(_html_page("Your message was not sent", exc.message), status_code=status, headers=headers,
                    media_type=MediaType.HTML)


async def _read_pairs(request: Request[Any, Any, Any],
                      max_fields: int) -> tuple[list[tuple[str, str]], list[forms.UploadedFile]]:
    content_type = request.headers.get("content-type")
    try:
        body = await request.body()
    except HTTPException as exc:
        if exc.status_code == 413:
            raise TooLarge("the request body is too large", code="body_too_large") from None
        raise ValidationError(f"the body could not be read: {exc.detail}", code="malformed_body") from None
    if is_json_media(media_type(content_type)):
        try:
            data = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            raise ValidationError("the body is not valid JSON (or nested too deeply)", code="bad_json") from None
        return forms.pairs_from_json(data), []
    return form_body.read_form(content_type, body, max_fields=max_fields)


@route("/f/{public_id:str}", http_method=["OPTIONS"], tags=FORM_TAGS,
       summary="CORS preflight for a form (public)")
async def form_preflight(request: Request[Any, Any, Any], ctx: Context, public_id: str) -> Response[Any]:
    try:
        form = svc.public_form(ctx, public_id)
        origin = forms.check_origin(request.headers.get("origin"), None, form.origins)
    except Js2MailError as exc:
        return _error(exc, True, {})
    return Response(None, status_code=204, headers=forms.cors_headers(origin, form.origins, preflight=True))


@post("/f/{public_id:str}", tags=FORM_TAGS, summary="Submit a contact form (public)", status_code=200)
async def form_submit(request: Request[Any, Any, Any], ctx: Context, public_id: str) -> Response[Any]:
    headers = request.headers
    json_mode = forms.wants_json(headers.get("accept"), headers.get("content-type"), headers.get("x-requested-with"))
    cors: dict[str, str] = {}
    cfg = ctx.settings.forms
    try:
        form = svc.public_form(ctx, public_id)
        origin = forms.check_origin(headers.get("origin"), headers.get("referer"), form.origins)
        cors = forms.cors_headers(origin, form.origins, preflight=False)
        buckets: TokenBuckets = request.app.state.form_buckets
        decision = buckets.take(f"{client_ip(request)}|{public_id}")
        if not decision.allowed:
            raise RateLimited(f"too many submissions; try again in {decision.retry_after}s",
                              retry_after=decision.retry_after)
        pairs, files = await _read_pairs(request, cfg.max_fields)
        submission = forms.parse_submission(pairs, files, max_fields=cfg.max_fields, max_file_bytes=cfg.max_file_bytes,
                                            max_total_bytes=cfg.max_total_bytes)
        target = forms.redirect_target(next_url=submission.next_url, form_redirect=form.row["redirect_url"],
                                       allowed_origins=form.origins, request_origin=origin,
                                       thank_you_url=f"{ctx.settings.public_url}/f/{public_id}/thanks")
        await svc.submit(ctx, form, submission)
    except Js2MailError as exc:
        return _error(exc, json_mode, cors)
    if json_mode:
        return Response(forms.JSON_OK, status_code=200, headers=cors, media_type=MediaType.JSON)
    return Redirect(target, status_code=303, headers=cors)


@get("/f/{public_id:str}/thanks", tags=FORM_TAGS, summary="The built-in thank-you page (public)",
     media_type=MediaType.HTML, sync_to_thread=False)
def form_thanks(request: Request[Any, Any, Any]) -> str:
    return forms.thank_you_page(back_url=request.headers.get("referer"))


class FormCreateRequest(Request[Any, Any, Any]):
    """`POST /v1/forms`'s body, decoded like Litestar does, except that JSON nested deeper than
    msgspec recurses is a malformed body (400 `bad_json`, as for any JSON Litestar cannot decode)
    and unknown fields are refused as `/v1/send` refuses them (422, `unknown_field` details)."""

    async def json(self) -> Any:
        try:
            data = await super().json()
        except RecursionError:
            raise SerializationException("JSON is malformed: nested too deeply") from None
        if isinstance(data, dict):
            unknown = [str(k)[:60] for k in data if k not in schemas.FormCreate.__struct_fields__]
            if unknown:
                raise ValidationError(f"{unknown[0]}: not a field of /v1/forms", details=[
                    {"field": k, "code": "unknown_field", "message": "not a field of /v1/forms"} for k in unknown])
        return data


@post("/v1/forms", tags=FORM_TAGS, summary="Create a contact-form endpoint", status_code=201, sync_to_thread=True,
      request_class=FormCreateRequest)
def create_form(ctx: Context, principal: Principal, data: schemas.FormCreate) -> schemas.Form:
    return msgspec.convert(svc.create_form(ctx, principal, to=data.to, name=data.name, mailbox=data.mailbox,
                                           redirect=data.redirect, origins=data.origins), schemas.Form)


@get("/v1/forms", tags=FORM_TAGS, summary="List this application's forms", sync_to_thread=False)
def list_forms(ctx: Context, principal: Principal) -> schemas.FormList:
    return msgspec.convert({"data": svc.list_forms(ctx, app_id=principal.application_id)}, schemas.FormList)


@get("/v1/forms/{public_id:str}", tags=FORM_TAGS, summary="One form", sync_to_thread=False)
def get_form(ctx: Context, principal: Principal, public_id: str) -> schemas.Form:
    return msgspec.convert(svc.get_form(ctx, public_id, principal.application_id), schemas.Form)


@delete("/v1/forms/{public_id:str}", tags=FORM_TAGS, summary="Delete a form", status_code=200, sync_to_thread=True)
def delete_form(ctx: Context, principal: Principal, public_id: str) -> schemas.Form:
    """Answers the form as it was, with `status: "deleted"`."""
    removed = svc.remove_form(ctx, public_id, principal.application_id)
    return msgspec.convert({**removed, "status": "deleted"}, schemas.Form)


HANDLERS: list[Any] = [form_preflight, form_submit, form_thanks, create_form, list_forms, get_form, delete_form]
