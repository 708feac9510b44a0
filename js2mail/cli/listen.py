"""What `js2mail serve` checks and says before it starts: that the address can be bound (one clear
line instead of uvicorn's tracebacks), and what to do next on an empty home."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from js2mail.errors import Js2MailError

if TYPE_CHECKING:
    from js2mail.service import Context

README = Path(__file__).resolve().parents[2] / "README.md"


def port_range(value: int | None) -> int | None:
    """The --port flag's check: a TCP port is 1-65535 (0 would mean "any free port" to the OS)."""
    if value is not None and not 1 <= value <= 65535:
        import typer

        raise typer.BadParameter(f"{value} is not a port: use 1-65535")
    return value


def check_bindable(host: str, port: int) -> None:
    """Bind (and release) the address as uvicorn will; a one-line Js2MailError when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise Js2MailError(f"port {port} is in use: is another js2mail serve running? use --port",
                               code="port_in_use") from None
        reason = exc.strerror or str(exc)
        hint = "use --port above 1023, or run as a user allowed to" if exc.errno == errno.EACCES else \
            "use --host with an address of this machine (127.0.0.1, 0.0.0.0, ::)"
        raise Js2MailError(f"cannot listen on {host}:{port}: {reason}", code="cannot_bind", hint=hint) from None


def next_steps(ctx: Context) -> str | None:
    """On a home with no mailbox or no API key: the commands to run next, the URL and the docs."""
    from js2mail.service import keys, mailboxes

    has_mailbox = bool(mailboxes.list_mailboxes(ctx))
    has_key = bool(keys.list_keys(ctx))
    if has_mailbox and has_key:
        return None
    url = ctx.settings.public_url
    lines = ["Nothing can be sent yet. Next steps:"]
    if not has_mailbox:
        lines.append("  js2mail mailboxes add smtp --workspace acme --app shop --address you@example.com --host smtp.example.com "
                     "--port 587 --security starttls --password-stdin   (or: mailboxes add gmail|microsoft)")
    if not has_key:
        lines.append("  js2mail keys create --workspace acme --app shop      # prints js2_live_… once")
    lines.append(f"  then POST {url}/v1/send with header X-Api-Key (js2mail snippet --lang curl prints one)")
    docs = str(README) if README.exists() else "README.md in the js2mail source"
    lines.append(f"Docs: {docs} (Quick start); API reference: {url}/schema")
    return "\n".join(lines)
