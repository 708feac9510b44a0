"""SPF, DKIM and DMARC checks for a sending domain, with the records to publish when missing.

js2mail cannot set DNS for you; it can tell what the receiving servers will see. The records are
parsed strictly (RFC 7208 for SPF, RFC 7489 for DMARC): what a receiver would reject is `invalid`,
what gives weak protection is a `warning`. The whole check shares one deadline.

The parsers are written here rather than taken from checkdmarc: that library resolves through its
own resolver (port 53, its own timeouts, extra look-ups for every include and report address), which
can honour neither `--nameserver IP:PORT` nor one total deadline for the check.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

PROVIDERS = ("gmail", "microsoft", "smtp")
# What each provider documents (the seed docs: Google `~all`, Microsoft 365 `-all`).
SPF_INCLUDES = {
    "gmail": "include:_spf.google.com",
    "microsoft": "include:spf.protection.outlook.com",
}
SPF_ALL = {"gmail": "~all", "microsoft": "-all"}
DEFAULT_SELECTORS = ("default", "google", "selector1", "selector2")
DEFAULT_TIMEOUT = 10.0
SPF_LOOKUP_LIMIT = 10

# "ok" | "missing" | "warning" (weak) | "invalid" (receivers reject it, or it protects nothing)
# | "error" (could not look it up)
PROBLEMS = ("missing", "warning", "invalid")


@dataclass
class Check:
    name: str  # "spf" | "dkim" | "dmarc"
    status: str
    found: list[str] = field(default_factory=list)
    detail: str = ""
    publish: str | None = None  # the record to add, when something is missing
    problems: list[str] = field(default_factory=list)


def exit_code(checks: list[Check]) -> int:
    """0 all good, 1 problems found, 2 something could not be checked."""
    if any(c.status == "error" for c in checks):
        return 2
    return 1 if any(c.status in PROBLEMS for c in checks) else 0


# ---------------------------------------------------------------- input

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


def normalize_domain(text: str) -> str:
    """`Example.COM.` -> `example.com`; IDNs to their ASCII form. ValueError when it is not a domain name."""
    name = text.strip().rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{text!r} is not a domain name (expected e.g. example.com)") from exc
    labels = ascii_name.split(".")
    if (len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise ValueError(f"{text!r} is not a domain name (expected e.g. example.com)")
    return ascii_name


def parse_nameserver(text: str) -> tuple[str, int]:
    """`IP`, `IP:PORT`, `IPv6` or `[IPv6]:PORT`. ValueError otherwise."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected IP, IP:PORT or [IPv6]:PORT")
            port = rest[1:]
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise ValueError(f"{text!r}: expected IP, IP:PORT or [IPv6]:PORT") from exc
    if not 1 <= number <= 65535:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    return host, number


def make_resolver(nameserver: str | None = None, timeout: float = 3.0) -> Any:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver:
        host, port = parse_nameserver(nameserver)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = timeout
    return resolver


# ---------------------------------------------------------------- SPF (RFC 7208)

_SPF_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_LOOKUP_TERMS = {"include", "a", "mx", "ptr", "exists", "redirect"}
_MECHANISM = re.compile(r"([+\-~?]?)([a-z0-9]+)([:/].*)?\Z", re.I)
_MODIFIER = re.compile(r"([a-z][a-z0-9_.-]*)=(.*)\Z", re.I)


def is_spf(record: str) -> bool:
    return record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")


