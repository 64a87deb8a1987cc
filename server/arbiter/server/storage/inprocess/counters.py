"""Live counters held in this process: impressions, daily spend, adaptive-model counts (storage layer).

The durable store holds the committed truth (the day ledger and the model
counts); these counters mirror it, plus the reservations of decisions whose
impressions are not yet committed. The funnel reads them as numpy arrays
aligned with the tenant's current snapshot; every change updates the dicts
and, in place, the arrays, so nothing is rebuilt per decision. Everything
here runs on the event loop.

Days of the ledger are loaded on demand through a `DayLoader`, whose
`on_loaded` must run in commit order with the outcome log's `on_commit`
(SQLite: both are writer jobs), so a loaded day never misses or repeats a
committed impression.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ...app.ports import CounterArrays, OfferCounts, OutcomeEffect, Reservation
from ...domain.arrays import FloatArray, IntArray
from ...domain.catalog_snapshot import CatalogSnapshot
from ...domain.outcomes import OutcomeType, adaptive_estimate

# Days of the ledger kept in memory per tenant (least recently used go first).
MAX_LOADED_DAYS = 32
# One day's ledger rows: (offer id, impressions, spend micros).
DayRows = list[tuple[str, int, int]]


class DayLoader(Protocol):
    def __call__(self, tenant: str, day: int, on_loaded: Callable[[DayRows], None]) -> Awaitable[DayRows]:
        """Read the committed ledger of `day`; run `on_loaded` with it in commit order, on the loop."""
        ...


@dataclass(slots=True)
class _Arrays:
    """Counters aligned with one snapshot's rows."""

    snapshot: CatalogSnapshot
    impressions: IntArray
    propensity: FloatArray
    spend_by_day: dict[int, IntArray] = field(default_factory=dict)


