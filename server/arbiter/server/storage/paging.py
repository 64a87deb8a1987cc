"""Keyset pagination over (created_us, id) for List calls (storage layer)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..domain.pagination import PageCursor, decode_page_token, encode_page_token, page_size, query_fingerprint
from .reader import Reader


async def list_page(
    reader: Reader,
    *,
    table: str,
    columns: str,
    tenant: str,
    conditions: list[str],
    params: list[Any],
    requested_page_size: int,
    page_token: str,
    filters: list[Any],
) -> tuple[list[tuple[Any, ...]], str]:
    """One page of rows of `table` for `tenant`, and the next page's token ("" on the last page).

    `columns` must start with "id, created_us"; `conditions` are extra SQL
    conditions with `params`; `filters` identify the query so that a token
    only continues the query that issued it.
    """
    size = page_size(requested_page_size)
    fingerprint = query_fingerprint(tenant, table, *filters)
    cursor = decode_page_token(page_token, fingerprint)
    sql = [f"SELECT {columns} FROM {table} WHERE tenant = ?", *(f"AND {c}" for c in conditions)]
    args: list[Any] = [tenant, *params]
    if cursor is not None:
        sql.append("AND (created_us, id) > (?, ?)")
        args.extend([cursor.created_us, cursor.id])
    sql.append("ORDER BY created_us, id LIMIT ?")
    args.append(size + 1)
    query = " ".join(sql)

    def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        return conn.execute(query, args).fetchall()

    rows = await reader.run(run)
    next_token = ""
    if len(rows) > size:
        last = rows[size - 1]
        next_token = encode_page_token(fingerprint, PageCursor(last[1], last[0]))
    return rows[:size], next_token
