"""A SQL backend's stores assembled around its writer and reader (storage layer).

Both SQL backends keep counters in this process's memory, loaded from the
database at start-up and kept current by the writes this process commits;
so are customer histories, unless the backend shares them (Redis).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ...app.ports import CustomerHistories, Stores, Telemetry
from ...domain.customer_history import HISTORY_LOOKBACK_US, MAX_EVENTS_PER_CUSTOMER, CustomerHistory, HistoryEvent
from ...domain.timekeeping import Clock
from ..inprocess.counters import DayRows, InProcessCounters
from ..inprocess.histories import HistoryLoader, InProcessHistories
from .catalog_store import SqlCatalogStore
from .connection import SqlConnection
from .decision_log import SqlDecisionLog
from .key_store import SqlKeyStore
from .outcome_log import SqlOutcomeLog
from .reader import Reader
from .writer import Writer


def history_loader(writer: Writer, clock: Clock) -> HistoryLoader:
    """Reads a customer's recent outcomes on the writer thread, in line with the ledger's commits."""

    def load_history(
        tenant: str, customer: str, on_loaded: Callable[[CustomerHistory], None]
    ) -> asyncio.Future[CustomerHistory]:
        since = clock.now_us() - HISTORY_LOOKBACK_US

        def work(conn: SqlConnection) -> CustomerHistory:
            rows = conn.execute(
                "SELECT occurred_us, seq, offer_id, type, channel FROM outcomes "
                "WHERE tenant = ? AND customer_id = ? AND occurred_us > ? "
                "ORDER BY occurred_us DESC, seq DESC LIMIT ?",
                [tenant, customer, since, MAX_EVENTS_PER_CUSTOMER],
            ).fetchall()
            return CustomerHistory([HistoryEvent(*row) for row in rows])

        return writer.submit(work, on_loaded)

    return load_history


def assemble_stores(
    writer: Writer,
    reader: Reader,
    keys: SqlKeyStore,
    clock: Clock,
    customer_cache_size: int,
    telemetry: Telemetry,
    decision_log_days: int,
    close: Callable[[], Awaitable[None]],
    histories: CustomerHistories | None = None,
) -> Stores:
    """Load what the counters and histories start from and return the bundle (call on the serving loop).

    Without `histories`, customer histories are kept in this process (loaded through `history_loader`)."""

    def load_day(tenant: str, day: int, on_loaded: Callable[[DayRows], None]) -> asyncio.Future[DayRows]:
        def work(conn: SqlConnection) -> DayRows:
            # On the writer thread, so the read is ordered with every ledger commit.
            rows: DayRows = conn.execute(
                "SELECT offer_id, impressions, spend_micros FROM offer_daily WHERE tenant = ? AND day = ?",
                [tenant, day],
            ).fetchall()
            return rows

        return writer.submit(work, on_loaded)

    counters = InProcessCounters(load_day)
    local = None
    if histories is None:
        histories = local = InProcessHistories(
            history_loader(writer, clock), capacity=customer_cache_size, telemetry=telemetry
        )

    def load_state(conn: SqlConnection) -> None:
        counters.load_totals(
            conn.execute(
                "SELECT tenant, offer_id, CAST(SUM(impressions) AS BIGINT) FROM offer_daily GROUP BY tenant, offer_id"
            ),
            conn.execute("SELECT tenant, model_ref, offer_id, trials, positives FROM model_stats"),
        )
        if local is not None:
            since = clock.now_us() - HISTORY_LOOKBACK_US
            local.load_known(
                conn.execute("SELECT DISTINCT tenant, customer_id FROM outcomes WHERE occurred_us > ?", [since])
            )

    reader.run_now(load_state)
    decisions = SqlDecisionLog(writer, reader, clock, decision_log_days)
    decisions.purge_now()  # expired decisions go at start-up, before anything new is written
    return Stores(
        catalog=SqlCatalogStore(writer, reader),
        keys=keys,
        outcomes=SqlOutcomeLog(writer, clock),
        counters=counters,
        histories=histories,
        decisions=decisions,
        close=close,
        refuse_queued_writes=writer.refuse_queued,
    )
