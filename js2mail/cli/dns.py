"""The work behind `js2mail dns check`: strict input, a spinner on a terminal, one total timeout and
exit codes for scripts (0 ok, 1 problems found, 2 could not check)."""

from __future__ import annotations

from typing import Any

import typer

from js2mail.cli import common

EXIT_OK, EXIT_PROBLEMS, EXIT_UNCHECKED = 0, 1, 2


def _inputs(domain: str, provider: str | None, nameserver: str | None, timeout: float) -> str:
    """The normalized domain; a usage error (exit 2) for anything that cannot be checked."""
    from js2mail import dnscheck

    if provider is not None and provider not in dnscheck.PROVIDERS:
        raise typer.BadParameter(f"{provider!r}: must be one of {', '.join(dnscheck.PROVIDERS)}",
                                 param_hint="--provider")
    if not 0 < timeout <= 300:
        raise typer.BadParameter(f"{timeout:g}: must be more than 0 and at most 300 seconds", param_hint="--timeout")
    if nameserver is not None:
        try:
            dnscheck.parse_nameserver(nameserver)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--nameserver") from exc
    try:
        return dnscheck.normalize_domain(domain)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="DOMAIN") from exc


def _with_spinner(domain: str, work: Any) -> Any:
    """Run work(progress) under a rich spinner on stderr, only when stderr is a terminal."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        return work(None)
    with console.status(f"Checking {domain}…", spinner="dots") as status:
        return work(lambda step: status.update(f"Checking {domain}: {step}"))


def run_check(domain: str, *, provider: str | None, selectors: list[str] | None, nameserver: str | None,
              timeout: float, as_json: bool) -> int:
    import dns.exception

    from js2mail import dnscheck

    domain = _inputs(domain, provider, nameserver, timeout)
    try:
        resolver = dnscheck.make_resolver(nameserver)
    except dns.exception.DNSException as exc:
        message = f"could not check {domain}: no nameserver to ask ({exc}); use --nameserver IP"
        if as_json:
            common.print_json({"error": {"code": "dns_unavailable", "message": message}})
        else:
            typer.echo(f"Error: {message}", err=True)
        return EXIT_UNCHECKED
    checks = _with_spinner(domain, lambda progress: dnscheck.check_domain(
        domain, provider=provider, resolver=resolver, timeout=timeout, progress=progress,
        selectors=tuple(selectors) if selectors else dnscheck.DEFAULT_SELECTORS))

    def human() -> None:
        for c in checks:
            typer.echo(f"{c.name.upper():6} {c.status:8} {'; '.join(c.found) or c.detail}")
            for problem in c.problems:
                typer.echo(f"       problem: {problem}")
            if c.publish:
                typer.echo(f"       publish: {c.publish}")
        code = dnscheck.exit_code(checks)
        if code == EXIT_UNCHECKED:
            typer.echo(f"Could not check everything for {domain} (exit {code}).", err=True)
        elif code == EXIT_PROBLEMS:
            typer.echo(f"Problems found for {domain} (exit {code}).", err=True)

    common.output(dnscheck.as_dicts(checks), as_json, human)
    return dnscheck.exit_code(checks)
