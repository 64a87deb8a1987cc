"""`arbiter migrate --from FILE --to URL`: copy a SQLite database into an empty Postgres database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import POSTGRES_SCHEMES, describe_database
from .storage.postgres.errors import PostgresNotUsable

DESCRIPTION = (
    "Copy every row of a SQLite database into an empty Postgres database, in one transaction (all of it or "
    "nothing). Stop the server on the SQLite file first; start servers on the Postgres database after."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arbiter migrate", description=DESCRIPTION)
    parser.add_argument("--from", dest="source", required=True, metavar="FILE", help="the SQLite database file")
    parser.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="the empty Postgres database, postgresql://…"
    )
    return parser


def _refuse(message: str) -> int:
    print(f"arbiter migrate: {message}", file=sys.stderr)
    return 2


def migrate_main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    source_text: str = args.source
    target: str = args.target
    if source_text.startswith(POSTGRES_SCHEMES):
        return _refuse(f"--from {describe_database(source_text)}: give the SQLite database file to copy from")
    if not target.startswith(POSTGRES_SCHEMES):
        return _refuse(
            f"--to {describe_database(target)}: not a Postgres URL; give postgresql://USER@HOST:PORT/DATABASE"
        )
    source = Path(source_text)
    try:
        from .storage.copy import CopyRefused, SourceRefused, TargetRefused, copy_database  # needs psycopg
    except ModuleNotFoundError as exc:
        if exc.name != "psycopg":
            raise
        return _refuse("the Postgres driver is not installed: pip install 'arbiter-decisioning[distributed]'")
    try:
        counts = copy_database(source, target)
    except SourceRefused as exc:
        return _refuse(f"--from {source}: {exc}")
    except (TargetRefused, PostgresNotUsable) as exc:
        return _refuse(f"--to {describe_database(target)}: {exc}")
    except CopyRefused as exc:  # about both sides: their schemas differ
        return _refuse(str(exc))
    width = max(len(name) for name in [*counts, "total"])
    for name, rows in counts.items():
        print(f"{name:<{width}}  {rows:>12,}")
    print(f"{'total':<{width}}  {sum(counts.values()):>12,}")
    print(
        f"copied {source} into {describe_database(target)}; serve it with --db {describe_database(target)}",
        file=sys.stderr,
    )
    return 0
