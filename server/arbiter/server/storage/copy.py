"""Copying an Arbiter SQLite database into an empty Postgres database: `arbiter migrate` (storage layer).

The two backends have the same tables and columns (storage/sqlite/migrations.py,
storage/postgres/migrations.py), so every row goes across as it is, in
batches, inside ONE Postgres transaction: the target ends up with all of it
or with none of it. Outcomes keep their `seq` (written with `OVERRIDING
SYSTEM VALUE`, then the identity sequence is moved past the largest), so
idempotency keys, ordering and `outcome_matching.last_seq` stay valid.
SQLite's migration records are not copied, nor is `api_key_changes`: its
version is a change counter, and the trigger on `api_keys` moves it as the
keys go in. Tables only Postgres has (its own bookkeeping) keep what they hold.

The source is read in one read transaction (one snapshot) while this process
holds the server lock `<db>.lock`, so no server serves it meanwhile; the
target must hold no data and have no other Arbiter session (a server loads
its catalogue and counters when it starts, so one already running on the
target would never see what was copied).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from .postgres.backend import check_and_migrate
from .postgres.connection import PostgresConnection, first_line
from .sql.connection import SqlConnection
from .sqlite.database import Durability, SqliteConnection, open_reader, open_writer
from .sqlite.lock import DatabaseInUse, DatabaseLock

BATCH_ROWS = 5_000  # rows per executemany: a few MB at most, whatever the size of the database
SESSIONS_GRACE_SECONDS = 5.0  # how long sessions of a server that just stopped get to go away
LOCK_TIMEOUT = "5s"  # how long the copy waits for another session's lock on a target table

# SQLite's tables that are not data: its migration records, and the keys' change counter. Tables only
# Postgres has (its migration records, its own bookkeeping) are not data from SQLite and are left alone.
_SQLITE_BOOKKEEPING = ("_sqlite_migrations", "api_key_changes")


class CopyRefused(RuntimeError):
    """The copy cannot be made, or failed; the message says why in one line. The target is left unchanged."""


class SourceRefused(CopyRefused):
    """What is wrong is the SQLite file."""


class TargetRefused(CopyRefused):
    """What is wrong is the Postgres database."""


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    identity: str | None  # the column Postgres generates (outcomes.seq), written with OVERRIDING SYSTEM VALUE


def copy_database(source: Path, url: str, *, batch_rows: int = BATCH_ROWS) -> dict[str, int]:
    """Copy every row of the SQLite database `source` into the empty Postgres database at `url`.

    The source is migrated to the current schema first when an older server
    made it. Returns the rows copied per table, in schema order. Raises
    SourceRefused or TargetRefused (one line; nothing written to the target)
    and PostgresNotUsable when `url` cannot be used at all.
    """
    if not source.is_file():
        raise SourceRefused("no such database file")
    # Checked before the lock is taken: taking it creates <file>.lock beside whatever file was named.
    problem = _source_problem(source)
    if problem is not None:
        raise SourceRefused(problem)
    lock = DatabaseLock(source)
    try:
        lock.acquire()
    except DatabaseInUse:
        raise SourceRefused(
            f"served by a running arbiter server (pid {_holder(lock)}); stop it first, so that nothing "
            "it writes during the copy is left behind"
        ) from None
    except OSError as exc:
        raise SourceRefused(f"cannot take the server lock {lock.path} ({exc.strerror or exc})") from None
    try:
        target = check_and_migrate(url)
        try:
            reader = _open_source(source)
            try:
                return copy_rows(reader, target, batch_rows=batch_rows)
            finally:
                reader.close()
        finally:
            target.close()
    finally:
        lock.release()


def _holder(lock: DatabaseLock) -> str:
    """The pid the server holding `lock` wrote into the lock file."""
    try:
        return lock.path.read_text(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


def _source_problem(source: Path) -> str | None:
    """Why `source` is not an Arbiter database to copy from (read without changing it), or None."""
    try:
        conn = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"cannot open it as a database ({exc})"
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for name in ("_sqlite_migrations", "offers"):
            if name not in tables:
                return f"not an Arbiter database (no table {name})"
        if conn.execute("SELECT COUNT(*) FROM _sqlite_migrations WHERE migration_set = 'arbiter'").fetchone()[0] == 0:
            return "not an Arbiter database (no Arbiter migrations recorded)"
    except sqlite3.DatabaseError as exc:
        return f"not a readable SQLite database ({exc})"
    finally:
        conn.close()
    return None


def _open_source(source: Path) -> SqliteConnection:
    """A read-only connection to `source`, after bringing its schema up to date as a server would on start."""
    try:
        open_writer(source, Durability.FULL).close()
        return open_reader(source)
    except sqlite3.Error as exc:
        raise SourceRefused(f"cannot bring its schema up to date ({exc})") from None


def copy_rows(source: SqlConnection, target: PostgresConnection, *, batch_rows: int = BATCH_ROWS) -> dict[str, int]:
    """Copy every data table of the opened SQLite `source` into the opened, empty Postgres `target`.

    One Postgres transaction; the source is read in one read transaction.
    Returns the rows copied per table. Raises TargetRefused when the target
    holds data or another Arbiter session, or when Postgres refuses a row.
    """
    tables = _tables(source, target)
    try:
        # Before the transaction: within one, Postgres shows the sessions as they were when it began.
        others = _other_sessions(target)
        if others:
            raise TargetRefused(
                f"{others} other arbiter session(s) are connected to it (a server running on it?); stop them "
                "first: a server reads the data only when it starts"
            )
        target.begin()
        _claim_target(target, tables)
        counts = _copy_tables(source, target, tables, batch_rows)
    except BaseException as exc:
        if target.in_transaction and not target.broken:
            with contextlib.suppress(psycopg.Error):
                target.rollback()
        if isinstance(exc, psycopg.Error):
            raise TargetRefused(f"the copy failed ({first_line(exc)}); nothing was written") from None
        raise
    try:
        target.commit()
    except psycopg.Error as exc:
        raise TargetRefused(
            f"the commit failed ({first_line(exc)}); the target holds all of the copy or none of it: look before "
            "running again"
        ) from None
    return counts


def _tables(source: SqlConnection, target: PostgresConnection) -> list[_Table]:
    """SQLite's data tables, in its schema order; CopyRefused when one is not in Postgres with the same columns."""
    try:
        names = [
            row[0]
            for row in source.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
            if row[0] not in _SQLITE_BOOKKEEPING
        ]
        lite = {
            name: tuple(row[0] for row in source.execute("SELECT name FROM pragma_table_info(?)", [name]))
            for name in names
        }
    except sqlite3.Error as exc:
        raise SourceRefused(f"cannot read its schema ({exc})") from None
    try:
        rows = target.execute(
            "SELECT c.table_name, c.column_name, c.is_identity FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
        ).fetchall()
    except psycopg.Error as exc:
        raise TargetRefused(f"cannot read its schema ({first_line(exc)})") from None
    postgres: dict[str, dict[str, bool]] = {}
    for table, column, is_identity in rows:
        postgres.setdefault(table, {})[column] = is_identity == "YES"
    missing = [name for name in names if name not in postgres]
    if missing:
        raise CopyRefused(
            f"the schemas differ: table {missing[0]} is not in Postgres (is one side from another version?)"
        )
    tables: list[_Table] = []
    for name in names:
        if set(lite[name]) != set(postgres[name]):
            odd = sorted(set(lite[name]) ^ set(postgres[name]))[0]
            raise CopyRefused(f"the schemas differ: column {name}.{odd} is not on both sides")
        identity = [column for column, generated in postgres[name].items() if generated]
        tables.append(_Table(name, lite[name], identity[0] if identity else None))
    return tables


