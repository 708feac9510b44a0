"""`js2mail doctor`: every check returns ok / warn / fail with one line of detail."""

from __future__ import annotations

import json
from typing import Any

from js2mail.config import Settings
from js2mail.errors import Js2MailError


def run_checks(settings: Settings, *, dns: bool, now: float, key_max_age_days: int) -> list[dict[str, Any]]:
    from js2mail.service import open_context
    from js2mail.store import datakeys, health

    checks: list[dict[str, Any]] = [{"check": "config", "status": "ok", "detail": f"home {settings.home}"}]
    try:
        ctx = open_context(settings)
    except Js2MailError as exc:
        checks.append({"check": "database", "status": "fail", "detail": exc.message + (f" ({exc.hint})" if exc.hint else "")})
        return checks
    try:
        checks.append({"check": "database", "status": "ok", "detail": str(settings.db_path)})
        checks.append({"check": "master key", "status": "ok", "detail": f"from {ctx.key_source}"})
        newest = ctx.store.read(datakeys.newest_created_at) or now
        age = (now - newest) / 86400
        checks.append({"check": "key age", "status": "warn" if age > key_max_age_days else "ok",
                       "detail": f"active data key is {age:.0f} days old"
                                 + (" — run `js2mail crypto rotate`" if age > key_max_age_days else "")})
        mailboxes = ctx.store.read(lambda c: c.execute(
            "SELECT address, provider, status, status_detail, settings FROM mailboxes").fetchall())
        if not mailboxes:
            checks.append({"check": "mailboxes", "status": "warn", "detail": "none connected: js2mail mailboxes add"})
        for m in mailboxes:
            bad = m["status"] != "active"
            check = {"check": f"mailbox {m['address']}", "status": "fail" if bad else "ok",
                     "detail": f"{m['provider']}, {m['status']}" + (f": {m['status_detail']}" if bad else "")}
            plaintext = json.loads(m["settings"] or "{}").get("insecure_allow_plaintext")
            if plaintext:
                check["detail"] += (" — --insecure-allow-plaintext: mail and password travel unencrypted to "
                                    f"{json.loads(m['settings'])['host']}")
                check["status"] = "fail" if bad else "warn"
            checks.append(check)
        for e in ctx.store.read(health.failing_endpoints):
            checks.append({"check": f"webhook {e['id']}", "status": "fail" if e["status"] != "active" else "warn",
                           "detail": f"{e['url']}: {e['status']}, {e['consecutive_failures']} failed attempt(s) in a "
                                     f"row; last: {e['last_error'] or e['status_detail'] or e['last_outcome']}"
                                     + (f" ({e['status_detail']}; `js2mail webhooks enable {e['id']}`)"
                                        if e["status"] != "active" and e["status_detail"] else "")})
        counts = dict(ctx.store.read(lambda c: c.execute("SELECT status, COUNT(*) FROM messages GROUP BY status")
                                     .fetchall()))
        checks.append({"check": "queue", "status": "ok", "detail": ", ".join(f"{k} {v}" for k, v in counts.items())
                       or "empty"})
        if dns:
            from js2mail import dnscheck

            for domain, provider in sorted({(m["address"].rsplit("@", 1)[1], m["provider"]) for m in mailboxes}):
                for c in dnscheck.check_domain(domain, provider=provider):
                    checks.append({"check": f"dns {c.name} {domain}", "status": "ok" if c.status == "ok" else "warn",
                                   "detail": "; ".join(c.found) or c.detail or (f"publish {c.publish}" if c.publish else c.status)})
    finally:
        ctx.close()
    return checks
