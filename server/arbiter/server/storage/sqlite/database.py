"""Opening SQLite connections with the server's settings, as the shared SQL repositories use them (storage layer)."""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ...domain.errors import Unavailable
from ..sql.connection import savepoint
from .migrations import migrations

BUSY_TIMEOUT_MS = 5_000
WRITER_CACHE_KIB = 8 * 1024
WAL_AUTOCHECKPOINT_PAGES = 16_384


class Durability(enum.Enum):
    """How much an acknowledged write survives.

    PROCESS (synchronous=NORMAL in WAL mode) survives a crash or kill -9 of
    the server; FULL (synchronous=FULL) also survives power loss, at the cost
    of an fsync per committed batch.
    """

    PROCESS = "process"
    FULL = "full"

    def __str__(self) -> str:
        return self.value


class SqliteConnection:
    """A sqlite3 connection in autocommit mode (transactions are begun explicitly) as a `WriteConnection`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.isolation_level = None  # no implicit BEGIN: the writer and savepoints say when
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    def execute_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        return [self.raw.execute(sql, params).fetchall() for params in rows]

    def savepoint(self) -> AbstractContextManager[None]:
        return savepoint(self)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def begin(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    @property
    def broken(self) -> bool:
        return False  # a file does not go away

    def domain_error(self, exc: BaseException) -> Exception | None:
        if is_busy(exc):
            return Unavailable("the database is locked by another process; retry shortly", reason="DATABASE_BUSY")
        return None


def open_writer(path: Path, durability: Durability, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> SqliteConnection:
    """The single write connection, migrated to the current schema.

    `busy_timeout_ms` is how long a write waits for a lock another process
    holds before it fails (tests shorten it).
    """
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=busy_timeout_ms / 1000)
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = " + ("FULL" if durability is Durability.FULL else "NORMAL"))
    conn.execute("PRAGMA foreign_keys = ON")
    # Outcomes insert into four indexes with random keys: a page cache of a
    # few MiB keeps their hot pages in memory (bigger ones buy little and make
    # resident memory climb for as long as the database grows), and a bigger
    # WAL lets a batch commit without checkpointing every time (SQLite's
    # default is every 1,000 pages).
    conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    migrations.apply(Database(conn, execute_plugins=False))
    return SqliteConnection(conn)


def open_reader(path: Path) -> SqliteConnection:
    """A read-only connection; WAL lets it read while the writer writes."""
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only = ON")
    return SqliteConnection(conn)


def is_busy(exc: BaseException) -> bool:
    """Whether SQLite gave up waiting for a lock (another process holds the database)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF
        in (
            sqlite3.SQLITE_BUSY,
            sqlite3.SQLITE_LOCKED,
        )
    )
