"""Schema, as sqlite-utils migrations: one named set per feature, each migration applied once.

A landed migration is never edited; changes come as new migrations appended to the set.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

core = Migrations("js2mail.core")


def _run(db: Database, script: str) -> None:
    # executescript() would COMMIT the migration's transaction early, so statements go one by one
    # (a trigger body holds ';' too: sqlite3.complete_statement says when a statement is whole)
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                db.execute(pending)
            pending = ""


@core()
def m001_tenancy_keys_crypto(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE workspaces (
            id TEXT PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        );
        CREATE TABLE applications (
            id TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            slug TEXT NOT NULL,
            default_mailbox_id TEXT,
            created_at REAL NOT NULL,
            UNIQUE (workspace_id, slug)
        );
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            prefix TEXT NOT NULL UNIQUE,
            secret_hash BLOB NOT NULL,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            name TEXT,
            created_at REAL NOT NULL,
            last_used_at REAL,
            revoked_at REAL,
            replaced_by TEXT
        );
        CREATE INDEX api_keys_application ON api_keys (application_id);
        CREATE TABLE data_keys (
            id INTEGER PRIMARY KEY,
            wrapped BLOB NOT NULL,
            created_at REAL NOT NULL
        )
        """,
    )


@core()
def m002_mailboxes_messages(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE mailboxes (
            id TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            address TEXT NOT NULL,
            provider TEXT NOT NULL,
            display_name TEXT,
            settings TEXT NOT NULL DEFAULT '{}',
            secret BLOB,
            status TEXT NOT NULL DEFAULT 'active',
            status_detail TEXT,
            daily_quota INTEGER,
            created_at REAL NOT NULL,
            UNIQUE (workspace_id, address)
        );
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            mailbox_id TEXT REFERENCES mailboxes(id) ON DELETE SET NULL,
            source TEXT NOT NULL DEFAULT 'api',
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            scheduled_at REAL,
            next_attempt_at REAL,
            sent_at REAL,
            last_error TEXT,
            provider_response TEXT,
            recipient_domains TEXT NOT NULL DEFAULT '[]',
            metadata TEXT NOT NULL DEFAULT '{}',
            size INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            lease_until REAL
        );
        CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status IN ('queued', 'retrying');
        CREATE INDEX messages_claimed ON messages (lease_until) WHERE status = 'sending';
        CREATE INDEX messages_app_created ON messages (application_id, created_at, id);
        CREATE INDEX messages_created ON messages (created_at);
        CREATE TABLE message_bodies (
            message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            payload BLOB NOT NULL
        );
        CREATE TABLE idempotency_keys (
            workspace_id TEXT NOT NULL,
            application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            fingerprint BLOB NOT NULL,
            state TEXT NOT NULL,
            claimed_until REAL,
            response_status INTEGER,
            response_body TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (workspace_id, application_id, key)
        );
        CREATE INDEX idempotency_created ON idempotency_keys (created_at);
        CREATE TABLE mailbox_usage (
            mailbox_id TEXT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            sent INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (mailbox_id, day)
        )
        """,
    )


@core()
def m003_webhooks_forms(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            secret BLOB NOT NULL,
            previous_secret BLOB,
            previous_secret_until REAL,
            status TEXT NOT NULL DEFAULT 'active',
            status_detail TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX webhook_endpoints_app ON webhook_endpoints (application_id);
        CREATE TABLE webhook_deliveries (
            id TEXT PRIMARY KEY,
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
            application_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            body BLOB NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL,
            delivered_at REAL,
            last_status INTEGER,
            last_error TEXT,
            claimed_by TEXT,
            lease_until REAL
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
        CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
        CREATE TABLE forms (
            id TEXT PRIMARY KEY,
            public_id TEXT NOT NULL UNIQUE,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            mailbox_id TEXT REFERENCES mailboxes(id) ON DELETE SET NULL,
            name TEXT NOT NULL,
            to_address TEXT NOT NULL,
            redirect_url TEXT,
            origins TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL DEFAULT 'active',
            created_at REAL NOT NULL
        );
        CREATE INDEX forms_app ON forms (application_id)
        """,
    )


@core()
def m004_api_key_version(db: Database) -> None:
    """A version number that changes whenever a key is created, revoked or deleted (cascades
    included), so a process can cache key lookups and still see a revocation at once."""
    _run(
        db,
        """
        CREATE TABLE api_key_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
        INSERT INTO api_key_version (id, version) VALUES (1, 0);
        CREATE TRIGGER api_keys_inserted AFTER INSERT ON api_keys
            BEGIN UPDATE api_key_version SET version = version + 1 WHERE id = 1; END;
        CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
            BEGIN UPDATE api_key_version SET version = version + 1 WHERE id = 1; END;
        CREATE TRIGGER api_keys_revoked AFTER UPDATE OF revoked_at ON api_keys
            BEGIN UPDATE api_key_version SET version = version + 1 WHERE id = 1; END
        """,
    )


