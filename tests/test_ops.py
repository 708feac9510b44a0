from __future__ import annotations

import sqlite3
from pathlib import Path

from js2mail.models import camel
from tests.support.cli import run_cli
from tests.support.dns_server import FakeDns


def add_smtp_mailbox(address: str = "shop@example.com", password: str = "s3cret-pass") -> None:
    result = run_cli("mailboxes", "add", "smtp", "-w", "acme", "--app", "shop", "--address", address,
                     "--host", "127.0.0.1", "--port", "2525", "--security", "none", "--password-stdin",
                     stdin=password + "\n")
    assert result.code == 0, result.err


def test_crypto_rotate_reseals_every_secret_and_old_key_still_listed(home: Path) -> None:
    add_smtp_mailbox()
    db = sqlite3.connect(home / "js2mail.db")
    before = db.execute("SELECT secret FROM mailboxes").fetchone()[0]
    assert before[1:5] == (1).to_bytes(4, "big")
    result = run_cli("crypto", "rotate", "--json").json()
    assert result == {"activeKeyId": 2, "resealed": 1, "rotatedAt": result["rotatedAt"]}
    after = db.execute("SELECT secret FROM mailboxes").fetchone()[0]
    assert after[1:5] == (2).to_bytes(4, "big") and after != before
    assert b"s3cret-pass" not in (home / "js2mail.db").read_bytes()
    # the mailbox still works with the re-sealed password: the doctor opens the context fine
    assert run_cli("doctor").code == 0


def test_export_has_no_secrets_and_delete_needs_confirmation(home: Path) -> None:
    add_smtp_mailbox()
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    exported = run_cli("data", "export", "-w", "acme").json()
    assert exported["workspace"] == "acme"
    assert [m["address"] for m in exported["mailboxes"]] == ["shop@example.com"]
    text = run_cli("data", "export", "-w", "acme").out
    assert "s3cret-pass" not in text and key.split("_")[3] not in text
    refused = run_cli("data", "delete", "-w", "acme")
    assert refused.code == 1 and "--yes acme" in refused.err
    assert run_cli("data", "delete", "-w", "acme", "--yes", "acme").code == 0
    db = sqlite3.connect(home / "js2mail.db")
    assert db.execute("SELECT COUNT(*) FROM mailboxes").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 0
    assert run_cli("data", "export", "-w", "acme").code == 1


def test_dns_check_reports_found_records_and_what_to_publish(home: Path) -> None:
    records = {
        "example.com": ["v=spf1 include:_spf.google.com ~all", "google-site-verification=x"],
        "_spf.google.com": ["v=spf1 ip4:192.0.2.0/24 ~all"],  # dns check counts the look-ups inside includes
        "google._domainkey.example.com": ["v=DKIM1; k=rsa; p=MIIBIjANBg"],
    }
    with FakeDns(records) as dns:
        checks = {c["name"]: c for c in run_cli("dns", "check", "example.com", "--provider", "gmail",
                                                 "--nameserver", dns.address, "--json").json()}
        assert checks["spf"]["status"] == "ok"
        assert checks["dkim"]["status"] == "ok" and checks["dkim"]["found"][0].startswith("google:")
        assert checks["dmarc"]["status"] == "missing"
        assert checks["dmarc"]["publish"] == '_dmarc.example.com. TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"'
        human = run_cli("dns", "check", "example.org", "--provider", "microsoft", "--nameserver", dns.address)
        assert "include:spf.protection.outlook.com" in human.out


def test_doctor_warns_on_needs_reconnect(home: Path) -> None:
    add_smtp_mailbox()
    db = sqlite3.connect(home / "js2mail.db")
    db.execute("UPDATE mailboxes SET status = 'needs_reconnect', status_detail = 'invalid_grant'")
    db.commit()
    result = run_cli("doctor", "--json")
    assert result.code == 1
    bad = [c for c in result.json() if c["status"] == "fail"]
    assert bad and "invalid_grant" in bad[0]["detail"]


def test_mailbox_commands_find_the_address_without_workspace(home: Path) -> None:
    add_smtp_mailbox()
    assert run_cli("mailboxes", "set-default", "shop@example.com", "--app", "blog", "--json").code == 0
    listed = run_cli("mailboxes", "list", "--json").json()
    assert listed[0]["defaultFor"] == ["blog", "shop"]
    result = run_cli("mailboxes", "add", "smtp", "-w", "other", "--address", "shop@example.com", "--host", "127.0.0.1",
                     "--port", "25", "--security", "none", "--no-auth")
    assert result.code == 0
    ambiguous = run_cli("mailboxes", "remove", "shop@example.com")
    assert ambiguous.code == 1 and "--workspace" in ambiguous.err
    assert run_cli("mailboxes", "remove", "shop@example.com", "-w", "other").code == 0
    assert run_cli("mailboxes", "remove", "shop@example.com").code == 0
    assert run_cli("mailboxes", "list", "--json").json() == []


def test_catalog_version_moves_on_keys_mailboxes_and_cascading_delete(home: Path) -> None:
    def version() -> int:
        return sqlite3.connect(home / "js2mail.db").execute("SELECT version FROM catalog_version").fetchone()[0]

    run_cli("keys", "create", "-w", "acme", "-a", "shop")
    start = version()
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop", "--json").json()
    assert version() == start + 1
    assert run_cli("keys", "revoke", key["prefix"]).code == 0
    assert version() == start + 2
    assert run_cli("mailboxes", "add", "smtp", "-w", "acme", "--address", "shop@example.com", "--host", "127.0.0.1",
                   "--port", "25", "--security", "none", "--no-auth").code == 0
    assert version() > start + 2  # cached mailbox resolutions must be dropped too
    before = version()
    assert run_cli("mailboxes", "set-default", "shop@example.com", "--app", "shop", "-w", "acme").code == 0
    assert version() > before
    before = version()
    assert run_cli("data", "delete", "-w", "acme", "--yes", "acme").code == 0
    assert version() > before  # the cascade deleted keys and mailboxes: cached lookups must be dropped


