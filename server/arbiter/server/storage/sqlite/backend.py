"""The embedded backend assembled: one SQLite file, its writer and readers, in-process counters and histories."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from ...app.ports import NO_TELEMETRY, Stores, Telemetry
from ...domain.customer_history import HISTORY_LOOKBACK_US, MAX_EVENTS_PER_CUSTOMER, CustomerHistory, HistoryEvent
from ...domain.decision_log import DEFAULT_RETENTION_DAYS
from ...domain.timekeeping import Clock
from ..inprocess.counters import DayRows, InProcessCounters
from ..inprocess.histories import InProcessHistories
from .catalog_store import SqliteCatalogStore
from .database import BUSY_TIMEOUT_MS, Durability
from .decision_log import SqliteDecisionLog
from .key_store import SqliteKeyStore
from .lock import DatabaseLock
from .outcome_log import SqliteOutcomeLog
from .reader import Reader
from .writer import Writer


def open_sqlite(
    path: Path,
    durability: Durability,
    clock: Clock,
    customer_cache_size: int,
    telemetry: Telemetry = NO_TELEMETRY,
    decision_log_days: int = DEFAULT_RETENTION_DAYS,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> Stores:
    """Lock, open (and migrate) the database and load what the counters and histories start from.

    Call on the event loop that will serve; raises DatabaseInUse when another
    server holds the file.
    """
    lock = DatabaseLock(path).acquire()
    try:
        writer = Writer(path, durability, telemetry, busy_timeout_ms)
        writer.start(asyncio.get_running_loop())  # opens and migrates the database
    except BaseException:
        lock.release()
        raise
    reader = Reader(path)
    keys = SqliteKeyStore(path, writer, reader)

    def load_day(tenant: str, day: int, on_loaded: Callable[[DayRows], None]) -> asyncio.Future[DayRows]:
        def work(db: Database) -> DayRows:
            # On the writer thread, so the read is ordered with every ledger commit.
            return db.execute(
                "SELECT offer_id, impressions, spend_micros FROM offer_daily WHERE tenant = ? AND day = ?",
                [tenant, day],
            ).fetchall()

        return writer.submit(work, on_loaded)

    def load_history(
        tenant: str, customer: str, on_loaded: Callable[[CustomerHistory], None]
    ) -> asyncio.Future[CustomerHistory]:
        since = clock.now_us() - HISTORY_LOOKBACK_US

        def work(db: Database) -> CustomerHistory:
            rows = db.execute(
                "SELECT occurred_us, seq, offer_id, type, channel FROM outcomes "
                "WHERE tenant = ? AND customer_id = ? AND occurred_us > ? "
                "ORDER BY occurred_us DESC, seq DESC LIMIT ?",
                [tenant, customer, since, MAX_EVENTS_PER_CUSTOMER],
            ).fetchall()
            return CustomerHistory([HistoryEvent(*row) for row in rows])

        return writer.submit(work, on_loaded)

    counters = InProcessCounters(load_day)
    histories = InProcessHistories(load_history, capacity=customer_cache_size, telemetry=telemetry)

    def load_state(conn: sqlite3.Connection) -> None:
        counters.load_totals(
            conn.execute("SELECT tenant, offer_id, SUM(impressions) FROM offer_daily GROUP BY tenant, offer_id"),
            conn.execute("SELECT tenant, model_ref, offer_id, trials, positives FROM model_stats"),
        )
        since = clock.now_us() - HISTORY_LOOKBACK_US
        histories.load_known(
            conn.execute("SELECT DISTINCT tenant, customer_id FROM outcomes WHERE occurred_us > ?", [since])
        )

    reader.run_now(load_state)
    decisions = SqliteDecisionLog(writer, reader, clock, decision_log_days)
    decisions.purge_now()  # expired decisions go at start-up, before anything new is written

    async def close() -> None:
        await writer.close()
        reader.close()
        keys.close()
        lock.release()

    return Stores(
        catalog=SqliteCatalogStore(writer, reader),
        keys=keys,
        outcomes=SqliteOutcomeLog(writer, clock),
        counters=counters,
        histories=histories,
        decisions=decisions,
        close=close,
        refuse_queued_writes=writer.refuse_queued,
    )
