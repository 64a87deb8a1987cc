"""The embedded backend assembled: one SQLite file, its writer and readers, in-process counters and histories."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ...app.ports import NO_TELEMETRY, Stores, Telemetry
from ...domain.decision_log import DEFAULT_RETENTION_DAYS
from ...domain.timekeeping import Clock
from ..sql.key_store import SqlKeyStore
from ..sql.reader import Reader
from ..sql.stores import assemble_stores
from ..sql.writer import Writer
from .database import BUSY_TIMEOUT_MS, Durability, open_reader, open_writer
from .keys import key_changes
from .lock import DatabaseLock


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
        writer = Writer(lambda: open_writer(path, durability, busy_timeout_ms), telemetry)
        writer.start(asyncio.get_running_loop())  # opens and migrates the database
    except BaseException:
        lock.release()
        raise
    reader = Reader(lambda: open_reader(path))
    # A connection of its own, only ever used on the event loop, to notice the keys CLI's changes.
    watch = open_reader(path)
    keys = SqlKeyStore(writer, reader, key_changes(watch))

    async def close() -> None:
        await writer.close()
        reader.close()
        watch.close()
        lock.release()

    return assemble_stores(
        writer, reader, keys, clock, customer_cache_size, telemetry, decision_log_days=decision_log_days, close=close
    )
