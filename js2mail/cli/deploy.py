"""`js2mail deploy systemd`: a hardened systemd unit filled in for this machine (docs/deploy.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from js2mail.cli import common

app = typer.Typer(help="Run js2mail as a service.", no_args_is_help=True)
PRIVATE_ROOTS = ("/home", "/root", "/run/user")


def executable() -> list[str]:
    """How to start this very js2mail: the `js2mail` script beside this Python, else `python -m js2mail`."""
    script = Path(sys.executable).with_name("js2mail")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "js2mail"]


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def render_unit(*, user: str, home: Path, host: str, port: int, credential: Path, command: list[str],
                log_format: str = "text") -> str:
    home_s, cred = str(home), str(credential)
    exec_start = " ".join(shlex.quote(part) for part in [*command, "serve", "--host", host, "--port", str(port),
                                                          "--log-format", log_format])
    # /home, /root and /run/user are hidden from the service unless something it needs lives there
    protect_home = "read-only" if _under(home_s, PRIVATE_ROOTS) or _under(command[0], PRIVATE_ROOTS) else "yes"
    state_dir = home_s.removeprefix("/var/lib/") if home_s.startswith("/var/lib/") else None
    low_port = port < 1024
    lines = [
        "# js2mail: written by `js2mail deploy systemd`; see docs/deploy.md",
        "[Unit]",
        "Description=js2mail transactional email API",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"User={user}",
        f"Group={user}",
        f"Environment=JS2MAIL_HOME={home_s}",
        "Environment=PYTHONUNBUFFERED=1",
        # The master key: read by systemd (as root) from a file the service user cannot read, and
        # handed over in $CREDENTIALS_DIRECTORY, which js2mail reads first.
        f"LoadCredential=js2mail-master-key:{cred}",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        "RestartSec=2s",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=45s",  # serve drains in-flight sends and requests for up to 30 s
        "UMask=0077",
        *([f"StateDirectory={state_dir}", "StateDirectoryMode=0700"] if state_dir else []),
        f"ReadWritePaths={home_s}",
        "ProtectSystem=strict",
        f"ProtectHome={protect_home}",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "NoNewPrivileges=yes",
        f"CapabilityBoundingSet={'CAP_NET_BIND_SERVICE' if low_port else ''}",
        *(["AmbientCapabilities=CAP_NET_BIND_SERVICE"] if low_port else []),
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


@app.command("systemd")
def systemd(
    user: Annotated[str, typer.Option("--user", help="The dedicated system user the service runs as.")] = "js2mail",
    home: Annotated[Path | None, typer.Option("--home", help="The service's home (default: this home).")] = None,
    credential: Annotated[Path, typer.Option("--credential", help="Master key file systemd reads (as root).")] =
        Path("/etc/js2mail/master.key"),
    log_format: Annotated[str, typer.Option("--log-format", help="text or json.")] = "text",
) -> None:
    """Print a hardened systemd unit for this machine: save it as /etc/systemd/system/js2mail.service."""
    settings = common.settings()
    typer.echo(render_unit(user=user, home=(home or settings.home).expanduser().absolute(),
                           host=settings.server.host, port=settings.server.port, credential=credential,
                           command=executable(), log_format=log_format), nl=False)