def spf_problems(record: str) -> tuple[list[str], list[str]]:
    """(invalid, weak): what makes receivers fail the record, and what makes it protect little."""
    invalid: list[str] = []
    weak: list[str] = []
    terms = record.split()
    if not terms or terms[0].lower() != "v=spf1":
        return ["does not start with v=spf1"], []
    lookups, final, redirect = 0, None, False
    for term in terms[1:]:
        modifier = _MODIFIER.match(term)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if not value:
                    invalid.append(f"{term}: {name}= needs a domain")
                lookups += name == "redirect"
                redirect = redirect or name == "redirect"
            continue
        mechanism = _MECHANISM.match(term)
        if not mechanism or mechanism.group(2).lower() not in _SPF_MECHANISMS:
            invalid.append(f"{term!r} is not an SPF mechanism")
            continue
        qualifier, name, arg = mechanism.group(1) or "+", mechanism.group(2).lower(), mechanism.group(3) or ""
        lookups += name in _LOOKUP_TERMS
        if name in ("include", "exists") and len(arg) < 2:
            invalid.append(f"{term}: {name} needs :domain")
        elif name in ("ip4", "ip6"):
            try:
                network = ipaddress.ip_network(arg[1:], strict=False)
                if network.version != int(name[-1]) or not arg.startswith(":"):
                    raise ValueError
            except ValueError:
                invalid.append(f"{term}: not an IPv{name[-1]} address or network")
        elif name == "all":
            if arg:
                invalid.append(f"{term}: all takes no argument")
            final = final or qualifier
        elif name == "ptr":
            weak.append("ptr is slow and deprecated (RFC 7208 5.5): list the addresses instead")
    if lookups > SPF_LOOKUP_LIMIT:
        invalid.append(f"{lookups} DNS-lookup mechanisms (include, a, mx, ptr, exists, redirect): the limit is "
                       f"{SPF_LOOKUP_LIMIT}, receivers fail the check (permerror)")
    if final == "+":
        invalid.append("+all lets any server on the internet send as this domain: end with ~all or -all")
    elif final == "?":
        weak.append("?all (neutral) protects nothing: end with ~all or -all")
    elif final is None and not redirect:
        weak.append("no all mechanism at the end: unlisted senders are neutral; end with ~all or -all")
    return invalid, weak


def spf_lookups(record: str) -> tuple[int, list[str]]:
    """The DNS look-ups `record` itself costs, and the domains of its include:/redirect= (macros skipped)."""
    count, targets = 0, []
    for term in record.split()[1:]:
        modifier, mechanism = _MODIFIER.match(term), _MECHANISM.match(term)
        name = (modifier.group(1) if modifier else mechanism.group(2) if mechanism else "").lower()
        if name not in _LOOKUP_TERMS or (modifier and name != "redirect"):
            continue
        count += 1
        target = modifier.group(2) if modifier else (mechanism.group(3) or "")[1:] if mechanism else ""
        if name in ("include", "redirect") and target and "%" not in target:
            targets.append(target.lower().rstrip("."))
    return count, targets


# ---------------------------------------------------------------- DMARC (RFC 7489)

_MAILTO = re.compile(r"mailto:[^@\s,!]+@[^@\s,!]+\.[^@\s,!]+(![0-9]+[kmgt]?)?\Z", re.I)


def is_dmarc(record: str) -> bool:
    return "dmarc1" in record.lower()


