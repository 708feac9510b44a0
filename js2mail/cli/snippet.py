"""`js2mail snippet`: a `POST /v1/send` example that works as pasted once the key is filled in.

It is built from this install: the URL is the server's public URL (`[server] public_url`, else
`http://{host}:{port}` of the config), the body has no "from" when the application has a default
mailbox (the server sends from it), and the mail goes to that mailbox itself, so the first run lands
in your own inbox."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from js2mail.cli import common
from js2mail.cli.common import AppFilter, WorkspaceFilter


def _sender(mailboxes: list[dict[str, Any]], application: str | None) -> tuple[str | None, str | None, str]:
    """(from, to, note) for the snippet. `from` is None when a default mailbox will be used."""
    defaults = [m for m in mailboxes if (application in m["defaultFor"] if application else m["defaultFor"])]
    if defaults:
        m = defaults[0]
        apps = [f"{m['workspace']}/{a}" for a in m["defaultFor"] if not application or a == application]
        return None, m["address"], (f"No \"from\": js2mail sends from the default mailbox of {', '.join(apps)} "
                                    f"({m['address']}).\nThis first mail goes to that mailbox itself: change "
                                    "\"to\" for real use.")
    if mailboxes:
        m = mailboxes[0]
        return m["address"], m["address"], (f"Sends from {m['address']} (workspace {m['workspace']}) to itself:\n"
                                            "change \"to\" for real use.")
    return None, None, ""


def api_snippet(
    lang: Annotated[str, typer.Option("--lang", help="curl, python, node, php, go or ruby.")] = "curl",
    workspace: WorkspaceFilter = None,
    application: AppFilter = None,
) -> None:
    """Print a copy-paste example of POST /v1/send in a language, wired to this server and mailbox."""
    import js2mail.snippets as snippets
    from js2mail.errors import ValidationError
    from js2mail.service import mailboxes

    if lang not in snippets.LANGS:
        raise ValidationError(f"--lang must be one of {', '.join(snippets.LANGS)}", code="invalid_lang")
    with common.open_context() as ctx:
        found = mailboxes.list_mailboxes(ctx, workspace)
        public_url = ctx.settings.public_url
    from_addr, to_addr, note = _sender(found, application)
    if to_addr is None:
        typer.echo("No mailbox is connected yet: run `js2mail mailboxes add …` first, or this request answers "
                   "422 no_default_mailbox.", err=True)
    typer.echo(snippets.api_snippet(lang=lang, public_url=public_url, from_addr=from_addr, note=note,
                                    to_addr=to_addr or "customer@example.com",
                                    api_key="js2_live_..."), nl=False)
    typer.echo("Replace js2_live_... with your key (js2mail keys create prints one).", err=True)
