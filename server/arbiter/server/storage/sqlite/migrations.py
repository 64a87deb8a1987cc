"""Versioned schema migrations (storage layer).

Migrations run in order, each in its own transaction, and are recorded in
sqlite-utils' `_sqlite_migrations` table; a database made by an older server
is upgraded on start-up. Never edit a migration that has shipped: add one.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from ...domain.outcomes import MatchState, advance

migrations = Migrations("arbiter")


@migrations()
def m001_offers(db: Database) -> None:
    """Offers, with the columns List filters and orders on; the full offer is JSON in `body`."""
    db.execute(
        """
        CREATE TABLE offers (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            category_id TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE UNIQUE INDEX offers_by_name ON offers (tenant, name)")
    db.execute("CREATE INDEX offers_by_creation ON offers (tenant, created_us, id)")
    db.execute(
        """
        CREATE TABLE offer_tags (
            tenant TEXT NOT NULL,
            tag TEXT NOT NULL,
            offer_id TEXT NOT NULL,
            PRIMARY KEY (tenant, tag, offer_id)
        ) WITHOUT ROWID
        """
    )


@migrations()
def m002_outcomes_counters_settings(db: Database) -> None:
    """Outcomes (the durable record), the per-day ledger, adaptive-model counts and tenant settings."""
    db.execute(
        """
        CREATE TABLE outcomes (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            offer_id TEXT NOT NULL,
            type INTEGER NOT NULL,
            decision_id TEXT NOT NULL,
            channel TEXT NOT NULL,
            occurred_us INTEGER NOT NULL,
            recorded_us INTEGER NOT NULL,
            positive INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX outcomes_by_key ON outcomes (tenant, idempotency_key)")
    # An impression is recorded once per decision and offer, whichever key reports it.
    db.execute(
        "CREATE UNIQUE INDEX outcomes_one_impression ON outcomes (tenant, decision_id, offer_id) "
        "WHERE type = 1 AND decision_id <> ''"
    )
    db.execute("CREATE INDEX outcomes_by_customer ON outcomes (tenant, customer_id, occurred_us)")
    db.execute("CREATE INDEX outcomes_by_offer ON outcomes (tenant, offer_id)")
    db.execute(
        """
        CREATE TABLE offer_daily (
            tenant TEXT NOT NULL,
            offer_id TEXT NOT NULL,
            day INTEGER NOT NULL,
            impressions INTEGER NOT NULL,
            spend_micros INTEGER NOT NULL,
            PRIMARY KEY (tenant, day, offer_id)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE model_stats (
            tenant TEXT NOT NULL,
            model_ref TEXT NOT NULL,
            offer_id TEXT NOT NULL,
            trials INTEGER NOT NULL,
            positives INTEGER NOT NULL,
            PRIMARY KEY (tenant, model_ref, offer_id)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE tenant_settings (
            tenant TEXT PRIMARY KEY,
            timezone TEXT NOT NULL,
            updated_us INTEGER NOT NULL
        )
        """
    )


@migrations()
def m003_catalog(db: Database) -> None:
    """Categories and sub-categories; offers get an indexed sub_category_id.

    Offers written before categories existed named categories by free ids.
    Every id they use becomes a real (active, schema-less) category or
    sub-category named after it, so old data keeps its meaning and passes
    the referential rules that start to apply now.
    """
    db.execute(
        """
        CREATE TABLE categories (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE UNIQUE INDEX categories_by_name ON categories (tenant, name)")
    db.execute("CREATE INDEX categories_by_creation ON categories (tenant, created_us, id)")
    db.execute(
        """
        CREATE TABLE sub_categories (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            category_id TEXT NOT NULL,
            name TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE UNIQUE INDEX sub_categories_by_name ON sub_categories (tenant, category_id, name)")
    db.execute("CREATE INDEX sub_categories_by_creation ON sub_categories (tenant, created_us, id)")
    db.execute("ALTER TABLE offers ADD COLUMN sub_category_id TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE offers SET sub_category_id = json_extract(body, '$.sub_category_id')")
    db.execute("CREATE INDEX offers_by_category ON offers (tenant, category_id)")
    db.execute("CREATE INDEX offers_by_sub_category ON offers (tenant, sub_category_id)")
    db.execute(
        """
        INSERT INTO categories (tenant, id, name, status, created_us, updated_us, body)
        SELECT tenant, category_id, category_id, 'active', MIN(created_us), MIN(created_us),
               json_object('name', category_id, 'description', '', 'status', 'active',
                           'display_order', 0, 'custom_fields', json('[]'))
        FROM offers WHERE category_id <> '' GROUP BY tenant, category_id
        """
    )
    db.execute(
        """
        INSERT INTO sub_categories (tenant, id, category_id, name, created_us, updated_us, body)
        SELECT tenant, sub_category_id, MIN(category_id), sub_category_id, MIN(created_us), MIN(created_us),
               json_object('name', sub_category_id, 'description', '')
        FROM offers WHERE sub_category_id <> '' AND category_id <> '' GROUP BY tenant, sub_category_id
        """
    )


@migrations()
def m004_contact_policies(db: Database) -> None:
    """Contact policies; the rule is JSON in `body`."""
    db.execute(
        """
        CREATE TABLE contact_policies (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE UNIQUE INDEX contact_policies_by_name ON contact_policies (tenant, name)")
    db.execute("CREATE INDEX contact_policies_by_creation ON contact_policies (tenant, created_us, id)")


@migrations()
def m005_outcomes_by_customer_offer(db: Database) -> None:
    """Index outcomes by customer and offer, in place of by customer and time.

    Counting a customer's impressions and clicks of one offer (adaptive-model
    positives) needs (customer, offer); loading a customer's history reads
    all of that customer's rows either way. One index fewer to maintain on
    every outcome insert.
    """
    db.execute("CREATE INDEX outcomes_by_customer_offer ON outcomes (tenant, customer_id, offer_id, type)")
    db.execute("DROP INDEX outcomes_by_customer")


@migrations()
def m006_api_keys(db: Database) -> None:
    """API keys (hashed), and a version that every change to them bumps.

    The server watches the version (cheaply, see ApiKeyRepository) so that
    keys created or revoked by another process, such as the keys CLI, take
    effect on the next call.
    """
    db.execute(
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            secret_sha256 TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            expires_us INTEGER,
            revoked_us INTEGER
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX api_keys_by_creation ON api_keys (tenant, created_us, id)")
    db.execute("CREATE TABLE api_key_changes (version INTEGER NOT NULL)")
    db.execute("INSERT INTO api_key_changes (version) VALUES (0)")
    for event in ("INSERT", "UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER api_keys_{event.lower()} AFTER {event} ON api_keys "
            "BEGIN UPDATE api_key_changes SET version = version + 1; END"
        )


@migrations()
def m007_decision_log(db: Database) -> None:
    """Sampled decisions (request, answer, every candidate's fate) as compressed JSON, kept for a retention.

    Keyed by tenant first, so one tenant can never read another's; the index
    on `logged_us` makes the retention purge a range delete.
    """
    db.execute(
        """
        CREATE TABLE decision_log (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            logged_us INTEGER NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (tenant, id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX decision_log_by_age ON decision_log (logged_us)")


@migrations()
def m008_outcome_matching(db: Database) -> None:
    """Adaptive-model matching state per (tenant, customer, offer), built from the stored outcomes.

    Recording a click used to read and match the customer's whole history of
    the offer; with the state kept here, an outcome that is the latest of its
    pair in event time costs O(1) (storage/sqlite/outcome_log.py). The
    backfill replays each pair's impressions, clicks and conversions in event
    time, as the writer would have; only pairs with a click or conversion
    get a state (the writer keeps none for the others).
    """
    db.execute(
        """
        CREATE TABLE outcome_matching (
            tenant TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            offer_id TEXT NOT NULL,
            last_occurred_us INTEGER NOT NULL,
            last_type INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            waiting INTEGER NOT NULL,
            matched INTEGER NOT NULL,
            PRIMARY KEY (tenant, customer_id, offer_id)
        ) WITHOUT ROWID
        """
    )
    rows = db.execute(
        "SELECT tenant, customer_id, offer_id, occurred_us, type, seq FROM outcomes WHERE type IN (1, 2, 3) "
        "ORDER BY tenant, customer_id, offer_id, occurred_us, type, seq"
    )
    done: list[tuple[object, ...]] = []
    pair: tuple[str, str, str] | None = None
    state: MatchState | None = None
    positive = False
    for tenant, customer, offer_id, occurred_us, event_type, seq in rows:
        if pair != (tenant, customer, offer_id):
            if pair is not None and state is not None and positive:
                done.append((*pair, *state.last, state.waiting, state.matched))
            pair, state, positive = (tenant, customer, offer_id), None, False
        state = advance(state, (occurred_us, event_type, seq))
        assert state is not None  # the rows come in event order
        positive = positive or event_type != 1
        if len(done) >= 10_000:
            _insert_matching(db, done)
    if pair is not None and state is not None and positive:
        done.append((*pair, *state.last, state.waiting, state.matched))
    _insert_matching(db, done)


def _insert_matching(db: Database, rows: list[tuple[object, ...]]) -> None:
    db.conn.executemany(
        "INSERT INTO outcome_matching (tenant, customer_id, offer_id, last_occurred_us, last_type, last_seq, "
        "waiting, matched) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    rows.clear()
