"""The Postgres backend assembled: Postgres as the system of record, counters and histories in this process.

The repositories are the embedded backend's (storage/sql); only the
connections, the schema and how key changes are noticed differ.
"""

from __future__ import annotations

import asyncio

import psycopg

from ...app.ports import NO_TELEMETRY, Stores, Telemetry
from ...domain.decision_log import DEFAULT_RETENTION_DAYS
from ...domain.timekeeping import Clock
from ..sql.key_store import SqlKeyStore
from ..sql.reader import Reader
from ..sql.stores import assemble_stores
from ..sql.writer import Writer
from .connection import PostgresConnection, connect, domain_error, first_line, open_connection, server_version_problem
from .errors import PostgresNotUsable
from .keys import KeyListener
from .migrations import migrate
from .reachability import PostgresProbe


def check_and_migrate(url: str) -> PostgresConnection:
    """A connection to a Postgres that Arbiter can use, migrated to the current schema.

    Raises PostgresNotUsable, with the reason in one line, when there is none at `url`.
    """
    try:
        conn = open_connection(url)
    except psycopg.Error as exc:
        raise PostgresNotUsable(
            f"cannot connect ({first_line(exc)}); check the URL, the user and that the server runs"
        ) from None
    problem = server_version_problem(conn)
    if problem is not None:
        conn.close()
        raise PostgresNotUsable(problem)
    try:
        migrate(conn)
    except Exception as exc:
        conn.close()
        raise PostgresNotUsable(f"cannot bring the schema up to date ({first_line(exc)})") from None
    return conn


def open_postgres(
    url: str,
    clock: Clock,
    customer_cache_size: int,
    telemetry: Telemetry = NO_TELEMETRY,
    decision_log_days: int = DEFAULT_RETENTION_DAYS,
) -> Stores:
    """Connect, migrate and load what the counters and histories start from (call on the serving loop)."""
    first = check_and_migrate(url)
    try:
        listener = KeyListener(lambda: connect(url))
    except BaseException:
        first.close()
        raise
    unused = [first]  # the writer starts on the checked connection; after a loss it connects again

    def writer_connection() -> PostgresConnection:
        return unused.pop() if unused else connect(url)

    writer = Writer(writer_connection, telemetry)
    writer.start(asyncio.get_running_loop())
    reader = Reader(lambda: connect(url), domain_error)
    keys = SqlKeyStore(writer, reader, listener.refresh, listener.confirm_unknown)
    probe = PostgresProbe(url)
    probe.start()

    async def close() -> None:
        await probe.close()
        await writer.close()
        reader.close()
        await asyncio.to_thread(listener.close)

    stores = assemble_stores(
        writer, reader, keys, clock, customer_cache_size, telemetry, decision_log_days=decision_log_days, close=close
    )
    stores.reachability = probe
    return stores
