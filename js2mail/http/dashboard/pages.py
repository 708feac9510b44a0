"""Dashboard routes: thin handlers that call the same services as the CLI and the API, and
render their answers. Every route but the sign-in link needs a session (security.require_session)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.enums import MediaType
from litestar.response import Redirect, Template

from js2mail.http.dashboard import chart as chart_svg
from js2mail.http.dashboard import security
from js2mail.http.dashboard.security import COOKIE, context_of, session_of
from js2mail.models import MESSAGE_STATUSES
from js2mail.redact import redact
from js2mail.service import dashboard as svc

Req = Request[Any, Any, Any]
NAV = [("overview", "/dashboard", "Overview"), ("messages", "/dashboard/messages", "Messages"),
       ("keys", "/dashboard/keys", "API keys"), ("mailboxes", "/dashboard/mailboxes", "Mailboxes"),
       ("forms", "/dashboard/forms", "Forms"), ("webhooks", "/dashboard/webhooks", "Webhooks"),
       ("data", "/dashboard/data", "Settings → Data")]


# GET pages run in a worker thread (sync_to_thread=True): the overview and the log scan the send log,
# and SQLite releases the GIL while it reads, so the event loop serving /v1 never waits for them.


def render(request: Req, template: str, status: int = 200, **context: Any) -> Template:
    session = session_of(request)
    ctx = context_of(request)
    return Template(template_name=template, status_code=status, media_type=MediaType.HTML, context={
        "session": session, "csrf": session.csrf, "nav": NAV, "workspaces": svc.workspaces(ctx, session),
        "fragment": request.headers.get("hx-request") == "true", **context})


async def form_data(request: Req) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


_BAD_LINK = {"title": "This sign-in link does not work",
             "message": "It may have expired or been used already. Run `js2mail dashboard link` on the server "
                        "for a new one."}


@get("/sign-in", opt={"public": True}, sync_to_thread=False)  # one indexed look-up
def sign_in_page(request: Req, token: str = "") -> Template:
    """The link's landing page: a button that signs in. Opening the link uses nothing up (a chat
    app's link preview cannot spend it), and the sign-in POST starts on this site, so the redirect
    that follows is a same-site navigation, which SameSite=Strict cookies travel with even when the
    link itself was clicked on another site."""
    if not svc.link_is_live(context_of(request), token):
        return Template(template_name="message.html", status_code=403, media_type=MediaType.HTML, context=_BAD_LINK)
    return Template(template_name="sign_in.html", media_type=MediaType.HTML, context={"token": token})


@post("/sign-in", opt={"public": True}, status_code=303)
async def sign_in(request: Req) -> Response[Any]:
    ctx = context_of(request)
    token = (await form_data(request)).get("token", "")
    session_token = svc.redeem_link(ctx, token)
    if session_token is None:
        return Template(template_name="message.html", status_code=403, media_type=MediaType.HTML,
                        context=_BAD_LINK)  # type: ignore[return-value]
    response: Response[Any] = Redirect("/dashboard", status_code=303)
    response.set_cookie(COOKIE, session_token, path="/dashboard", httponly=True, samesite="strict",
                        secure=ctx.settings.public_url.startswith("https://"), max_age=int(svc.SESSION_SECONDS))
    return response


@post("/sign-out", status_code=200)
async def sign_out(request: Req) -> Response[Any]:
    svc.revoke_session(context_of(request), session_of(request).id)
    response: Response[Any] = Template(template_name="message.html", media_type=MediaType.HTML, context={
        "title": "Signed out", "message": "This dashboard session is closed."})  # type: ignore[assignment]
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


@get("/", sync_to_thread=True)
def overview(request: Req) -> Template:
    data = svc.overview(context_of(request), session_of(request))
    return render(request, "overview.html", page="overview", data=data, chart=chart_svg.bars(data["chart"]))


@get("/messages", sync_to_thread=True)
def messages(request: Req, app: str = "", status: str = "", domain: str = "", since: str = "") -> Template:
    ctx, session = context_of(request), session_of(request)
    found = svc.find_messages(ctx, session, app_id=app, status=status, domain=domain, since=since)
    filters = {"app": app, "status": status, "domain": domain, "since": since}
    template = "messages_rows.html" if request.headers.get("hx-target") == "message-rows" else "messages.html"
    return render(request, template, page="messages", messages=found, filters=filters, statuses=MESSAGE_STATUSES,
                  applications=svc.applications(ctx, session), since_choices=list(svc.SINCE_CHOICES))


@get("/messages/{message_id:str}", sync_to_thread=True)
def message(request: Req, message_id: str) -> Template:
    found = svc.message_in_scope(context_of(request), session_of(request), message_id)
    return render(request, "message_detail.html", page="messages", m=found)


@post("/messages/{message_id:str}/cancel", status_code=200)
async def cancel(request: Req, message_id: str) -> Template:
    from js2mail.service import messages as message_svc

    ctx = context_of(request)
    found = svc.message_in_scope(ctx, session_of(request), message_id)
    await message_svc.cancel_message(ctx, found["applicationId"], message_id)
    return render(request, "message_detail.html", page="messages", m=svc.message_in_scope(ctx, session_of(request),
                                                                                           message_id))


@get("/keys", sync_to_thread=True)
def keys_page(request: Req) -> Template:
    from js2mail.service import keys

    session = session_of(request)
    return render(request, "keys.html", page="keys", keys=keys.list_keys(context_of(request), session.workspace))


def _writable_workspace(request: Req, workspace: str) -> None:
    session = session_of(request)
    if session.workspace_id is not None:
        svc.check_workspace(context_of(request), session, workspace)


@post("/keys", status_code=200)
async def create_key(request: Req) -> Template:
    from js2mail.service import keys

    data = await form_data(request)
    workspace, application = data.get("workspace", ""), data.get("application", "")
    _writable_workspace(request, workspace)
    created = keys.create_key(context_of(request), workspace, application, data.get("name") or None)
    return render(request, "key_created.html", key=created.key, info=created.info, replaces=None,
                  keys=keys.list_keys(context_of(request), session_of(request).workspace))


@post("/keys/{prefix:str}/rotate", status_code=200)
async def rotate_key(request: Req, prefix: str) -> Template:
    from js2mail.service import keys

    ctx = context_of(request)
    svc.key_in_scope(ctx, session_of(request), prefix)
    data = await form_data(request)
    created = keys.rotate_key(ctx, prefix, keys.parse_duration(data.get("grace") or "0"))
    return render(request, "key_created.html", key=created.key, info=created.info, replaces=prefix,
                  grace=data.get("grace") or "0", keys=keys.list_keys(ctx, session_of(request).workspace))


@post("/keys/{prefix:str}/revoke", status_code=200)
async def revoke_key(request: Req, prefix: str) -> Template:
    from js2mail.service import keys

    ctx = context_of(request)
    svc.key_in_scope(ctx, session_of(request), prefix)
    info = keys.revoke_key(ctx, prefix)
    return render(request, "notice.html", message=f"Key {info['prefix']} is revoked.",
                  keys=keys.list_keys(ctx, session_of(request).workspace))


@get("/mailboxes", sync_to_thread=True)
def mailboxes_page(request: Req) -> Template:
    data = svc.overview(context_of(request), session_of(request))
    return render(request, "mailboxes.html", page="mailboxes", mailboxes=data["mailboxes"])


@post("/mailboxes/test", status_code=200)
async def mailbox_test(request: Req) -> Template:
    from js2mail.service import mailboxes

    data = await form_data(request)
    ctx = context_of(request)
    workspace, _, address = data.get("mailbox", "").partition(" ")
    row = svc.mailbox_in_scope(ctx, session_of(request), workspace, address)
    result = await mailboxes.send_test(ctx, workspace, row["address"], data.get("to", ""))
    domain = data.get("to", "").rpartition("@")[2]
    return render(request, "notice.html", message=f"Test mail accepted for @{domain}: {redact(result['response'])}")


@get("/forms", sync_to_thread=True)
def forms_page(request: Req) -> Template:
    from js2mail.service import forms

    ctx, session = context_of(request), session_of(request)
    found = [f for ws in svc.workspaces(ctx, session) for f in forms.list_forms(ctx, workspace=ws)]
    return render(request, "forms.html", page="forms", forms=found, applications=svc.applications(ctx, session))


def _form_in_scope(request: Req, public_id: str) -> dict[str, Any]:
    from js2mail.service import forms

    ctx = context_of(request)
    info = forms.get_form(ctx, public_id)
    svc.check_workspace(ctx, session_of(request), info["workspace"])
    return info


@post("/forms", status_code=200)
async def create_form(request: Req) -> Template:
    from js2mail.service import forms

    data = await form_data(request)
    workspace = data.get("workspace", "")
    _writable_workspace(request, workspace)
    origins = [o for o in data.get("origin", "").split() if o]
    info = forms.create_form_for(context_of(request), workspace, data.get("application", ""), to=data.get("to", ""),
                                 name=data.get("name") or None, origins=origins or None)
    return render(request, "form_created.html", form=info)


@get("/forms/{public_id:str}", sync_to_thread=True)
def form_page(request: Req, public_id: str) -> Template:
    from js2mail import snippets

    info = _form_in_scope(request, public_id)
    url = context_of(request).settings.public_url
    flavors = [{"name": f, "html": snippets.form_snippet(public_id=public_id, public_url=url, flavor=f, ajax=True)}
               for f in snippets.FLAVORS]
    prompts = [{"name": p, "text": snippets.builder_prompt(public_id=public_id, public_url=url, platform=p)}
               for p in snippets.PLATFORMS]
    return render(request, "form_detail.html", page="forms", form=info, flavors=flavors, prompts=prompts)


@get("/forms/{public_id:str}/preview/{flavor:str}", sync_to_thread=True, opt={security.FRAMEABLE: True})
def form_preview(request: Req, public_id: str, flavor: str) -> Response[Any]:
    """The snippet as a page of its own, for the sandboxed iframe of the form page (no script runs)."""
    from js2mail import snippets
    from js2mail.errors import NotFound

    _form_in_scope(request, public_id)
    if flavor not in snippets.FLAVORS:
        raise NotFound(f"no flavor {flavor!r}", code="flavor_not_found")
    html = snippets.form_snippet(public_id=public_id, public_url=context_of(request).settings.public_url, flavor=flavor)
    return Response(f"<!doctype html><html lang=en><meta charset=utf-8><title>{flavor} preview</title>"
                    f"<body>{html}</body></html>", media_type=MediaType.HTML)


@get("/webhooks", sync_to_thread=True)
def webhooks_page(request: Req) -> Template:
    from js2mail.service import webhooks

    ctx, session = context_of(request), session_of(request)
    found = [e for ws in svc.workspaces(ctx, session) for e in webhooks.list_endpoints(ctx, ws)]
    return render(request, "webhooks.html", page="webhooks", endpoints=found)


@get("/webhooks/{endpoint_id:str}", sync_to_thread=True)
def webhook_page(request: Req, endpoint_id: str) -> Template:
    return _webhook_detail(request, endpoint_id, "")


@post("/webhooks/{endpoint_id:str}/rotate-secret", status_code=200)
async def webhook_rotate(request: Req, endpoint_id: str) -> Template:
    from js2mail.service import keys, webhooks

    ctx = context_of(request)
    svc.endpoint_in_scope(ctx, session_of(request), endpoint_id)
    data = await form_data(request)
    grace = data.get("grace") or "0"
    rotated = webhooks.rotate_secret(ctx, endpoint_id, keys.parse_duration(grace))
    return render(request, "secret_created.html", endpoint=rotated, grace=grace)


@post("/webhooks/{endpoint_id:str}/test", status_code=200)
async def webhook_test(request: Req, endpoint_id: str) -> Template:
    from js2mail.service import webhooks

    ctx = context_of(request)
    svc.endpoint_in_scope(ctx, session_of(request), endpoint_id)
    result = await webhooks.send_test(ctx, endpoint_id)
    outcome = (f"delivered (HTTP {result['status']})" if result["delivered"]
               else f"not delivered: {result['error'] or 'HTTP ' + str(result['status'])}")
    return render(request, "notice.html", message=f"Test event {outcome}.")


REDELIVER_SINCE = ("1h", "24h", "3d", "7d")  # what `enable` offers to send again


def _webhook_detail(request: Req, endpoint_id: str, notice: str) -> Template:
    endpoint = svc.endpoint_in_scope(context_of(request), session_of(request), endpoint_id)
    return render(request, "webhook_detail.html", page="webhooks", e=endpoint, notice=notice,
                  redeliver_since=REDELIVER_SINCE)


@post("/webhooks/{endpoint_id:str}/deliveries/{delivery_id:str}/redeliver", status_code=200)
async def webhook_redeliver(request: Req, endpoint_id: str, delivery_id: str) -> Template:
    from js2mail.service import webhooks

    ctx = context_of(request)
    svc.endpoint_in_scope(ctx, session_of(request), endpoint_id)
    await webhooks.redeliver(ctx, endpoint_id, delivery_id)
    return _webhook_detail(request, endpoint_id, f"Redelivering {delivery_id}: it is sent again shortly.")


@post("/webhooks/{endpoint_id:str}/enable", status_code=200)
async def webhook_enable(request: Req, endpoint_id: str) -> Template:
    from js2mail.errors import ValidationError
    from js2mail.service import keys, webhooks

    ctx = context_of(request)
    svc.endpoint_in_scope(ctx, session_of(request), endpoint_id)
    since = (await form_data(request)).get("redeliver_since", "")
    if since and since not in REDELIVER_SINCE:
        raise ValidationError(f"redeliver_since must be one of {', '.join(REDELIVER_SINCE)}",
                              code="invalid_redeliver_since")
    info = await webhooks.enable(ctx, endpoint_id, ctx.clock.now() - keys.parse_duration(since) if since else None)
    notice = f"Enabled {endpoint_id}."
    if "redelivery" in info:
        notice += (f" Redelivering {len(info['redelivery']['redelivered'])} failed delivery(ies) since {since} ago;"
                   f" {len(info['redelivery']['payloadGone'])} past the redelivery window cannot be.")
    return _webhook_detail(request, endpoint_id, notice)


@post("/webhooks/{endpoint_id:str}/disable", status_code=200)
async def webhook_disable(request: Req, endpoint_id: str) -> Template:
    from js2mail.service import webhooks

    ctx = context_of(request)
    svc.endpoint_in_scope(ctx, session_of(request), endpoint_id)
    await webhooks.disable(ctx, endpoint_id, "disabled from the dashboard")
    return _webhook_detail(request, endpoint_id, f"Disabled {endpoint_id}: nothing is sent to it until it is enabled.")


@get("/data", sync_to_thread=True)
def data_page(request: Req) -> Template:
    return render(request, "data.html", page="data")


@get("/data/{workspace:str}/export", sync_to_thread=True)
def export(request: Req, workspace: str) -> Response[Any]:
    from js2mail.service import ops

    ctx = context_of(request)
    svc.check_workspace(ctx, session_of(request), workspace)
    return Response(ops.export_workspace(ctx, workspace), media_type=MediaType.JSON,
                    headers={"Content-Disposition": f'attachment; filename="js2mail-{workspace}-export.json"'})


@post("/data/{workspace:str}/delete", status_code=200)
async def delete_workspace(request: Req, workspace: str) -> Template:
    from js2mail.service import ops

    ctx = context_of(request)
    svc.check_workspace(ctx, session_of(request), workspace)
    data = await form_data(request)
    result = ops.delete_workspace(ctx, workspace, data.get("confirm"))
    counts = ", ".join(f"{n} {t}" for t, n in result["deleted"].items() if n) or "nothing else was in it"
    return Template(template_name="notice.html", media_type=MediaType.HTML,
                    context={"message": f"Deleted workspace {workspace}: {counts}."})


def routers() -> list[Any]:
    from litestar.static_files import create_static_files_router

    from js2mail.http.dashboard import HERE

    pages = Router(
        path="/dashboard",
        route_handlers=[sign_in_page, sign_in, sign_out, overview, messages, message, cancel, keys_page, create_key, rotate_key,
                        revoke_key, mailboxes_page, mailbox_test, forms_page, create_form, form_page,
                        form_preview, webhooks_page, webhook_page, webhook_rotate, webhook_test,
                        webhook_redeliver, webhook_enable, webhook_disable, data_page, export,
                        delete_workspace],
        guards=[security.require_session],
        middleware=[security.security_headers],
        exception_handlers=security.EXCEPTION_HANDLERS,
        include_in_schema=False,
    )
    static = create_static_files_router(path="/dashboard/static", directories=[HERE / "static"],
                                        middleware=[security.security_headers], include_in_schema=False)
    return [pages, static]