def _owned_tables(db: sqlite3.Connection) -> dict[str, str]:
    """Every table holding rows about a workspace, found from the schema itself: a workspace_id
    column, or a foreign key to such a table. → {table: WHERE clause selecting one workspace's rows}."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                       " AND name NOT LIKE 'sqlite_%'")]
    scopes = {t: "workspace_id = ?" for t in tables
              if "workspace_id" in [c[1] for c in db.execute(f"PRAGMA table_info({t})")]}
    grew = True
    while grew:
        grew = False
        for table in tables:
            if table in scopes or table == "workspaces":
                continue
            for fk in db.execute(f"PRAGMA foreign_key_list({table})").fetchall():
                parent, column, parent_column = fk[2], fk[3], fk[4]
                if parent in scopes:
                    scopes[table] = f"{column} IN (SELECT {parent_column} FROM {parent} WHERE {scopes[parent]})"
                    grew = True
                    break
    return scopes


def test_export_holds_every_table_and_column_kept_about_the_workspace(home: Path) -> None:
    (home / "config.toml").write_text("[webhooks]\nallow_private = true\n")
    add_smtp_mailbox()
    assert run_cli("mailboxes", "set-default", "shop@example.com", "--app", "shop", "-w", "acme").code == 0
    hook = run_cli("webhooks", "add", "http://127.0.0.1:9/hooks", "-w", "acme", "-a", "shop", "--json").json()
    form = run_cli("forms", "create", "-w", "acme", "-a", "shop", "--to", "owner@example.com", "--json")
    assert form.code == 0, form.err
    key = run_cli("keys", "create", "-w", "acme", "-a", "shop").out.strip()
    queued = run_cli("send", "-w", "acme", "-a", "shop", "--to", "jane.doe@private.example", "--subject",
                     "Quarterly figures", "--text", "the body nobody may export", "--idempotency-key", "k-1", "--json")
    assert queued.code == 0, queued.err
    db = sqlite3.connect(home / "js2mail.db")
    db.execute("INSERT INTO mailbox_usage (mailbox_id, day, sent) SELECT id, '2026-12-01', 3 FROM mailboxes"
               " WHERE address = 'shop@example.com'")
    db.commit()
    # another workspace's data must stay out of this export
    assert run_cli("mailboxes", "add", "smtp", "-w", "elsewhere", "--address", "x@elsewhere.example",
                   "--host", "127.0.0.1", "--port", "25", "--security", "none", "--no-auth").code == 0

    result = run_cli("data", "export", "-w", "acme")
    assert result.code == 0, result.err
    exported, text = result.json(), result.out
    ws_id = exported["workspaceId"]
    scopes = _owned_tables(db)
    assert {"webhook_deliveries", "idempotency_keys", "message_bodies", "mailbox_usage", "messages"} <= set(scopes)
    for table, where in scopes.items():
        columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
        params = (ws_id,) * where.count("?")
        count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params).fetchone()[0]
        assert camel(table) in exported, f"the export forgets the table {table}"
        assert len(exported[camel(table)]) == count, table
        for item in exported[camel(table)]:
            assert list(item) == [camel(c) for c in columns], table
    deliveries = exported["webhookDeliveries"]
    assert len(deliveries) == 1 and deliveries[0]["eventType"] == "mail.queued"
    assert deliveries[0]["payload"]["sealed"] is True
    assert exported["messageBodies"][0]["payload"] == {"sealed": True, "keyId": 1,
                                                     "bytes": exported["messageBodies"][0]["payload"]["bytes"]}
    assert exported["idempotencyKeys"][0]["key"] == "k-1"
    assert exported["mailboxUsage"] == [{"mailboxId": exported["mailboxes"][0]["id"], "day": "2026-12-01", "sent": 3}]
    assert exported["messages"][0]["recipientDomains"] == ["private.example"]
    assert not [key for table in exported.values() if isinstance(table, list) for row in table for key in row
                if "_" in key], "JSON keys are camelCase"
    for secret in ("s3cret-pass", hook["secret"], key.split("_")[3], "the body nobody may export",
                   "Quarterly figures", "jane.doe", "x@elsewhere.example"):
        assert secret not in text


def test_crypto_rotate_reseals_pending_webhook_payloads(home: Path) -> None:
    (home / "config.toml").write_text("[webhooks]\nallow_private = true\n")
    add_smtp_mailbox()
    assert run_cli("webhooks", "add", "http://127.0.0.1:9/hooks", "-w", "acme", "-a", "shop").code == 0
    assert run_cli("send", "-w", "acme", "-a", "shop", "--to", "bob@example.org", "--subject", "s", "--text", "t",
                   "--from", "shop@example.com").code == 0
    before = run_cli("data", "export", "-w", "acme").json()["webhookDeliveries"][0]["payload"]
    # the mailbox password, the webhook secret, the queued body and the pending delivery's payload
    assert run_cli("crypto", "rotate", "--json").json()["resealed"] == 4
    after = run_cli("data", "export", "-w", "acme").json()["webhookDeliveries"][0]["payload"]
    assert (before["keyId"], after["keyId"]) == (1, 2)
