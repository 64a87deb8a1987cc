"""Online backups and restores of an Arbiter database file (storage layer).

A plain copy of a live database can be empty or stale: committed writes sit
in `<db>-wal` until a checkpoint moves them into the main file. SQLite's
online backup API copies the database as one consistent snapshot, WAL
included, through an ordinary read transaction, so it needs no server lock
and does not stop a running server from writing (WAL readers never block the
writer). A restore replaces the file, so it takes the server lock itself:
nothing may serve the database while it changes underneath.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from .database import BUSY_TIMEOUT_MS
from .lock import DatabaseLock

# Tables every Arbiter database has had since its first migration.
_ARBITER_TABLES = ("offers", "outcomes", "api_keys")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


def _connect_existing(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection to a database file that must already exist (never creates one)."""
    if not path.is_file():
        raise BackupError(f"{path}: no such database file")
    mode = "ro" if read_only else "rw"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open it as a database ({exc})") from None
    return conn


def _problem(conn: sqlite3.Connection, *, integrity: bool = True) -> str | None:
    """Why this is not a sound Arbiter database, or None."""
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [name for name in ("_sqlite_migrations", *_ARBITER_TABLES) if name not in tables]
        if missing:
            return f"not an Arbiter database (no table {missing[0]})"
        if conn.execute("SELECT COUNT(*) FROM _sqlite_migrations WHERE migration_set = 'arbiter'").fetchone()[0] == 0:
            return "not an Arbiter database (no Arbiter migrations recorded)"
        verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")] if integrity else ["ok"]
    except sqlite3.DatabaseError as exc:
        return f"not a readable SQLite database ({exc})"
    if verdict != ["ok"]:
        return "PRAGMA integrity_check failed: " + "; ".join(verdict[:5])
    return None


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Write one consistent snapshot of `source` to `target` (a new file), durable before returning."""
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    dest = sqlite3.connect(str(target))
    try:
        # pages=-1: the whole database in one step, under one read transaction, so the copy is
        # one snapshot; a step-by-step copy restarts whenever the server commits, and a busy
        # server could keep it from ever finishing.
        source.backup(dest, pages=-1)
        # The copy is a single self-contained file: no -wal beside it to lose.
        dest.execute("PRAGMA journal_mode = DELETE")
        problem = _problem(dest)
    finally:
        dest.close()
    if problem is not None:
        target.unlink()
        raise BackupError(f"the copy failed its checks: {problem}")
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_database(database: Path, out: Path, *, force: bool = False) -> None:
    """Copy a live or idle database to `out`, atomically (`out` appears complete or not at all)."""
    if out.exists() and not force:
        raise BackupError(f"{out} already exists; choose a new file, or pass --force to replace it")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent}: no such directory")
    source = _connect_existing(database, read_only=False)
    try:
        # The copy gets the full integrity check; the live file only the cheap "is it ours" one.
        problem = _problem(source, integrity=False)
        if problem is not None:
            raise BackupError(f"{database}: {problem}")
        partial = out.with_name(f".{out.name}.partial")
        try:
            _copy(source, partial)
        except sqlite3.Error as exc:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise BackupError(f"backing up {database} failed: {exc}") from None
        os.replace(partial, out)
        _fsync_directory(out.parent)
    finally:
        source.close()


def restore_database(database: Path, backup: Path, *, force: bool = False) -> None:
    """Replace `database` with the backup, atomically, while no server holds it.

    Raises DatabaseInUse (naming the server's pid) while a server serves the
    file, and BackupError when the backup is not a sound Arbiter database or
    when `database` exists and `force` is not given.
    """
    if not database.parent.is_dir():
        raise BackupError(f"{database.parent}: no such directory")
    if database.exists() and not force:
        raise BackupError(f"{database} already exists; pass --force to replace it with {backup}")
    source = _connect_existing(backup, read_only=True)
    try:
        problem = _problem(source)
        if problem is not None:
            raise BackupError(f"{backup}: {problem}; nothing was changed")
        # Held until the new file is in place, so no server can start on a half-restored database.
        lock = DatabaseLock(database).acquire()
        try:
            partial = database.with_name(f".{database.name}.restoring")
            try:
                _copy(source, partial)
            except sqlite3.Error as exc:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
                raise BackupError(f"restoring {backup} failed: {exc}; nothing was changed") from None
            # The old file's WAL and shared memory belong to the old file: left beside the new
            # one, SQLite would replay the old WAL's pages into it.
            for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            os.replace(partial, database)
            _fsync_directory(database.parent)
        finally:
            lock.release()
    finally:
        source.close()
