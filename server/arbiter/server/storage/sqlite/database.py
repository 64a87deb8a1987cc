"""Opening SQLite connections with the server's settings (storage layer)."""

from __future__ import annotations

import enum
import sqlite3
from pathlib import Path

from sqlite_utils import Database

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


def open_writer(path: Path, durability: Durability, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Database:
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
    db = Database(conn, execute_plugins=False)
    migrations.apply(db)
    return db


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection; WAL lets it read while the writer writes."""
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only = ON")
    return conn


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
