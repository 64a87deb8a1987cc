"""In-memory counters: impressions, daily spend and adaptive-model counts (storage layer).

SQLite holds the committed truth (the `offer_daily` ledger and `model_stats`);
these counters mirror it, plus the reservations of decisions whose impressions
are not yet committed. The decision funnel reads them as numpy arrays aligned
with the current catalogue snapshot; every change updates the dicts and, in
place, the arrays, so nothing is rebuilt per decision. Everything here runs on
the event loop.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..domain.arrays import FloatArray, IntArray
from ..domain.catalog_snapshot import CatalogSnapshot
from ..domain.outcomes import adaptive_estimate

# Days of the ledger kept in memory per tenant (least recently used go first).
MAX_LOADED_DAYS = 32


@dataclass(slots=True)
class LiveArrays:
    """Counters aligned with one snapshot's rows (the funnel's LiveCounters)."""

    snapshot: CatalogSnapshot
    impressions: IntArray
    propensity: FloatArray
    spend_by_day: dict[int, IntArray] = field(default_factory=dict)


class TenantCounters:
    """One tenant's counters."""

    def __init__(self) -> None:
        self.lifetime: dict[str, int] = {}
        # day -> offer -> [impressions, spend micros]; only loaded days
        self.days: OrderedDict[int, dict[str, list[int]]] = OrderedDict()
        self.reserved: dict[str, int] = {}
        self.reserved_spend: dict[tuple[int, str], int] = {}
        # (model reference, offer) -> [trials, positives]
        self.model: dict[tuple[str, str], list[int]] = {}
        self.live: LiveArrays | None = None

    # -- arrays for the funnel ---------------------------------------------

    def bind(self, snapshot: CatalogSnapshot) -> LiveArrays:
        """Build the arrays for a new snapshot (on rebuild, not per decision)."""
        n = len(snapshot)
        impressions = np.zeros(n, np.int64)
        propensity = np.full(n, 0.5, np.float64)
        for i, offer in enumerate(snapshot.offers):
            impressions[i] = self.lifetime.get(offer.id, 0) + self.reserved.get(offer.id, 0)
            ref = snapshot.model_refs[i]
            if ref:
                trials, positives = self.model.get((ref, offer.id), (0, 0))
                propensity[i] = adaptive_estimate(trials, positives)
        self.live = LiveArrays(snapshot, impressions, propensity)
        return self.live

    def is_day_loaded(self, day: int) -> bool:
        return day in self.days

    def spend_array(self, day: int) -> IntArray:
        """Spend per snapshot row on `day`, reservations included (the day must be loaded)."""
        assert self.live is not None
        self.days.move_to_end(day)
        array = self.live.spend_by_day.get(day)
        if array is None:
            ledger = self.days[day]
            array = np.zeros(len(self.live.snapshot), np.int64)
            for i, offer in enumerate(self.live.snapshot.offers):
                entry = ledger.get(offer.id)
                array[i] = (entry[1] if entry else 0) + self.reserved_spend.get((day, offer.id), 0)
            self.live.spend_by_day[day] = array
        return array

    def day_ledger(self, day: int) -> dict[str, list[int]]:
        return self.days[day]

    def load_day(self, day: int, rows: list[tuple[str, int, int]]) -> None:
        if day in self.days:
            return
        self.days[day] = {offer_id: [impressions, spend] for offer_id, impressions, spend in rows}
        while len(self.days) > MAX_LOADED_DAYS:
            evicted, _ = self.days.popitem(last=False)
            if self.live is not None:
                self.live.spend_by_day.pop(evicted, None)

    # -- changes -----------------------------------------------------------

    def _bump_arrays(self, offer_id: str, day: int, impressions: int, spend: int) -> None:
        live = self.live
        if live is None:
            return
        i = live.snapshot.index.get(offer_id)
        if i is None:
            return
        live.impressions[i] += impressions
        array = live.spend_by_day.get(day)
        if array is not None:
            array[i] += spend

    def reserve(self, offer_id: str, day: int, cost: int) -> None:
        """Count a decided impression before it is committed, so concurrent decisions see it."""
        self.reserved[offer_id] = self.reserved.get(offer_id, 0) + 1
        key = (day, offer_id)
        self.reserved_spend[key] = self.reserved_spend.get(key, 0) + cost
        self._bump_arrays(offer_id, day, 1, cost)

    def _unreserve(self, offer_id: str, day: int, cost: int) -> None:
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
        """Undo a reservation whose impression was not committed."""
        self._unreserve(offer_id, day, cost)
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
            self._unreserve(offer_id, day, cost)
        else:
            self._bump_arrays(offer_id, day, 1, cost)

    def commit_model(self, ref: str, offer_id: str, trials: int, positives: int) -> None:
        entry = self.model.setdefault((ref, offer_id), [0, 0])
        entry[0] += trials
        entry[1] += positives
        live = self.live
        if live is not None:
            i = live.snapshot.index.get(offer_id)
            if i is not None and live.snapshot.model_refs[i] == ref:
                live.propensity[i] = adaptive_estimate(entry[0], entry[1])

    def forget_offer(self, offer_id: str) -> None:
        """Drop a deleted offer's counters (its outcomes stay in SQLite for reporting)."""
        self.lifetime.pop(offer_id, None)
        for ledger in self.days.values():
            ledger.pop(offer_id, None)
        for key in [k for k in self.model if k[1] == offer_id]:
            del self.model[key]


class Counters:
    """Every tenant's counters."""

    def __init__(self) -> None:
        self._tenants: defaultdict[str, TenantCounters] = defaultdict(TenantCounters)

    def tenant(self, tenant: str) -> TenantCounters:
        return self._tenants[tenant]

    def load(self, conn: sqlite3.Connection) -> None:
        """Lifetime impressions and model counts from SQLite (start-up); days load on demand."""
        for tenant, offer_id, impressions in conn.execute(
            "SELECT tenant, offer_id, SUM(impressions) FROM offer_daily GROUP BY tenant, offer_id"
        ):
            self.tenant(tenant).lifetime[offer_id] = impressions
        for tenant, ref, offer_id, trials, positives in conn.execute(
            "SELECT tenant, model_ref, offer_id, trials, positives FROM model_stats"
        ):
            self.tenant(tenant).model[(ref, offer_id)] = [trials, positives]
