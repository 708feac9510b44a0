"""Gmail and Microsoft 365 mailboxes: connect through OAuth from the terminal, keep the grant sealed,
and build their providers. The grant (refresh token / MSAL token cache) is stored only encrypted."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from js2mail.service import Context
from js2mail.service.mailboxes import add_mailbox


def connect_gmail(ctx: Context, *, workspace: str, address: str, client_secrets: str, port: int = 0,
                  open_browser: bool = True, display_name: str | None = None, daily_quota: int | None = None,
                  app: str | None = None, echo: Callable[[str], None] = print,
                  prompt: Callable[[str], str] = input) -> dict[str, Any]:
    import js2mail.oauth as oauth

    grant = oauth.connect_gmail(client_secrets, config=ctx.settings.providers.google, port=port,
                                open_browser=open_browser, echo=echo, prompt=prompt)
    secret = json.dumps({"client_id": grant.client_id, "client_secret": grant.client_secret,
                         "refresh_token": grant.refresh_token}).encode()
    settings = {"client_id": grant.client_id, "scopes": grant.scopes}
    return add_mailbox(ctx, workspace=workspace, provider="gmail", address=address, settings=settings, secret=secret,
                       display_name=display_name, daily_quota=daily_quota, app=app)


def connect_microsoft(ctx: Context, *, workspace: str, client_id: str, tenant: str = "common",
                      device_code: bool = False, address: str | None = None, display_name: str | None = None,
                      daily_quota: int | None = None, app: str | None = None,
                      echo: Callable[[str], None] = print, open_browser: bool = True,
                      msal_http_client: object | None = None) -> dict[str, Any]:
    import js2mail.oauth as oauth
    from js2mail.errors import ValidationError

    grant = oauth.connect_microsoft(client_id, tenant=tenant, config=ctx.settings.providers.microsoft,
                                    device_code=device_code, echo=echo, open_browser=open_browser,
                                    msal_http_client=msal_http_client)
    mailbox_address = address or grant.address
    if not mailbox_address:
        raise ValidationError("the sign-in did not name a mailbox; pass --address", code="address_unknown")
    settings = {"client_id": client_id, "tenant": tenant}
    return add_mailbox(ctx, workspace=workspace, provider="microsoft", address=mailbox_address, settings=settings,
                       secret=grant.cache, display_name=display_name, daily_quota=daily_quota, app=app)
