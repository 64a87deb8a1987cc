"""The core on the in-memory fakes, for fast unit tests of the use cases and the funnel (no ports, no files).

`make_core()` gives the real use cases (app.core.Core) over storage/memory's
stores, with a ManualClock and view rebuilds on the event loop. Tests are
plain functions that run a coroutine with `run(...)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from arbiter.server.app.core import Core
from arbiter.server.domain.access import Principal, Role
from arbiter.server.domain.catalog import Category, CategoryStatus
from arbiter.server.domain.decisions import DecisionRequest
from arbiter.server.domain.errors import Decoded
from arbiter.server.domain.offers import Offer, OfferStatus
from arbiter.server.domain.outcomes import OutcomeInput, OutcomeRecord, OutcomeType
from arbiter.server.domain.timekeeping import ManualClock, to_epoch_micros
from arbiter.server.storage.memory.backend import MemoryDatabase, memory_stores

T = TypeVar("T")
START = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)  # a Wednesday, noon UTC
TENANT = "unit"
ADMIN = Principal(TENANT, Role.ADMIN)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@dataclass
class CoreUnderTest:
    core: Core
    db: MemoryDatabase
    clock: ManualClock
    principal: Principal = ADMIN

    @property
    def now_us(self) -> int:
        return self.clock.now_us()

    async def offer(self, name: str, **fields: Any) -> Offer:
        """Create an active offer (medium priority unless given)."""
        fields.setdefault("status", OfferStatus.ACTIVE)
        return await self.core.offers.create(self.principal, Decoded(Offer(name=name, **fields)))

    async def category(self, name: str, **fields: Any) -> Category:
        fields.setdefault("status", CategoryStatus.ACTIVE)
        return await self.core.catalog.create_category(self.principal, Decoded(Category(name=name, **fields)), "")

    async def decide(self, customer: str = "c-1", **fields: Any) -> Any:
        """Decide (at the clock's time unless `decision_us` is given); returns the Decision."""
        fields.setdefault("decision_us", self.now_us)
        request = DecisionRequest(customer_id=customer, **fields)
        return await self.core.decisions.decide(self.principal, Decoded(request))

    async def outcome(
        self, customer: str, offer_id: str, kind: OutcomeType, key: str, at: datetime | None = None
    ) -> OutcomeRecord:
        occurred = to_epoch_micros(at) if at is not None else self.now_us
        outcome = OutcomeInput(customer, offer_id, kind, occurred_us=occurred, idempotency_key=key)
        (record,) = await self.core.outcomes.record(self.principal, Decoded([outcome]), bulk=False)
        return record

    def ids(self, decision: Any) -> list[str]:
        return [decided.offer.id for decided in decision.result.offers]


def make_core(start: datetime = START, *, customer_cache_size: int = 1_000) -> CoreUnderTest:
    """Call inside a running event loop (the views' rebuilds are tasks on it)."""
    clock = ManualClock(start)
    stores, db = memory_stores(clock, customer_cache_size=customer_cache_size)
    return CoreUnderTest(Core.start(stores, clock), db, clock)
