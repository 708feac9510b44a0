"""A workspace ready to send, set up through the real CLI: what many end-to-end tests start from."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli
from tests.support.smtp_server import SmtpServer


def plain_mailbox_key(home: Path, smtp: SmtpServer, config: str, *, workspace: str = "acme", app: str = "shop",
                      address: str = "shop@example.com") -> str:
    """Write `config`, connect `smtp` (no TLS, no login: a loopback relay) as the application's
    default mailbox, and return a new API key for it."""
    (home / "config.toml").write_text(config)
    assert run_cli("mailboxes", "add", "smtp", "-w", workspace, "--app", app, "--address", address,
                   "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none", "--no-auth").code == 0
    return run_cli("keys", "create", "-w", workspace, "-a", app).out.strip()
