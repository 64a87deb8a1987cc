"""Per-customer outcome history for the funnel: a bounded LRU over SQLite (storage layer).

A customer the server has never recorded an outcome for skips SQLite
entirely (the `known` set). A known customer missing from the LRU is loaded
with one indexed read, run as a job on the writer thread: jobs there are
ordered with every outcome commit, and their in-memory effects are applied on
the loop in that same order, so a load sees exactly the outcomes committed
before it and every later one is applied to the loaded history. Nothing is
lost or counted twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict
from collections.abc import Callable

from sqlite_utils import Database

from ..domain.customer_history import (
    HISTORY_LOOKBACK_US,
    MAX_EVENTS_PER_CUSTOMER,
    CustomerHistory,
    HistoryEvent,
)
from .writer import Writer

Key = tuple[str, str]
DEFAULT_CAPACITY = 100_000


class SeenFilter:
    """A Bloom filter of customers with any history: fixed memory however many customers there are.

    "No" is certain, so a customer never seen skips SQLite; "maybe" (rarely
    wrong) costs one read that finds nothing.
    """

    def __init__(self, bits: int = 1 << 24, hashes: int = 4) -> None:
        self._bits = bytearray(bits // 8)
        self._size = bits
        self._hashes = hashes

    def _positions(self, key: Key) -> range:
        # Double hashing from one hash: positions h, h + step, h + 2 step, ... (mod size).
        h = hash(key)
        step = (h >> 17) | 1
        return range(h, h + self._hashes * step, step)

    def add(self, key: Key) -> None:
        for raw in self._positions(key):
            position = raw % self._size
            self._bits[position >> 3] |= 1 << (position & 7)

    def __contains__(self, key: Key) -> bool:
        bits, size = self._bits, self._size
        for raw in self._positions(key):
            position = raw % size
            if not bits[position >> 3] & (1 << (position & 7)):
                return False
        return True


class CustomerHistories:
    """Histories by (tenant, customer), at most `capacity` of them in memory."""

    def __init__(self, writer: Writer, clock_us: Callable[[], int], capacity: int = DEFAULT_CAPACITY) -> None:
        self._writer = writer
        self._clock_us = clock_us
        self.capacity = capacity
        self._known = SeenFilter()
        self._cache: OrderedDict[Key, CustomerHistory] = OrderedDict()
        self._loading: dict[Key, asyncio.Future[CustomerHistory]] = {}
        self.loads = 0

    def __len__(self) -> int:
        return len(self._cache)

    def cached(self, tenant: str, customer: str) -> CustomerHistory | None:
        """The history if it is in memory (no I/O); None if not cached or never seen."""
        history = self._cache.get((tenant, customer))
        if history is not None:
            self._cache.move_to_end((tenant, customer))
        return history

    def has_history(self, tenant: str, customer: str) -> bool:
        return (tenant, customer) in self._known

    async def get(self, tenant: str, customer: str) -> CustomerHistory | None:
        """The customer's history, loading it if needed; None when there is none at all."""
        key = (tenant, customer)
        history = self.cached(tenant, customer)
        if history is not None or key not in self._known:
            return history
        pending = self._loading.get(key)
        if pending is None:
            pending = self._writer.submit(self._load_job(tenant, customer), lambda loaded: self._store(key, loaded))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
            self.loads += 1
        return await asyncio.shield(pending)

    def _load_job(self, tenant: str, customer: str) -> Callable[[Database], CustomerHistory]:
        since = self._clock_us() - HISTORY_LOOKBACK_US

        def work(db: Database) -> CustomerHistory:
            rows = db.execute(
                "SELECT occurred_us, seq, offer_id, type, channel FROM outcomes "
                "WHERE tenant = ? AND customer_id = ? AND occurred_us > ? "
                "ORDER BY occurred_us DESC, seq DESC LIMIT ?",
                [tenant, customer, since, MAX_EVENTS_PER_CUSTOMER],
            ).fetchall()
            return CustomerHistory([HistoryEvent(*row) for row in rows])

        return work

    def _store(self, key: Key, history: CustomerHistory) -> None:
        if key in self._cache:  # loaded twice (evicted in between): keep the live one
            return
        self._cache[key] = history
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    def record(self, tenant: str, customer: str, event: HistoryEvent) -> None:
        """Apply a committed outcome (on the loop, in commit order)."""
        key = (tenant, customer)
        was_known = key in self._known
        self._known.add(key)
        history = self._cache.get(key)
        if history is not None:
            history.add(event)
        elif not was_known:
            # A customer's first outcome: the history is exactly this event.
            self._store(key, CustomerHistory([event]))
        # A known customer who is not cached (or is being loaded) gets this
        # event from SQLite when loaded: the load runs after this commit.

    def load_known(self, conn: sqlite3.Connection) -> None:
        """Which customers have any history (start-up)."""
        since = self._clock_us() - HISTORY_LOOKBACK_US
        for tenant, customer in conn.execute(
            "SELECT DISTINCT tenant, customer_id FROM outcomes WHERE occurred_us > ?", [since]
        ):
            self._known.add((tenant, customer))
