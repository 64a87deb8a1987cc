"""The decision log in SQL: sampled decisions written by the writer thread, purged by age (storage layer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ...domain.decision_log import US_PER_DAY, LoggedDecision, logged_decision
from ...domain.decisions import DecisionRequest, DecisionResult
from ...domain.errors import Unavailable
from ...domain.timekeeping import Clock
from .connection import SqlConnection
from .decision_codec import decode_decision, encode_decision
from .reader import Reader
from .writer import Writer

log = logging.getLogger(__name__)

PURGE_EVERY_US = 3_600 * 1_000_000  # at most one purge an hour (by the injected clock)


class SqlDecisionLog:
    """`keep` queues a job for the writer without waiting (it joins the writer's next batch); the stored
    form is built and compressed there too, off the event loop. Expired rows are deleted at start-up and,
    by the clock, at most hourly with the next write or read; reads never return them meanwhile."""

    def __init__(self, writer: Writer, reader: Reader, clock: Clock, retention_days: int) -> None:
        self._writer = writer
        self._reader = reader
        self._clock = clock
        self._retention_us = retention_days * US_PER_DAY
        self._next_purge_us = 0
        # Keeps queued but not yet committed, so that reading a decision just made waits for its row
        # instead of missing it (the reader cannot see the writer's queue).
        self._pending: dict[tuple[str, str], asyncio.Future[None]] = {}

    def _cutoff(self, now_us: int) -> int:
        return now_us - self._retention_us

    def _purge_due(self, now_us: int) -> int | None:
        """The cutoff to purge below when a purge is due now, else None."""
        if now_us < self._next_purge_us:
            return None
        self._next_purge_us = now_us + PURGE_EVERY_US
        return self._cutoff(now_us)

    def purge_now(self) -> asyncio.Future[int]:
        """Queue a purge of everything past the retention (start-up); resolves to the rows deleted."""
        now = self._clock.now_us()
        self._next_purge_us = now + PURGE_EVERY_US
        cutoff = self._cutoff(now)
        return self._writer.submit(lambda db: _purge(db, cutoff))

    def keep(self, tenant: str, decision_id: str, request: DecisionRequest, result: DecisionResult) -> None:
        now = self._clock.now_us()
        cutoff = self._purge_due(now)

        def work(db: SqlConnection) -> None:
            blob = encode_decision(logged_decision(decision_id, now, request, result))
            db.execute(
                "INSERT INTO decision_log (tenant, id, logged_us, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (tenant, id) DO UPDATE SET logged_us = excluded.logged_us, body = excluded.body",
                [tenant, decision_id, now, blob],
            )
            if cutoff is not None:
                _purge(db, cutoff)

        try:
            future = self._writer.submit(work)
        except Unavailable:  # shutting down: a sample is not worth delaying it
            return
        key = (tenant, decision_id)
        self._pending[key] = future
        future.add_done_callback(_log_failure)
        future.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: tuple[str, str], future: asyncio.Future[None]) -> None:
        if self._pending.get(key) is future:
            del self._pending[key]

    async def get(self, tenant: str, decision_id: str) -> LoggedDecision | None:
        pending = self._pending.get((tenant, decision_id))
        if pending is not None:  # its write failing is logged by keep; the read then finds nothing
            await asyncio.wait([pending])
        now = self._clock.now_us()
        cutoff = self._purge_due(now)
        if cutoff is not None:
            with contextlib.suppress(Unavailable):  # shutting down
                self._writer.submit(lambda db: _purge(db, cutoff)).add_done_callback(_log_failure)
        floor = self._cutoff(now)

        def query(conn: SqlConnection) -> tuple[int, bytes] | None:
            row: tuple[int, bytes] | None = conn.execute(
                "SELECT logged_us, body FROM decision_log WHERE tenant = ? AND id = ? AND logged_us > ?",
                [tenant, decision_id, floor],
            ).fetchone()
            return row

        row = await self._reader.run(query)
        if row is None:
            return None
        return decode_decision(decision_id, row[0], row[1])


def _purge(db: SqlConnection, cutoff_us: int) -> int:
    return db.execute("DELETE FROM decision_log WHERE logged_us <= ?", [cutoff_us]).rowcount


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("writing to the decision log failed: %s", future.exception())
