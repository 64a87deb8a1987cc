"""`arbiter backup` and `arbiter restore`: consistent copies of a database file, live or idle."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import DEFAULT_DB, database
from .storage.sqlite.backup import BackupError, backup_database, restore_database
from .storage.sqlite.lock import DatabaseInUse


def _sqlite_file(text: str) -> Path:
    """--db for backup and restore: a SQLite file; Postgres has its own tools."""
    db = database(text)
    if isinstance(db, str):
        raise argparse.ArgumentTypeError("backs up SQLite files only: on Postgres use pg_dump and pg_restore")
    return db


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=_sqlite_file, default=os.environ.get("ARBITER_DB", DEFAULT_DB), help="SQLite database file"
    )


def backup_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="arbiter backup",
        description="Copy a database to OUT as one consistent snapshot, while a server runs on it or not.",
    )
    _db_option(parser)
    parser.add_argument("out", type=Path, metavar="OUT", help="the backup file to write")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(list(argv))
    try:
        backup_database(args.db, args.out, force=args.force)
    except BackupError as exc:
        print(f"arbiter backup: {exc}", file=sys.stderr)
        return 2
    print(f"backed up {args.db} to {args.out}", file=sys.stderr)
    return 0


def restore_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="arbiter restore",
        description="Replace a database with a backup (checked first); refused while a server serves the database.",
    )
    _db_option(parser)
    parser.add_argument("backup", type=Path, metavar="BACKUP", help="a file written by arbiter backup")
    parser.add_argument("--force", action="store_true", help="replace the database if it exists")
    args = parser.parse_args(list(argv))
    try:
        restore_database(args.db, args.backup, force=args.force)
    except (BackupError, DatabaseInUse) as exc:
        print(f"arbiter restore: {exc}", file=sys.stderr)
        return 2
    print(f"restored {args.backup} into {args.db}", file=sys.stderr)
    return 0
