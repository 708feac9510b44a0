"""`js2mail forms create|list|show|remove|snippet|prompt`."""

from __future__ import annotations

from typing import Annotated

import typer

from js2mail.cli import common
from js2mail.cli.common import AppFilter, AppOpt, JsonOpt, WorkspaceFilter, WorkspaceOpt

app = typer.Typer(help="Contact-form endpoints for static sites.", no_args_is_help=True)
IdArg = Annotated[str, typer.Argument(help="The form's public id.")]


def _show(info: dict[str, object]) -> None:
    common.table(None, ["field", "value"], [[k, v] for k, v in info.items()])


@app.command("create")
def create(
    workspace: WorkspaceOpt,
    application: AppOpt,
    to: Annotated[str, typer.Option("--to", help="Who receives the submissions.")],
    mailbox: Annotated[str | None, typer.Option("--mailbox", help="Send through this mailbox (default: the app's).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Shown in the mail subject.")] = None,
    redirect: Annotated[str | None, typer.Option("--redirect", help="Where to send the browser after a submit.")] = None,
    origin: Annotated[list[str] | None, typer.Option("--origin", help="Allowed site origin (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a form endpoint and print its public id."""
    from js2mail.service import forms
    from js2mail.service.mailboxes import sender_of

    with common.open_context() as ctx:
        info = forms.create_form_for(ctx, workspace, application, to=to, name=name, mailbox=mailbox,
                                     redirect=redirect, origins=origin)
        sender = sender_of(ctx, workspace, application)

    def human() -> None:
        typer.echo(info["id"])
        typer.echo(f"Form endpoint: {info['endpoint']}  (snippet: js2mail forms snippet {info['id']})", err=True)
        typer.echo(f"Submissions are mailed to {info['to']} through {info['mailbox']}." if info.get("mailbox")
                   else sender, err=True)

    common.output(info, as_json, human)


@app.command("list")
def list_(
    workspace: WorkspaceFilter = None,
    application: AppFilter = None,
    as_json: JsonOpt = False,
) -> None:
    """List form endpoints."""
    from js2mail.service import forms

    with common.open_context() as ctx:
        found = forms.list_forms(ctx, workspace=workspace, application=application)
    common.output(found, as_json, lambda: common.table(
        "Forms", ["id", "workspace", "app", "name", "to", "origins", "endpoint"],
        [[f["id"], f["workspace"], f["application"], f["name"], f["to"], ",".join(f["origins"]) or "any",  # type: ignore[arg-type]
          f["endpoint"]] for f in found]))


@app.command("show")
def show(public_id: IdArg, as_json: JsonOpt = False) -> None:
    """One form's settings."""
    from js2mail.service import forms

    with common.open_context() as ctx:
        info = forms.get_form(ctx, public_id)
    common.output(info, as_json, lambda: _show(info))


@app.command("remove")
def remove(public_id: IdArg, as_json: JsonOpt = False) -> None:
    """Delete a form endpoint; later submissions get 404."""
    from js2mail.service import forms

    with common.open_context() as ctx:
        info = forms.remove_form(ctx, public_id)
    common.output(info, as_json, lambda: typer.echo(f"Removed form {public_id}."))


@app.command("snippet")
def snippet(
    public_id: IdArg,
    flavor: Annotated[str, typer.Option("--flavor", help="plain, tailwind or bootstrap.")] = "plain",
    ajax: Annotated[bool, typer.Option("--ajax", help="Submit with fetch and show the result inline.")] = False,
) -> None:
    """Print an HTML form wired to the endpoint."""
    import js2mail.snippets as snippets
    from js2mail.errors import ValidationError
    from js2mail.service import forms

    if flavor not in snippets.FLAVORS:
        raise ValidationError(f"--flavor must be one of {', '.join(snippets.FLAVORS)}", code="invalid_flavor")
    with common.open_context() as ctx:
        forms.get_form(ctx, public_id)
        typer.echo(snippets.form_snippet(public_id=public_id, public_url=ctx.settings.public_url, flavor=flavor,
                                         ajax=ajax))


@app.command("prompt")
def prompt(
    public_id: IdArg,
    platform: Annotated[str, typer.Option("--platform", help="lovable, bolt, v0, cursor or generic.")] = "generic",
) -> None:
    """Print a copy-paste prompt that tells an AI site builder how to wire the form."""
    import js2mail.snippets as snippets
    from js2mail.errors import ValidationError
    from js2mail.service import forms

    if platform not in snippets.PLATFORMS:
        raise ValidationError(f"--platform must be one of {', '.join(snippets.PLATFORMS)}", code="invalid_platform")
    with common.open_context() as ctx:
        forms.get_form(ctx, public_id)
        typer.echo(snippets.builder_prompt(public_id=public_id, public_url=ctx.settings.public_url, platform=platform))
