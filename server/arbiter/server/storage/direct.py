"""One connection straight to a server's database, for tools that run beside it (the keys CLI) (storage layer)."""

from __future__ import annotations

from pathlib import Path

from .sql.connection import WriteConnection
from .sqlite.database import Durability, open_writer


def open_directly(db: Path | str) -> WriteConnection:
    """A connection to the SQLite file or postgresql:// URL `db`, migrated to the current schema.

    Raises PostgresNotUsable when a Postgres cannot be used (unreachable, too old).
    """
    if isinstance(db, str):
        from .postgres.backend import check_and_migrate  # psycopg only when asked for

        return check_and_migrate(db)
    return open_writer(db, Durability.FULL)
