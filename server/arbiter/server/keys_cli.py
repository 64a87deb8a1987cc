"""`arbiter keys ...`: create, list and revoke API keys straight in the database (bootstrapping).

Works with or without a server running on the same database: a running
server notices the change before its next call.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .config import DEFAULT_DB
from .domain.access import ApiKey, Role, key_violations, new_secret, secret_sha256, tenant_id_problem
from .domain.errors import DomainError, raise_if_invalid
from .domain.timekeeping import utc_now
from .storage.sqlite.key_store import create_key_offline, list_keys_offline, revoke_key_offline


def _instant(text: str) -> datetime:
    """An RFC 3339 instant; one without an offset is read as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arbiter keys", description="Manage API keys in an Arbiter database.")
    parser.add_argument("--db", default=os.environ.get("ARBITER_DB", DEFAULT_DB), help="SQLite database file")
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
    db = Path(args.db_sub or args.db)
    now = utc_now()
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
            create_key_offline(db, key)
            print(secret)
            print(
                f"created {key.id} (tenant {key.tenant}, role {key.role.value}); the secret above is not stored",
                file=sys.stderr,
            )
        elif args.command == "list":
            for key in list_keys_offline(db):
                state = (
                    "revoked" if key.revoked_at else "expired" if key.expires_at and key.expires_at <= now else "valid"
                )
                print(f"{key.id}\t{key.tenant}\t{key.role.value}\t{state}\t{key.name}")
        else:
            if not revoke_key_offline(db, args.id, now):
                print(f"arbiter keys: no key {args.id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}", file=sys.stderr)
    except DomainError as error:
        print(f"arbiter keys: {error.message}", file=sys.stderr)
        return 2
    return 0