def _claim_target(target: PostgresConnection, tables: list[_Table]) -> None:
    """Lock the target's tables for the copy; refuse a target that holds data."""
    try:
        target.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        names = ", ".join(_quoted(table.name) for table in tables)
        # Nobody reads or writes them until the copy commits: a server starting meanwhile loads everything.
        target.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
    except psycopg.errors.LockNotAvailable:
        raise TargetRefused(f"its tables are in use by another session (waited {LOCK_TIMEOUT})") from None
    for table in tables:
        if _scalar(target, f"SELECT EXISTS (SELECT 1 FROM {_quoted(table.name)})"):
            raise TargetRefused(f"it already holds data (table {table.name} has rows); copy into a new, empty database")


def _other_sessions(target: PostgresConnection) -> int:
    """How many other Arbiter sessions (servers, the keys CLI) are connected to the target's database.

    Those of a server that has just stopped take a moment to end: they get SESSIONS_GRACE_SECONDS.
    """
    deadline = time.monotonic() + SESSIONS_GRACE_SECONDS
    while True:
        count = int(
            _scalar(
                target,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'arbiter' AND pid <> pg_backend_pid()",
            )
        )
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _copy_tables(
    source: SqlConnection, target: PostgresConnection, tables: list[_Table], batch_rows: int
) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        source.execute("BEGIN")  # one snapshot of every table
        try:
            for table in tables:
                counts[table.name] = _copy_table(source, target, table, batch_rows)
        finally:
            source.execute("ROLLBACK")  # it only read
    except sqlite3.Error as exc:
        raise SourceRefused(f"reading it failed ({exc}); nothing was written") from None
    return counts


def _copy_table(source: SqlConnection, target: PostgresConnection, table: _Table, batch_rows: int) -> int:
    columns = ", ".join(_quoted(column) for column in table.columns)
    overriding = " OVERRIDING SYSTEM VALUE" if table.identity else ""
    insert = (
        f"INSERT INTO {_quoted(table.name)} ({columns}){overriding} VALUES ({', '.join('?' for _ in table.columns)})"
    )
    copied = 0
    try:
        rows = iter(source.execute(f"SELECT {columns} FROM {_quoted(table.name)}"))
        while batch := list(itertools.islice(rows, batch_rows)):
            target.executemany(insert, batch)
            copied += len(batch)
        if table.identity is not None:
            # The next generated value comes after every copied one (1 on an empty table).
            target.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({_quoted(table.identity)}), 0) + 1, "
                f"false) FROM {_quoted(table.name)}",
                [table.name, table.identity],
            )
    except sqlite3.Error as exc:
        raise SourceRefused(f"reading table {table.name} failed ({exc}); nothing was written") from None
    except psycopg.Error as exc:
        raise TargetRefused(f"writing table {table.name} failed ({first_line(exc)}); nothing was written") from None
    return copied


def _scalar(target: PostgresConnection, sql: str) -> Any:
    row = target.execute(sql).fetchone()
    assert row is not None  # an aggregate or EXISTS answers one row
    return row[0]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
