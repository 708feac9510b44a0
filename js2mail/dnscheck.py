"""SPF, DKIM and DMARC checks for a sending domain, with the records to publish when missing.

js2mail cannot set DNS for you; it can tell what the receiving servers will see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SPF_INCLUDES = {
    "gmail": "include:_spf.google.com",
    "microsoft": "include:spf.protection.outlook.com",
}
DEFAULT_SELECTORS = ("default", "google", "selector1", "selector2")


@dataclass
class Check:
    name: str  # "spf" | "dkim" | "dmarc"
    status: str  # "ok" | "missing" | "warning" | "error"
    found: list[str] = field(default_factory=list)
    detail: str = ""
    publish: str | None = None  # the record to add, when something is missing


def make_resolver(nameserver: str | None = None, timeout: float = 3.0) -> Any:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver:
        host, _, port = nameserver.partition(":")
        resolver.nameservers = [host]
        resolver.port = int(port or 53)
    resolver.lifetime = timeout
    return resolver


def _txt(resolver: Any, name: str) -> tuple[list[str] | None, str]:
    import dns.exception
    import dns.resolver

    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return [], ""
    except (dns.exception.DNSException, OSError) as exc:
        return None, f"lookup failed: {type(exc).__name__}"
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer], ""


def check_domain(domain: str, *, provider: str | None = None, selectors: tuple[str, ...] = DEFAULT_SELECTORS,
                 resolver: Any = None) -> list[Check]:
    resolver = resolver or make_resolver()
    include = SPF_INCLUDES.get(provider or "", "include:<your provider's SPF domain>")
    checks: list[Check] = []

    records, error = _txt(resolver, domain)
    spf = [r for r in (records or []) if r.lower().startswith("v=spf1")]
    if records is None:
        checks.append(Check("spf", "error", detail=error))
    elif not spf:
        checks.append(Check("spf", "missing", publish=f'{domain}. TXT "v=spf1 {include} ~all"'))
    elif len(spf) > 1:
        checks.append(Check("spf", "warning", spf, "more than one SPF record: receivers treat that as an error"))
    elif provider in SPF_INCLUDES and SPF_INCLUDES[provider] not in spf[0]:
        checks.append(Check("spf", "warning", spf, f"does not {SPF_INCLUDES[provider]}",
                            publish=f'{domain}. TXT "{spf[0].replace("v=spf1", f"v=spf1 {include}", 1)}"'))
    else:
        checks.append(Check("spf", "ok", spf))

    found_dkim: list[str] = []
    for selector in selectors:
        recs, _ = _txt(resolver, f"{selector}._domainkey.{domain}")
        found_dkim += [f"{selector}: {r}" for r in (recs or []) if "p=" in r]
    if found_dkim:
        checks.append(Check("dkim", "ok", found_dkim))
    else:
        checks.append(Check("dkim", "missing", detail=f"no DKIM key at {', '.join(selectors)}._domainkey.{domain}",
                            publish=f"{selectors[0]}._domainkey.{domain}. TXT \"v=DKIM1; k=rsa; p=<public key from "
                                    "your mail provider>\""))

    records, error = _txt(resolver, f"_dmarc.{domain}")
    dmarc = [r for r in (records or []) if r.lower().startswith("v=dmarc1")]
    if records is None:
        checks.append(Check("dmarc", "error", detail=error))
    elif not dmarc:
        checks.append(Check("dmarc", "missing",
                            publish=f'_dmarc.{domain}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"'))
    else:
        checks.append(Check("dmarc", "ok", dmarc))
    return checks


def as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
