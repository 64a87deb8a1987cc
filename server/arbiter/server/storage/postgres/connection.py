"""Postgres connections as the shared SQL repositories use them (storage layer).

The repositories write `?` placeholders (SQLite's style); psycopg takes `%s`.
Connections are in autocommit mode and the writer begins and commits its
transactions itself, as with SQLite. A lost server shows up as psycopg's
OperationalError: the caller gets UNAVAILABLE and the connection is replaced.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ...domain.errors import DomainError, InvalidArgument, Unavailable
from ..sql.connection import savepoint

MIN_SERVER_VERSION = 150000  # Postgres 15
CONNECT_TIMEOUT_SECONDS = 5


def database_unreachable(cause: str) -> Unavailable:
    return Unavailable(f"the database cannot be reached ({cause}); retry shortly", reason="DATABASE_UNAVAILABLE")


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """A `?`-placeholder statement in psycopg's placeholder style (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def domain_error(exc: BaseException) -> Exception | None:
    """UNAVAILABLE for a lost or unreachable server, INVALID_ARGUMENT for text Postgres cannot store, else None."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, psycopg.OperationalError):
        return database_unreachable(first_line(exc))
    if isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
        # Postgres text cannot hold U+0000. Which field carried it is not known down here; every
        # field a request names is text that reaches the database as it is.
        return InvalidArgument.single("", "text must not contain the NUL character (U+0000)")
    return None


class PostgresConnection:
    """A psycopg connection (autocommit, explicit transactions) as a `WriteConnection`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(to_postgres(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = list(rows)
        if batch:
            with self.raw.cursor() as cursor:
                cursor.executemany(to_postgres(sql), batch)

    def execute_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        if not rows:
            return []
        query = to_postgres(sql)
        with self.raw.pipeline():  # every statement sent at once; the results come back at the end of the block
            cursors = [self.raw.execute(query, params) for params in rows]
        return [cursor.fetchall() for cursor in cursors]

    def savepoint(self) -> AbstractContextManager[None]:
        return savepoint(self)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def begin(self) -> None:
        self.raw.execute("BEGIN")

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    @property
    def broken(self) -> bool:
        return self.raw.closed or self.raw.broken

    def domain_error(self, exc: BaseException) -> Exception | None:
        return domain_error(exc)


def open_connection(url: str) -> PostgresConnection:
    """A new connection to `url`; psycopg's OperationalError when there is none."""
    conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="arbiter")
    return PostgresConnection(conn)


def connect(url: str) -> PostgresConnection:
    """A new connection to `url`; UNAVAILABLE when the server cannot be reached."""
    try:
        return open_connection(url)
    except psycopg.OperationalError as exc:
        raise database_unreachable(first_line(exc)) from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def server_version_problem(conn: PostgresConnection) -> str | None:
    """Why this server is too old for Arbiter, or None."""
    version = conn.raw.info.server_version
    if version < MIN_SERVER_VERSION:
        return f"Postgres {version // 10000}.{version % 10000} is too old: Arbiter needs Postgres 15 or newer"
    return None
