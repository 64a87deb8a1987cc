"""Versioned schema migrations for Postgres (storage layer).

Each migration runs in its own transaction under an advisory lock (two
servers starting together migrate once) and is recorded in
`arbiter_migrations`; a database made by an older server is upgraded on
start-up. Never edit a migration that has shipped: add one.

The schema is SQLite's (storage/sqlite/migrations.py) as it stands after all
of its migrations, in Postgres types. Text is compared byte by byte
(`COLLATE "C"`), as SQLite does, so lists page in the same order on both.
"""

from __future__ import annotations

from collections.abc import Callable

from .connection import PostgresConnection

_LOCK_ID = 0x4172626974  # "Arbit": the advisory lock migrations take

TEXT = 'TEXT COLLATE "C" NOT NULL'


def _v001_schema(conn: PostgresConnection) -> None:
    """Every table, index and trigger the embedded backend's eight migrations built."""
    for table, body in (
        (
            "offers",
            f"tenant {TEXT}, id {TEXT}, name {TEXT}, status {TEXT}, category_id {TEXT}, "
            f"sub_category_id {TEXT} DEFAULT '', created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL, "
            f"body {TEXT}, PRIMARY KEY (tenant, id)",
        ),
        ("offer_tags", f"tenant {TEXT}, tag {TEXT}, offer_id {TEXT}, PRIMARY KEY (tenant, tag, offer_id)"),
        (
            "outcomes",
            f"seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id {TEXT}, tenant {TEXT}, "
            f"idempotency_key {TEXT}, customer_id {TEXT}, offer_id {TEXT}, type INTEGER NOT NULL, "
            f"decision_id {TEXT}, channel {TEXT}, occurred_us BIGINT NOT NULL, recorded_us BIGINT NOT NULL, "
            "positive INTEGER NOT NULL DEFAULT 0",
        ),
        (
            "offer_daily",
            f"tenant {TEXT}, offer_id {TEXT}, day INTEGER NOT NULL, impressions BIGINT NOT NULL, "
            "spend_micros BIGINT NOT NULL, PRIMARY KEY (tenant, day, offer_id)",
        ),
        (
            "model_stats",
            f"tenant {TEXT}, model_ref {TEXT}, offer_id {TEXT}, trials BIGINT NOT NULL, positives BIGINT NOT NULL, "
            "PRIMARY KEY (tenant, model_ref, offer_id)",
        ),
        ("tenant_settings", f"tenant {TEXT} PRIMARY KEY, timezone {TEXT}, updated_us BIGINT NOT NULL"),
        (
            "categories",
            f"tenant {TEXT}, id {TEXT}, name {TEXT}, status {TEXT}, created_us BIGINT NOT NULL, "
            f"updated_us BIGINT NOT NULL, body {TEXT}, PRIMARY KEY (tenant, id)",
        ),
        (
            "sub_categories",
            f"tenant {TEXT}, id {TEXT}, category_id {TEXT}, name {TEXT}, created_us BIGINT NOT NULL, "
            f"updated_us BIGINT NOT NULL, body {TEXT}, PRIMARY KEY (tenant, id)",
        ),
        (
            "contact_policies",
            f"tenant {TEXT}, id {TEXT}, name {TEXT}, status {TEXT}, created_us BIGINT NOT NULL, "
            f"updated_us BIGINT NOT NULL, body {TEXT}, PRIMARY KEY (tenant, id)",
        ),
        (
            "api_keys",
            f"id {TEXT} PRIMARY KEY, tenant {TEXT}, name {TEXT}, role {TEXT}, secret_sha256 {TEXT}, "
            "created_us BIGINT NOT NULL, expires_us BIGINT, revoked_us BIGINT",
        ),
        ("api_key_changes", "version BIGINT NOT NULL"),
        (
            "decision_log",
            f"tenant {TEXT}, id {TEXT}, logged_us BIGINT NOT NULL, body BYTEA NOT NULL, PRIMARY KEY (tenant, id)",
        ),
        (
            "outcome_matching",
            f"tenant {TEXT}, customer_id {TEXT}, offer_id {TEXT}, last_occurred_us BIGINT NOT NULL, "
            "last_type INTEGER NOT NULL, last_seq BIGINT NOT NULL, waiting BIGINT NOT NULL, matched BIGINT NOT NULL, "
            "PRIMARY KEY (tenant, customer_id, offer_id)",
        ),
    ):
        conn.execute(f"CREATE TABLE {table} ({body})")
    for index in (
        "UNIQUE INDEX offers_by_name ON offers (tenant, name)",
        "INDEX offers_by_creation ON offers (tenant, created_us, id)",
        "INDEX offers_by_category ON offers (tenant, category_id)",
        "INDEX offers_by_sub_category ON offers (tenant, sub_category_id)",
        "UNIQUE INDEX outcomes_by_key ON outcomes (tenant, idempotency_key)",
        "UNIQUE INDEX outcomes_one_impression ON outcomes (tenant, decision_id, offer_id) "
        "WHERE type = 1 AND decision_id <> ''",
        "INDEX outcomes_by_offer ON outcomes (tenant, offer_id)",
        "INDEX outcomes_by_customer_offer ON outcomes (tenant, customer_id, offer_id, type)",
        "UNIQUE INDEX categories_by_name ON categories (tenant, name)",
        "INDEX categories_by_creation ON categories (tenant, created_us, id)",
        "UNIQUE INDEX sub_categories_by_name ON sub_categories (tenant, category_id, name)",
        "INDEX sub_categories_by_creation ON sub_categories (tenant, created_us, id)",
        "UNIQUE INDEX contact_policies_by_name ON contact_policies (tenant, name)",
        "INDEX contact_policies_by_creation ON contact_policies (tenant, created_us, id)",
        "INDEX api_keys_by_creation ON api_keys (tenant, created_us, id)",
        "INDEX decision_log_by_age ON decision_log (logged_us)",
    ):
        conn.execute(f"CREATE {index}")
    conn.execute("INSERT INTO api_key_changes (version) VALUES (0)")
    # Any change to the keys, by a server or the keys CLI, moves the version and tells every server.
    conn.execute(
        "CREATE FUNCTION arbiter_api_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE api_key_changes SET version = version + 1; "
        "PERFORM pg_notify('arbiter_api_keys', ''); RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys "
        "FOR EACH STATEMENT EXECUTE FUNCTION arbiter_api_keys_changed()"
    )