@core()
def m005_catalog_version(db: Database) -> None:
    """The key version becomes the catalog version: it also moves whenever an application or a
    mailbox changes (default mailbox, status, secret, removal), so a process can cache the
    mailbox a request resolves to as safely as its key."""
    _run(
        db,
        """
        ALTER TABLE api_key_version RENAME TO catalog_version;
        CREATE TRIGGER applications_inserted AFTER INSERT ON applications
            BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
        CREATE TRIGGER applications_updated AFTER UPDATE ON applications
            BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
        CREATE TRIGGER applications_deleted AFTER DELETE ON applications
            BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
        CREATE TRIGGER mailboxes_inserted AFTER INSERT ON mailboxes
            BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
        CREATE TRIGGER mailboxes_updated AFTER UPDATE ON mailboxes
            BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
        CREATE TRIGGER mailboxes_deleted AFTER DELETE ON mailboxes
            BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END
        """,
    )


@core()
def m007_privacy(db: Database) -> None:
    """Refused recipients are kept as a count and their domains. A webhook delivery's body is personal
    data: it is sealed in `payload` (NULL once the delivery is final); `body` only holds what an
    earlier build left unsealed for a delivery still pending, and is emptied for every final one."""
    _run(
        db,
        """
        ALTER TABLE messages ADD COLUMN refused_recipients INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN refused_domains TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE webhook_deliveries ADD COLUMN payload BLOB;
        UPDATE webhook_deliveries SET body = X'' WHERE status != 'pending'
        """,
    )
    from js2mail.redact import redact

    logged = db.execute("SELECT id, last_error, provider_response FROM messages"
                        " WHERE last_error LIKE '%@%' OR provider_response LIKE '%@%'").fetchall()
    for msg_id, error, response in logged:  # addresses earlier builds wrote into the send log
        db.execute("UPDATE messages SET last_error = ?, provider_response = ? WHERE id = ?",
                   (error and redact(error), response and redact(response), msg_id))


@core()
def m013_messages_updated(db: Database) -> None:
    """`messages tail` follows changes in order of `updated_at`: a partial index over the rows that
    changed after their insert, so accepting mail (a 'queued' insert) does not maintain it."""
    _run(db, "CREATE INDEX messages_changed ON messages (updated_at) WHERE status != 'queued'")


@core()
def m012_ops(db: Database) -> None:
    """Each webhook endpoint keeps its last outcome and its count of consecutive failed attempts
    (`webhooks list`, `doctor`). Kept by a trigger on every attempt a delivery records, so a
    refusal by the SSRF gate counts like a failed POST."""
    _run(
        db,
        """
        ALTER TABLE webhook_endpoints ADD COLUMN last_outcome TEXT;
        ALTER TABLE webhook_endpoints ADD COLUMN last_error TEXT;
        ALTER TABLE webhook_endpoints ADD COLUMN last_http_status INTEGER;
        ALTER TABLE webhook_endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
        CREATE TRIGGER webhook_attempt_recorded AFTER UPDATE OF attempts ON webhook_deliveries
            WHEN NEW.attempts > OLD.attempts
            BEGIN
                UPDATE webhook_endpoints SET
                    last_outcome = CASE NEW.status WHEN 'pending' THEN 'retrying' ELSE NEW.status END,
                    last_error = CASE WHEN NEW.status = 'delivered' THEN NULL ELSE NEW.last_error END,
                    last_http_status = NEW.last_status,
                    consecutive_failures = CASE WHEN NEW.status = 'delivered' THEN 0
                                                ELSE consecutive_failures + 1 END
                WHERE id = NEW.endpoint_id;
            END
        """,
    )



@core()
def m010_lanes(db: Database) -> None:
    """Per-lane claims (store.messages/webhooks.claim_due) look up each mailbox's or endpoint's
    earliest due work: one index probe per lane. The global due-time indexes served only the old
    batch claims; dropping them keeps each queue transition's index writes as they were."""
    _run(
        db,
        """
        CREATE INDEX messages_lane_due ON messages (mailbox_id, next_attempt_at) WHERE status IN ('queued', 'retrying');
        CREATE INDEX webhook_deliveries_lane_due ON webhook_deliveries (endpoint_id, next_attempt_at)
            WHERE status = 'pending';
        DROP INDEX messages_due;
        DROP INDEX webhook_deliveries_due
        """,
    )


