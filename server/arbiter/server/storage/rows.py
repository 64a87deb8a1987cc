"""Small queries every repository needs, inside writer jobs (storage layer)."""

from __future__ import annotations

from sqlite_utils import Database


def row_exists(db: Database, table: str, tenant: str, row_id: str) -> bool:
    return db.execute(f"SELECT 1 FROM {table} WHERE tenant = ? AND id = ?", [tenant, row_id]).fetchone() is not None


def name_owner(db: Database, table: str, tenant: str, name: str, **scope: str) -> str | None:
    """The id of the row of `table` called `name` (within `scope` columns, if given), or None."""
    conditions = "".join(f" AND {column} = ?" for column in scope)
    row = db.execute(
        f"SELECT id FROM {table} WHERE tenant = ? AND name = ?{conditions}", [tenant, name, *scope.values()]
    ).fetchone()
    return None if row is None else str(row[0])