def dmarc_problems(record: str) -> tuple[list[str], list[str]]:
    """(invalid, weak) for one DMARC record."""
    invalid: list[str] = []
    weak: list[str] = []
    tags: dict[str, str] = {}
    order: list[str] = []
    for part in record.split(";"):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or not key:
            invalid.append(f"{part.strip()!r} is not a tag=value pair")
            continue
        if key in tags:
            invalid.append(f"tag {key} appears twice")
        tags[key] = value
        order.append(key)
    if not order or order[0] != "v" or tags.get("v") != "DMARC1":
        invalid.append("must start with v=DMARC1")
    if "p" not in tags:
        invalid.append("no p= tag (none, quarantine or reject)")
    for key in ("p", "sp"):
        if key in tags and tags[key].lower() not in ("none", "quarantine", "reject"):
            invalid.append(f"{key}={tags[key]}: must be none, quarantine or reject")
    if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
        invalid.append(f"pct={tags['pct']}: must be a whole number from 0 to 100")
    for key in ("rua", "ruf"):
        for uri in (u.strip() for u in tags.get(key, "").split(",") if key in tags):
            if not _MAILTO.match(uri):
                invalid.append(f"{key}: {uri!r} is not a mailto: address")
    for key in ("adkim", "aspf"):
        if key in tags and tags[key].lower() not in ("r", "s"):
            invalid.append(f"{key}={tags[key]}: must be r or s")
    if "ri" in tags and not tags["ri"].isdigit():
        invalid.append(f"ri={tags['ri']}: must be a number of seconds")
    if "fo" in tags and not all(o.strip() in ("0", "1", "d", "s") for o in tags["fo"].split(":")):
        invalid.append(f"fo={tags['fo']}: must be 0, 1, d or s (colon-separated)")
    unknown = [k for k in order if k not in ("v", "p", "sp", "pct", "rua", "ruf", "adkim", "aspf", "ri", "fo", "rf")]
    if unknown:
        weak.append(f"unknown tag(s) ignored by receivers: {', '.join(unknown)}")
    if tags.get("pct", "100").isdigit() and int(tags.get("pct", "100")) == 0:
        weak.append("pct=0 applies the policy to no message")
    return invalid, weak


# ---------------------------------------------------------------- the check


class _Lookups:
    """TXT look-ups that share one deadline: each gets what is left of the budget."""

    def __init__(self, resolver: Any, timeout: float, progress: Callable[[str], None] | None) -> None:
        self.resolver = resolver
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.progress = progress or (lambda _text: None)

    def txt(self, name: str, what: str) -> tuple[list[str] | None, str]:
        import dns.exception
        import dns.resolver

        left = self.deadline - time.monotonic()
        if left <= 0:
            return None, f"not looked up: the {self.timeout:g} s timeout ran out"
        self.progress(f"{what}: TXT {name}")
        # Two tries in what is left: dnspython sleeps a growing back-off (up to 2 s) between tries
        # without looking at the lifetime, so fewer, longer tries keep the total close to the budget.
        self.resolver.timeout = left / 2
        try:
            answer = self.resolver.resolve(name, "TXT", lifetime=left)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return [], ""
        except dns.exception.Timeout:
            return None, f"lookup of {name} timed out (--timeout {self.timeout:g} s)"
        except dns.resolver.NoNameservers:
            return None, f"lookup of {name} failed: no nameserver answered"
        except (dns.exception.DNSException, OSError) as exc:
            return None, f"lookup of {name} failed: {type(exc).__name__}"
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer], ""


def _graded(name: str, found: list[str], invalid: list[str], weak: list[str], publish: str | None = None) -> Check:
    problems = invalid + weak
    status = "invalid" if invalid else "warning" if weak else "ok"
    return Check(name, status, found, "; ".join(problems), publish if problems else None, problems)


def _nested_lookups(look: _Lookups, record: str, seen: set[str]) -> tuple[int, list[str]]:
    """What a receiver counts against the 10-look-up limit: `record`'s own look-ups plus those of every
    include:/redirect= target, recursively; and the targets that make receivers fail (permerror)."""
    total, targets = spf_lookups(record)
    problems: list[str] = []
    for target in targets:
        if total > SPF_LOOKUP_LIMIT:
            break
        if target in seen:
            continue
        seen.add(target)
        records, _ = look.txt(target, "SPF include")
        if records is None:  # not answered in time: what it holds cannot be counted
            continue
        nested = [r for r in records if is_spf(r)]
        if len(nested) != 1:
            problems.append(f"{target} (an include:/redirect= target) has {'no' if not nested else 'more than one'} "
                            "SPF record: receivers fail the check (permerror)")
            continue
        more, deeper = _nested_lookups(look, nested[0], seen)
        total += more
        problems += deeper
    return total, problems


