"""Versioned schema migrations (storage layer).

Migrations run in order, each in its own transaction, and are recorded in
sqlite-utils' `_sqlite_migrations` table; a database made by an older server
is upgraded on start-up. Never edit a migration that has shipped: add one.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

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