@core()
def m009_limits(db: Database) -> None:
    """Per-application totals of the messages not yet final (queued, sending, retrying), kept by
    triggers, so the queue caps cost one primary-key read per send."""
    active = "('queued', 'sending', 'retrying')"
    _run(
        db,
        f"""
        CREATE TABLE queue_usage (
            application_id TEXT PRIMARY KEY REFERENCES applications(id) ON DELETE CASCADE,
            messages INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO queue_usage (application_id, messages, bytes)
            SELECT application_id, COUNT(*), COALESCE(SUM(size), 0) FROM messages
            WHERE status IN {active} GROUP BY application_id;
        CREATE TRIGGER queue_usage_inserted AFTER INSERT ON messages WHEN NEW.status IN {active}
            BEGIN
                INSERT INTO queue_usage (application_id, messages, bytes) VALUES (NEW.application_id, 1, NEW.size)
                ON CONFLICT (application_id) DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;
            END;
        CREATE TRIGGER queue_usage_finished AFTER UPDATE OF status ON messages
            WHEN OLD.status IN {active} AND NEW.status NOT IN {active}
            BEGIN
                UPDATE queue_usage SET messages = messages - 1, bytes = bytes - OLD.size
                WHERE application_id = OLD.application_id;
            END;
        CREATE TRIGGER queue_usage_reopened AFTER UPDATE OF status ON messages
            WHEN OLD.status NOT IN {active} AND NEW.status IN {active}
            BEGIN
                INSERT INTO queue_usage (application_id, messages, bytes) VALUES (NEW.application_id, 1, NEW.size)
                ON CONFLICT (application_id) DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;
            END;
        CREATE TRIGGER queue_usage_deleted AFTER DELETE ON messages WHEN OLD.status IN {active}
            BEGIN
                UPDATE queue_usage SET messages = messages - 1, bytes = bytes - OLD.size
                WHERE application_id = OLD.application_id;
            END
        """,
    )


@core()
def m014_whops(db: Database) -> None:
    """Webhook operations: each delivery's last attempt time and latency, when it was given up and
    redelivered (a given-up delivery keeps its sealed payload for `[webhooks] redeliver_window_hours`);
    each endpoint's failing streak start (`failing_since`), kept by a trigger, for auto-disable."""
    _run(
        db,
        """
        ALTER TABLE webhook_deliveries ADD COLUMN last_attempt_at REAL;
        ALTER TABLE webhook_deliveries ADD COLUMN latency_ms INTEGER;
        ALTER TABLE webhook_deliveries ADD COLUMN failed_at REAL;
        ALTER TABLE webhook_deliveries ADD COLUMN redelivered_at REAL;
        ALTER TABLE webhook_endpoints ADD COLUMN failing_since REAL;
        ALTER TABLE webhook_endpoints ADD COLUMN last_attempt_at REAL;
        CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
        CREATE INDEX webhook_deliveries_kept ON webhook_deliveries (failed_at)
            WHERE status = 'failed' AND payload IS NOT NULL;
        CREATE TRIGGER webhook_attempt_streak AFTER UPDATE OF attempts ON webhook_deliveries
            WHEN NEW.attempts > OLD.attempts
            BEGIN
                UPDATE webhook_endpoints SET
                    last_attempt_at = NEW.last_attempt_at,
                    failing_since = CASE WHEN NEW.status = 'delivered' THEN NULL
                                         ELSE COALESCE(failing_since, NEW.last_attempt_at) END
                WHERE id = NEW.endpoint_id;
            END
        """,
    )


@core()
def m015_dashboard(db: Database) -> None:
    """Dashboard sign-in links and sessions: only SHA-256 hashes of their tokens are kept."""
    _run(
        db,
        """
        CREATE TABLE dashboard_links (
            token_hash TEXT PRIMARY KEY,
            workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL
        );
        CREATE TABLE dashboard_sessions (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            last_seen_at REAL,
            revoked_at REAL
        )
        """,
    )


@core()
def m016_idempotency_claims(db: Database) -> None:
    """A key is claimed only by its finished record, committed with the message (never a separate
    'processing' claim): rows earlier development builds left 'processing' queued nothing and are
    dropped, which frees their keys, and the lease column goes."""
    _run(
        db,
        """
        DELETE FROM idempotency_keys WHERE state != 'done';
        ALTER TABLE idempotency_keys DROP COLUMN claimed_until
        """,
    )


MIGRATION_SETS = [core]


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    db = Database(conn)
    applied: list[str] = []
    for migrations in MIGRATION_SETS:
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            migrations.apply(db)
            applied.extend(f"{migrations.name}:{name}" for name in pending)
    return applied