def _check_spf(look: _Lookups, domain: str, provider: str | None) -> Check:
    records, error = look.txt(domain, "SPF")
    if records is None:
        return Check("spf", "error", detail=error)
    spf = [r for r in records if is_spf(r)]
    include = SPF_INCLUDES.get(provider or "", "include:<your provider's SPF domain>")
    suggestion = f'{domain}. TXT "v=spf1 {include} {SPF_ALL.get(provider or "", "~all")}"'
    if not spf:
        return Check("spf", "missing", publish=suggestion)
    if len(spf) > 1:
        return _graded("spf", spf, [f"{len(spf)} SPF records: receivers fail the check (permerror); merge them "
                                    "into one"], [], suggestion)
    invalid, weak = spf_problems(spf[0])
    if not invalid:
        total, nested = _nested_lookups(look, spf[0], {domain})
        invalid += nested
        if total > SPF_LOOKUP_LIMIT:
            invalid.append(f"{total} DNS look-ups counting those inside the include:/redirect= targets: the limit "
                           f"is {SPF_LOOKUP_LIMIT}, receivers fail the check (permerror)")
    publish = suggestion
    if provider in SPF_INCLUDES and SPF_INCLUDES[provider].lower() not in spf[0].lower().split():
        if not invalid and not weak:  # a sound record that lacks the provider: add it in front
            publish = f'{domain}. TXT "{spf[0][:6]} {SPF_INCLUDES[provider]}{spf[0][6:]}"'
        weak.append(f"does not {SPF_INCLUDES[provider]}: mail sent through {provider} fails SPF")
    return _graded("spf", spf, invalid, weak, publish)


def _check_dkim(look: _Lookups, domain: str, selectors: tuple[str, ...]) -> Check:
    found: list[str] = []
    errors: list[str] = []
    for selector in selectors:
        records, error = look.txt(f"{selector}._domainkey.{domain}", "DKIM")
        if records is None:
            errors.append(error)
        found += [f"{selector}: {r}" for r in (records or []) if "p=" in r]
    if errors and not found:
        return Check("dkim", "error", detail="; ".join(dict.fromkeys(errors)))
    if not found:
        return Check("dkim", "missing", detail=f"no DKIM key at {', '.join(selectors)}._domainkey.{domain}",
                     publish=f"{selectors[0]}._domainkey.{domain}. TXT \"v=DKIM1; k=rsa; p=<public key from "
                             "your mail provider>\"")
    revoked = [f.split(":", 1)[0] for f in found if re.search(r"(^|;)\s*p=\s*(;|$)", f.split(": ", 1)[1])]
    return _graded("dkim", found, [], [f"selector {s}: empty p= (key revoked)" for s in revoked])


def _check_dmarc(look: _Lookups, domain: str) -> Check:
    records, error = look.txt(f"_dmarc.{domain}", "DMARC")
    if records is None:
        return Check("dmarc", "error", detail=error)
    suggestion = f'_dmarc.{domain}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"'
    dmarc = [r for r in records if is_dmarc(r)]
    if not dmarc:
        return Check("dmarc", "missing", publish=suggestion)
    if len(dmarc) > 1:
        return _graded("dmarc", dmarc, [f"{len(dmarc)} DMARC records: receivers ignore them all; keep one"], [],
                       suggestion)
    invalid, weak = dmarc_problems(dmarc[0])
    return _graded("dmarc", dmarc, invalid, weak, suggestion)


def check_domain(domain: str, *, provider: str | None = None, selectors: tuple[str, ...] = DEFAULT_SELECTORS,
                 resolver: Any = None, timeout: float = DEFAULT_TIMEOUT,
                 progress: Callable[[str], None] | None = None) -> list[Check]:
    """SPF, DKIM and DMARC of `domain`, all look-ups within `timeout` seconds in total."""
    domain = normalize_domain(domain)
    if provider is not None and provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
    look = _Lookups(resolver or make_resolver(), timeout, progress)
    return [_check_spf(look, domain, provider), _check_dkim(look, domain, selectors), _check_dmarc(look, domain)]


def as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
