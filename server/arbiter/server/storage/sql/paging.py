"""Keyset pages over (created_us, id) for List calls (storage layer)."""

from __future__ import annotations

from typing import Any

from ...domain.pagination import PageCursor
from .connection import SqlConnection
from .reader import Reader


async def rows_after(
    reader: Reader,
    *,
    table: str,
    columns: str,
    tenant: str,
    conditions: list[str],
    params: list[Any],
    after: PageCursor | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """Up to `limit` rows of `table` for `tenant` after the cursor, ordered by (created_us, id).

    `conditions` are extra SQL conditions with `params` (values, never text
    from a request, go into `params`).
    """
    sql = [f"SELECT {columns} FROM {table} WHERE tenant = ?", *(f"AND {c}" for c in conditions)]
    args: list[Any] = [tenant, *params]
    if after is not None:
        sql.append("AND (created_us, id) > (?, ?)")
        args.extend([after.created_us, after.id])
    sql.append("ORDER BY created_us, id LIMIT ?")
    args.append(limit)
    query = " ".join(sql)

    def run(conn: SqlConnection) -> list[tuple[Any, ...]]:
        return conn.execute(query, args).fetchall()

    return await reader.run(run)
