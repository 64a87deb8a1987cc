"""One connection interface over SQLite and Postgres, so each repository's SQL is written once (storage layer).

Statements use `?` placeholders and the SQL both databases speak: upserts with
`ON CONFLICT`, `RETURNING`, row-value comparisons, savepoints. Each backend
adapts its driver to `SqlConnection` (storage/sqlite/database.py,
storage/postgres/connection.py) and says what its driver's errors mean to
the caller (`WriteConnection.domain_error`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Rows(Protocol):
    """What a statement returns: the DB-API cursor subset the repositories use."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class SqlConnection(Protocol):
    """A connection the repositories read and write through."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def execute_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Run `sql` once per parameter row and return each run's rows, in order (Postgres: all in one
        round trip; a statement about one key keeps every lookup on its index, however many keys)."""
        ...

    def savepoint(self) -> Any:
        """A context manager: the statements inside roll back together when it raises."""
        ...

    def close(self) -> None: ...


class WriteConnection(SqlConnection, Protocol):
    """The writer's connection: it opens and ends the transactions itself."""

    @property
    def in_transaction(self) -> bool: ...
    def begin(self) -> None:
        """Start a transaction that will be able to write (SQLite: take the write lock now)."""
        ...

    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def domain_error(self, exc: BaseException) -> Exception | None:
        """The error the caller gets for the driver's `exc`, None when it is unexpected (INTERNAL).

        UNAVAILABLE for a database that cannot be used now (a lock held elsewhere, a lost server);
        INVALID_ARGUMENT for a value the database cannot store."""
        ...

    @property
    def broken(self) -> bool:
        """Whether the connection is lost and must be replaced before the next batch."""
        ...


_savepoint_names = itertools.count(1)


@contextmanager
def savepoint(connection: SqlConnection) -> Iterator[None]:
    """Run the body inside a savepoint of the current transaction (both databases speak this SQL)."""
    name = f"sp{next(_savepoint_names)}"
    connection.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
        connection.execute(f"RELEASE SAVEPOINT {name}")
        raise
    connection.execute(f"RELEASE SAVEPOINT {name}")
