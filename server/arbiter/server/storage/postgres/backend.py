"""The distributed backend assembled: Postgres as the system of record, Redis for what servers share hot.

The repositories are the embedded backend's (storage/sql); only the
connections, the schema and how changes are noticed differ. Redis holds the
counters with their reservations (redis/counters.py) and copies of customer
histories (redis/histories.py).
"""

from __future__ import annotations

import asyncio

import psycopg

from ...app.ports import NO_TELEMETRY, OfferCounts, Stores, Telemetry
from ...domain.decision_log import DEFAULT_RETENTION_DAYS
from ...domain.timekeeping import Clock
from ..inprocess.counters import InProcessCounters
from ..probe import AllReachable
from ..redis.connection import check_redis, open_client
from ..redis.counters import SharedCounters
from ..redis.errors import RedisNotUsable
from ..redis.histories import SharedHistories
from ..redis.reachability import redis_probe
from ..sql.connection import SqlConnection
from ..sql.key_store import SqlKeyStore
from ..sql.reader import Reader
from ..sql.stores import assemble_stores, history_loader
from ..sql.writer import Writer
from .changes import CatalogListener
from .connection import PostgresConnection, connect, domain_error, first_line, open_connection, server_version_problem
from .errors import PostgresNotUsable
from .keys import KeyListener
from .migrations import instance_id, migrate
from .reachability import postgres_probe


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
    redis_url: str,
    clock: Clock,
    customer_cache_size: int,
    telemetry: Telemetry = NO_TELEMETRY,
    decision_log_days: int = DEFAULT_RETENTION_DAYS,
) -> Stores:
    """Connect, migrate and load what the counters and histories start from (call on the serving loop)."""
    problem = check_redis(redis_url)
    if problem is not None:
        raise RedisNotUsable(problem)
    first = check_and_migrate(url)
    namespace = instance_id(first)
    try:
        listener = KeyListener(lambda: connect(url))
    except BaseException:
        first.close()
        raise
    unused = [first]  # the writer starts on the checked connection; after a loss it connects again
    writer_pid: list[int] = []

    def writer_connection() -> PostgresConnection:
        conn = unused.pop() if unused else connect(url)
        writer_pid[:] = [conn.raw.info.backend_pid]
        return conn

    try:
        changes = CatalogListener(lambda: connect(url), lambda: writer_pid[0] if writer_pid else None)
    except BaseException:
        first.close()
        listener.close()
        raise

    writer = Writer(writer_connection, telemetry)
    writer.start(asyncio.get_running_loop())
    reader = Reader(lambda: connect(url), domain_error)
    keys = SqlKeyStore(writer, reader, listener.refresh, listener.confirm_unknown)
    postgres = postgres_probe(url)
    client = open_client(redis_url)
    redis = redis_probe(client)

    async def close() -> None:
        await asyncio.gather(postgres.close(), redis.close())
        await writer.close()
        await histories.close()
        await counters.close()
        reader.close()
        await asyncio.gather(asyncio.to_thread(listener.close), asyncio.to_thread(changes.close))

    def read_committed(tenant: str, day: int | None) -> asyncio.Future[list[tuple[str, int]]]:
        def work(conn: SqlConnection) -> list[tuple[str, int]]:
            if day is None:
                sql = (
                    "SELECT offer_id, CAST(SUM(impressions) AS BIGINT) FROM offer_daily "
                    "WHERE tenant = ? GROUP BY offer_id"
                )
                return conn.execute(sql, [tenant]).fetchall()
            sql = "SELECT offer_id, spend_micros FROM offer_daily WHERE tenant = ? AND day = ?"
            return conn.execute(sql, [tenant, day]).fetchall()

        return writer.submit(work)

    def read_counts(tenant: str, offer_id: str, model_ref: str, day: int) -> asyncio.Future[OfferCounts]:
        def work(conn: SqlConnection) -> OfferCounts:
            lifetime, today, spend = conn.execute(
                "SELECT CAST(COALESCE(SUM(impressions), 0) AS BIGINT), "
                "CAST(COALESCE(SUM(CASE WHEN day = ? THEN impressions ELSE 0 END), 0) AS BIGINT), "
                "CAST(COALESCE(SUM(CASE WHEN day = ? THEN spend_micros ELSE 0 END), 0) AS BIGINT) "
                "FROM offer_daily WHERE tenant = ? AND offer_id = ?",
                [day, day, tenant, offer_id],
            ).fetchone()
            model = conn.execute(
                "SELECT trials, positives FROM model_stats WHERE tenant = ? AND model_ref = ? AND offer_id = ?",
                [tenant, model_ref, offer_id],
            ).fetchone()
            trials, positives = model if model_ref and model is not None else (0, 0)
            return OfferCounts(lifetime, today, spend, trials, positives)

        return writer.submit(work)

    histories = SharedHistories(
        client, namespace, history_loader(writer, clock), capacity=customer_cache_size, telemetry=telemetry
    )
    stores = assemble_stores(
        writer,
        reader,
        keys,
        clock,
        customer_cache_size,
        telemetry,
        decision_log_days=decision_log_days,
        close=close,
        histories=histories,
    )
    assert isinstance(stores.counters, InProcessCounters)
    stores.counters = counters = SharedCounters(stores.counters, client, namespace, read_committed, read_counts)
    postgres.start()
    redis.start()
    stores.reachability = AllReachable([postgres, redis])
    stores.changes = changes
    return stores