class _TenantCounters:
    """One tenant's counters."""

    def __init__(self) -> None:
        self.lifetime: dict[str, int] = {}
        # day -> offer -> [impressions, spend micros]; only loaded days
        self.days: OrderedDict[int, dict[str, list[int]]] = OrderedDict()
        self.reserved: dict[str, int] = {}
        self.reserved_spend: dict[tuple[int, str], int] = {}
        # (model reference, offer) -> [trials, positives]
        self.model: dict[tuple[str, str], list[int]] = {}
        self.arrays: _Arrays | None = None

    def bind(self, snapshot: CatalogSnapshot) -> None:
        """Arrays for a newly published snapshot (not per decision).

        A snapshot patched from the one bound now takes the rows that moved
        from the current arrays (which are up to date: every change since was
        applied to them in place) and computes only its new and changed rows.
        """
        old = self.arrays
        moved = snapshot.moved_from
        n = len(snapshot)
        if old is None or moved is None or snapshot.patched_from != old.snapshot.generation:
            self.arrays = _Arrays(snapshot, np.zeros(n, np.int64), np.full(n, 0.5, np.float64))
            self._fill(snapshot, np.arange(n))
            return
        kept = moved >= 0
        fresh = np.flatnonzero(~kept)
        impressions = np.zeros(n, np.int64)
        impressions[kept] = old.impressions[moved[kept]]
        propensity = np.full(n, 0.5, np.float64)
        propensity[kept] = old.propensity[moved[kept]]
        self.arrays = _Arrays(snapshot, impressions, propensity)
        self._fill(snapshot, fresh)
        for day, spent in old.spend_by_day.items():
            array = np.zeros(n, np.int64)
            array[kept] = spent[moved[kept]]
            self.arrays.spend_by_day[day] = array
            self._fill_spend(day, array, fresh)

    def _fill(self, snapshot: CatalogSnapshot, rows: IntArray) -> None:
        """Compute the rows' impressions and propensities from the counts (reservations included)."""
        assert self.arrays is not None
        impressions, propensity = self.arrays.impressions, self.arrays.propensity
        for i in rows.tolist():
            offer_id = snapshot.offers[i].id
            impressions[i] = self.lifetime.get(offer_id, 0) + self.reserved.get(offer_id, 0)
            ref = snapshot.model_refs[i]
            if ref:
                trials, positives = self.model.get((ref, offer_id), (0, 0))
                propensity[i] = adaptive_estimate(trials, positives)

    def _fill_spend(self, day: int, array: IntArray, rows: IntArray) -> None:
        assert self.arrays is not None
        ledger = self.days.get(day, {})
        for i in rows.tolist():
            offer_id = self.arrays.snapshot.offers[i].id
            entry = ledger.get(offer_id)
            array[i] = (entry[1] if entry else 0) + self.reserved_spend.get((day, offer_id), 0)

    def spend_array(self, day: int) -> IntArray:
        """Spend per snapshot row on `day`, reservations included (the day must be loaded)."""
        assert self.arrays is not None
        self.days.move_to_end(day)
        array = self.arrays.spend_by_day.get(day)
        if array is None:
            array = np.zeros(len(self.arrays.snapshot), np.int64)
            self._fill_spend(day, array, np.arange(len(array)))
            self.arrays.spend_by_day[day] = array
        return array

    def load_day(self, day: int, rows: DayRows) -> None:
        if day in self.days:
            return
        self.days[day] = {offer_id: [impressions, spend] for offer_id, impressions, spend in rows}
        while len(self.days) > MAX_LOADED_DAYS:
            evicted, _ = self.days.popitem(last=False)
            if self.arrays is not None:
                self.arrays.spend_by_day.pop(evicted, None)

    def _bump_arrays(self, offer_id: str, day: int, impressions: int, spend: int) -> None:
        arrays = self.arrays
        if arrays is None:
            return
        i = arrays.snapshot.index.get(offer_id)
        if i is None:
            return
        arrays.impressions[i] += impressions
        array = arrays.spend_by_day.get(day)
        if array is not None:
            array[i] += spend

    def reserve(self, offer_id: str, day: int, cost: int) -> None:
        self.reserved[offer_id] = self.reserved.get(offer_id, 0) + 1
        key = (day, offer_id)
        self.reserved_spend[key] = self.reserved_spend.get(key, 0) + cost
        self._bump_arrays(offer_id, day, 1, cost)

    def unreserve(self, offer_id: str, day: int, cost: int) -> None:
        left = self.reserved.get(offer_id, 0) - 1
        if left > 0:
            self.reserved[offer_id] = left
        else:
            self.reserved.pop(offer_id, None)
        key = (day, offer_id)
        spend_left = self.reserved_spend.get(key, 0) - cost
        if spend_left > 0:
            self.reserved_spend[key] = spend_left
        else:
            self.reserved_spend.pop(key, None)

    def release(self, offer_id: str, day: int, cost: int) -> None:
        self.unreserve(offer_id, day, cost)
        self._bump_arrays(offer_id, day, -1, -cost)

    def commit_impression(self, offer_id: str, day: int, cost: int, *, reserved: bool) -> None:
        """A committed impression; if it was reserved, the arrays already count it."""
        self.lifetime[offer_id] = self.lifetime.get(offer_id, 0) + 1
        ledger = self.days.get(day)
        if ledger is not None:
            entry = ledger.setdefault(offer_id, [0, 0])
            entry[0] += 1
            entry[1] += cost
        if reserved:
            self.unreserve(offer_id, day, cost)
        else:
            self._bump_arrays(offer_id, day, 1, cost)

    def commit_model(self, ref: str, offer_id: str, trials: int, positives: int) -> None:
        entry = self.model.setdefault((ref, offer_id), [0, 0])
        entry[0] += trials
        entry[1] += positives
        arrays = self.arrays
        if arrays is not None:
            i = arrays.snapshot.index.get(offer_id)
            if i is not None and arrays.snapshot.model_refs[i] == ref:
                arrays.propensity[i] = adaptive_estimate(entry[0], entry[1])

    def forget_offer(self, offer_id: str) -> None:
        self.lifetime.pop(offer_id, None)
        for ledger in self.days.values():
            ledger.pop(offer_id, None)
        for key in [k for k in self.model if k[1] == offer_id]:
            del self.model[key]


