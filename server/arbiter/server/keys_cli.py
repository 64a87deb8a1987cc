"""`arbiter keys ...`: create, list and revoke API keys straight in the database (bootstrapping).

Works with or without a server running on the same database: a running
server notices the change (on SQLite before its next call, on Postgres by a
notification a moment after the commit).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from .config import DEFAULT_DB, database, describe_database
from .domain.access import ApiKey, Role, key_violations, new_secret, secret_sha256, tenant_id_problem
from .domain.errors import DomainError, raise_if_invalid
from .domain.timekeeping import utc_now
from .storage.direct import open_directly
from .storage.postgres.errors import PostgresNotUsable
from .storage.sql.connection import WriteConnection
from .storage.sql.key_store import create_key_directly, read_keys, revoke_key_directly

T = TypeVar("T")


def _instant(text: str) -> datetime:
    """An RFC 3339 instant; one without an offset is read as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arbiter keys", description="Manage API keys in an Arbiter database.")
    parser.add_argument(
        "--db",
        default=os.environ.get("ARBITER_DB", DEFAULT_DB),
        help="the server's SQLite database file, or its postgresql://… URL",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print its secret (shown only once)")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default="", help="a label for people")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in-days", type=float, help="the key stops working after this many days")
    expiry.add_argument(
        "--expires-at", type=_instant, help="the key stops working at this instant (RFC 3339, e.g. 2027-01-31T18:00Z)"
    )
    create.add_argument("--db", dest="db_sub", help=argparse.SUPPRESS)
    commands.add_parser("list", help="list every key (never the secrets)").add_argument(
        "--db", dest="db_sub", help=argparse.SUPPRESS
    )
    revoke = commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    revoke.add_argument("--db", dest="db_sub", help=argparse.SUPPRESS)
    return parser


def keys_main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    db = database(args.db_sub or args.db)
    try:
        return _run(args, db) if isinstance(db, str) else _run_on_file(args, db)
    except PostgresNotUsable as exc:
        print(f"arbiter keys: --db {describe_database(db)}: {exc}", file=sys.stderr)
        return 2


def _run_on_file(args: argparse.Namespace, db: Path) -> int:
    if args.command != "create" and not db.is_file():
        # Opening would create (and migrate) an empty database: a typo in --db, or a run from the
        # wrong directory, would then list nothing instead of saying where the keys are not.
        print(
            f"arbiter keys: no database at {db}; give --db the server's database file "
            f"(arbiter keys --db FILE {args.command} ...); `create` makes a new one",
            file=sys.stderr,
        )
        return 2
    if not db.parent.is_dir():
        print(f"arbiter keys: {db.parent}: no such directory (for --db {db})", file=sys.stderr)
        return 2
    return _run(args, db)


def _run(args: argparse.Namespace, db: Path | str) -> int:
    now = utc_now()
    try:
        if args.command == "create":
            problem = tenant_id_problem(args.tenant)
            if problem is not None:
                print(f"arbiter keys: {problem}", file=sys.stderr)
                return 2
            expires = args.expires_at
            if args.expires_in_days is not None:
                expires = now + timedelta(days=args.expires_in_days)
            role = Role(args.role)
            raise_if_invalid((), key_violations(args.name, role, expires, now))
            key_id, secret = new_secret()
            key = ApiKey(key_id, args.tenant, args.name, role, secret_sha256(secret), now, expires)
            _with_connection(db, lambda conn: create_key_directly(conn, key))
            print(secret)
            print(
                f"created {key.id} (tenant {key.tenant}, role {key.role.value}); the secret above is not stored",
                file=sys.stderr,
            )
        elif args.command == "list":
            for key in _with_connection(db, read_keys):
                state = (
                    "revoked" if key.revoked_at else "expired" if key.expires_at and key.expires_at <= now else "valid"
                )
                print(f"{key.id}\t{key.tenant}\t{key.role.value}\t{state}\t{key.name}")
        else:
            if not _with_connection(db, lambda conn: revoke_key_directly(conn, args.id, now)):
                print(f"arbiter keys: no key {args.id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}", file=sys.stderr)
    except DomainError as error:
        print(f"arbiter keys: {error.message}", file=sys.stderr)
        return 2
    return 0


def _with_connection(db: Path | str, work: Callable[[WriteConnection], T]) -> T:
    conn = open_directly(db)
    try:
        return work(conn)
    finally:
        conn.close()