def _v002_instance(conn: PostgresConnection) -> None:
    """A random id of this database, made once: every server on it names its shared state (Redis keys) by it,
    however each reaches the database, and databases sharing one Redis stay apart."""
    conn.execute("CREATE TABLE arbiter_instance (id TEXT NOT NULL)")
    conn.execute("INSERT INTO arbiter_instance (id) VALUES (replace(gen_random_uuid()::text, '-', ''))")


CATALOG_TABLES = ("offers", "categories", "sub_categories", "contact_policies", "tenant_settings")


def _v003_catalog_notices(conn: PostgresConnection) -> None:
    """A change to a tenant's configuration, by any server, tells every server which tenant changed.

    The notice goes out when the change commits (never for a change rolled back); notices with the
    same tenant in one transaction are delivered once."""
    conn.execute(
        "CREATE FUNCTION arbiter_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM pg_notify('arbiter_catalog', CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant ELSE NEW.tenant END); "
        "RETURN NULL; END $$"
    )
    for table in CATALOG_TABLES:
        conn.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION arbiter_catalog_changed()"
        )


MIGRATIONS: list[tuple[str, Callable[[PostgresConnection], None]]] = [
    ("v001_schema", _v001_schema),
    ("v002_instance", _v002_instance),
    ("v003_catalog_notices", _v003_catalog_notices),
]


def instance_id(conn: PostgresConnection) -> str:
    """The database's own id (made by the migrations)."""
    row = conn.execute("SELECT id FROM arbiter_instance").fetchone()
    assert row is not None, "made by the v002_instance migration"
    return str(row[0])


def migrate(conn: PostgresConnection) -> list[str]:
    """Apply the migrations this database lacks, in order, each in its own transaction; returns their names."""
    conn.execute("SELECT pg_advisory_lock(?)", [_LOCK_ID])  # held by this session until unlocked below
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS arbiter_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ)")
        done = {row[0] for row in conn.execute("SELECT name FROM arbiter_migrations")}
        applied: list[str] = []
        for name, step in MIGRATIONS:
            if name in done:
                continue
            conn.begin()
            try:
                step(conn)
                conn.execute("INSERT INTO arbiter_migrations (name, applied_at) VALUES (?, now())", [name])
                conn.commit()
            except BaseException:
                if not conn.broken:
                    conn.rollback()
                raise
            applied.append(name)
        return applied
    finally:
        if not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(?)", [_LOCK_ID])