class InProcessCounters:
    """Every tenant's live counters, in this process (the embedded backend's LiveCounters).

    Reservations are never refused here: Decide checks the caps and reserves
    without yielding, so no other decision can come between.
    """

    def __init__(self, load_day: DayLoader) -> None:
        self._load_day = load_day
        self._tenants: defaultdict[str, _TenantCounters] = defaultdict(_TenantCounters)
        self._day_loads: dict[tuple[str, int], Awaitable[DayRows]] = {}

    # -- start-up ---------------------------------------------------------------

    def load_totals(
        self, lifetime: Iterable[tuple[str, str, int]], models: Iterable[tuple[str, str, str, int, int]]
    ) -> None:
        """Lifetime impressions (tenant, offer, count) and model counts (tenant, ref, offer, trials, positives)."""
        for tenant, offer_id, impressions in lifetime:
            self._tenants[tenant].lifetime[offer_id] = impressions
        for tenant, ref, offer_id, trials, positives in models:
            self._tenants[tenant].model[(ref, offer_id)] = [trials, positives]

    # -- LiveCounters -----------------------------------------------------------

    def bind(self, tenant: str, snapshot: CatalogSnapshot) -> None:
        self._tenants[tenant].bind(snapshot)

    async def load_day(self, tenant: str, day: int) -> None:
        counters = self._tenants[tenant]
        while day not in counters.days:
            key = (tenant, day)
            pending = self._day_loads.get(key)
            if pending is None:
                pending = asyncio.ensure_future(
                    self._load_day(tenant, day, lambda rows: self._tenants[tenant].load_day(day, rows))
                )
                self._day_loads[key] = pending
                pending.add_done_callback(lambda _, key=key: self._day_loads.pop(key, None))  # type: ignore[misc]
            await asyncio.shield(pending)

    def read(self, tenant: str, snapshot: CatalogSnapshot, day: int, *, spend: bool) -> CounterArrays | None:
        counters = self._tenants[tenant]
        arrays = counters.arrays
        assert arrays is not None and arrays.snapshot is snapshot, "counters are bound when a view is published"
        if spend and day not in counters.days:  # evicted since it was loaded
            return None
        return CounterArrays(arrays.impressions, arrays.propensity, counters.spend_array(day) if spend else None)

    async def reserve(self, tenant: str, day: int, wanted: Sequence[Reservation]) -> list[bool]:
        counters = self._tenants[tenant]
        for reservation in wanted:
            counters.reserve(reservation.offer_id, day, reservation.cost_micros)
        return [True] * len(wanted)

    def release(self, tenant: str, day: int, reserved: Sequence[Reservation]) -> None:
        counters = self._tenants[tenant]
        for reservation in reserved:
            counters.release(reservation.offer_id, day, reservation.cost_micros)

    def apply(self, tenant: str, effects: Sequence[OutcomeEffect]) -> None:
        counters = self._tenants[tenant]
        for effect in effects:
            item = effect.outcome
            offer_id = item.input.offer_id
            if effect.seq is None:  # a duplicate: nothing is counted, and a reservation for it is returned
                if item.reserved:
                    counters.release(offer_id, item.day, item.cost_micros)
                continue
            impression = item.type is OutcomeType.IMPRESSION
            if impression:
                counters.commit_impression(offer_id, item.day, item.cost_micros, reserved=item.reserved)
            if item.model_ref and (impression or effect.positives):
                counters.commit_model(item.model_ref, offer_id, int(impression), effect.positives)

    def forget_offer(self, tenant: str, offer_id: str) -> None:
        """Drop a deleted offer's counters (its outcomes stay for reporting)."""
        self._tenants[tenant].forget_offer(offer_id)

    async def offer_counts(self, tenant: str, offer_id: str, model_ref: str, day: int) -> OfferCounts:
        await self.load_day(tenant, day)
        counters = self._tenants[tenant]
        impressions, spend = counters.days[day].get(offer_id, (0, 0))
        trials, positives = counters.model.get((model_ref, offer_id), (0, 0)) if model_ref else (0, 0)
        return OfferCounts(counters.lifetime.get(offer_id, 0), impressions, spend, trials, positives)

    def reserved(self, tenant: str) -> tuple[dict[str, int], dict[tuple[int, str], int]]:
        """Reservations not yet committed or released: impressions by offer, spend by (day, offer) (for tests)."""
        counters = self._tenants[tenant]
        return dict(counters.reserved), dict(counters.reserved_spend)
