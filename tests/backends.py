"""The backend the end-to-end tests run on: ARBITER_TEST_BACKEND=sqlite (the default) or postgres.

`make test` runs the suite once on each. On postgres, one throwaway Postgres
server and one Redis on free loopback ports serve the whole run (conftest
starts them and stops them), and each database file a test names stands for
a database of its own there (each database keeps its Redis keys apart by its
own id, so one Redis serves them all): the same path gives the same database, so a test that restarts a
server on its file finds its data again, as it would on SQLite. Tests about
what only a SQLite file has (its bytes, locks, backups) are marked
`sqlite_only` and are not collected on postgres.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for scripts/
from scripts import local_services
from scripts.local_services import PostgresServer, RedisServer

BACKEND = os.environ.get("ARBITER_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"ARBITER_TEST_BACKEND={BACKEND!r}: use sqlite or postgres")

_postgres: list[PostgresServer] = []  # the run's server, once started
_redis: list[RedisServer] = []
_created: set[str] = set()


def on_postgres() -> bool:
    return BACKEND == "postgres"


def start_postgres(folder: Path) -> PostgresServer:
    """The run's Postgres server, tuned for throwaway data (nothing here must survive a power cut)."""
    server = PostgresServer(folder).start()
    with psycopg.connect(server.url, autocommit=True) as conn:
        for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
            conn.execute(f"ALTER SYSTEM SET {setting}")
        conn.execute("SELECT pg_reload_conf()")
    _postgres.append(server)
    return server


def start_redis(folder: Path) -> RedisServer:
    server = RedisServer(folder).start()
    _redis.append(server)
    return server


def stop_servers() -> None:
    while _redis:
        _redis.pop().stop()
    while _postgres:
        _postgres.pop().stop()
    _created.clear()


def free_port() -> int:
    """A loopback port nothing listens on (for a server a test starts of its own)."""
    return local_services.free_port()


def redis_url() -> str:
    """The run's Redis, for a server on any Postgres (the suite's or a test's own)."""
    assert _redis, "the Redis server starts with the session (conftest.py)"
    return _redis[0].url


def server_args(db: Path | str) -> list[str]:
    """The flags that put a server on the file `db` (on postgres: on its database, with the run's Redis)."""
    target = database(db)
    return ["--db", str(target), *(["--redis", redis_url()] if isinstance(target, str) else [])]


def postgres() -> PostgresServer:
    assert _postgres, "the Postgres server starts with the session (conftest.py)"
    return _postgres[0]


def database(db: Path | str) -> Path | str:
    """What to give --db for the file `db`: the file itself on sqlite, its own database on postgres."""
    if not on_postgres() or isinstance(db, str):
        return db
    name = "t_" + hashlib.sha256(str(Path(db).absolute()).encode()).hexdigest()[:24]
    server = postgres()
    if name not in _created:
        with psycopg.connect(server.url, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                conn.execute(f"CREATE DATABASE {name}")
        _created.add(name)
    return server.url_for(name)


def query(db: Path | str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of `sql` (`?` placeholders) read straight from the database the file `db` stands for."""
    target = database(db)
    if isinstance(target, str):
        with psycopg.connect(target, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as lite:
        return lite.execute(sql, params).fetchall()


ARBITER_TABLES = ("offers", "offer_tags", "categories", "sub_categories", "contact_policies", "outcomes", "api_keys")


def assert_sound(db: Path | str) -> None:
    """The database is sound after what a test did: SQLite's integrity check; on Postgres (whose storage a
    client cannot damage) every Arbiter table reads whole."""
    if on_postgres():
        for table in ARBITER_TABLES:
            query(db, f"SELECT count(*) FROM {table}")
        return
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
