"""Per-customer outcome histories held in this process: a bounded LRU over the durable store (storage layer).

A customer the server has never recorded an outcome for skips the store
entirely (the `known` filter). A known customer missing from the LRU is
loaded through a `HistoryLoader`, whose `on_loaded` runs in commit order with
the outcome log's `on_commit` (SQLite: both are writer jobs), so a load sees
exactly the outcomes committed before it and every later one is applied to
the loaded history. Nothing is lost or counted twice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from ...app.ports import NO_TELEMETRY, Telemetry
from ...domain.customer_history import CustomerHistory, HistoryEvent

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


class HistoryLoader(Protocol):
    def __call__(
        self, tenant: str, customer: str, on_loaded: Callable[[CustomerHistory], None]
    ) -> Awaitable[CustomerHistory]:
        """Read the customer's recent committed outcomes; run `on_loaded` with them in commit order, on the loop."""
        ...


class InProcessHistories:
    """Histories by (tenant, customer), at most `capacity` of them in memory (the CustomerHistories port)."""

    def __init__(
        self, load: HistoryLoader, capacity: int = DEFAULT_CAPACITY, telemetry: Telemetry = NO_TELEMETRY
    ) -> None:
        self._load = load
        self._telemetry = telemetry
        self.capacity = capacity
        self._known = SeenFilter()
        self._cache: OrderedDict[Key, CustomerHistory] = OrderedDict()
        self._loading: dict[Key, Awaitable[CustomerHistory]] = {}
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
            self._telemetry.customer_cache(hit=True)
            return history
        self._telemetry.customer_cache(hit=False)
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(tenant, customer, lambda loaded: self._store(key, loaded)))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
            self.loads += 1
        return await asyncio.shield(pending)

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
        # event from the store when loaded: the load runs after this commit.

    def load_known(self, customers: Iterable[Key]) -> None:
        """Which (tenant, customer) pairs have any history (start-up)."""
        for key in customers:
            self._known.add(key)
