"""Per-tenant catalogue snapshots and the counters bound to them (storage layer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlite_utils import Database

from ..domain.catalog import CategoryStatus
from ..domain.catalog_snapshot import CatalogSnapshot
from .catalog_repository import CatalogRepository
from .counters import Counters, LiveArrays, TenantCounters
from .offer_cache import OfferCache
from .policy_repository import PolicyRepository
from .tenant_settings import TenantSettingsRepository
from .writer import Writer


class DecisionState:
    """Hands Decide an up-to-date snapshot and counters, rebuilding only after a change.

    A snapshot is keyed by the tenant's offer, catalogue and policy versions and time zone; any
    number of writes between two decisions cost one rebuild, at the first
    decision after them, which is also what makes every acknowledged write
    visible to the next Decide.
    """

    def __init__(
        self,
        offers: OfferCache,
        catalog: CatalogRepository,
        policies: PolicyRepository,
        settings: TenantSettingsRepository,
        counters: Counters,
        writer: Writer,
    ) -> None:
        self._offers = offers
        self._catalog = catalog
        self._policies = policies
        self._settings = settings
        self.counters = counters
        self._writer = writer
        self._snapshots: dict[str, tuple[tuple[int, int, int, str], CatalogSnapshot, LiveArrays]] = {}
        self._day_loads: dict[tuple[str, int], asyncio.Future[list[tuple[str, int, int]]]] = {}
        self.rebuilds = 0

    def current(self, tenant: str) -> tuple[CatalogSnapshot, LiveArrays]:
        offers = self._offers.tenant(tenant)
        catalog = self._catalog.tenant(tenant)
        timezone = self._settings.get(tenant).timezone
        policies = self._policies.tenant(tenant)
        key = (offers.version, catalog.version, policies.version, timezone)
        entry = self._snapshots.get(tenant)
        if entry is None or entry[0] != key:
            archived = frozenset(c.id for c in catalog.categories.values() if c.status is CategoryStatus.ARCHIVED)
            snapshot = CatalogSnapshot.build(
                list(offers.by_id.values()), timezone, archived, catalog.computed, list(policies.by_id.values())
            )
            live = self.counters.tenant(tenant).bind(snapshot)
            entry = (key, snapshot, live)
            self._snapshots[tenant] = entry
            self.rebuilds += 1
        return entry[1], entry[2]

    async def ensure_day(self, tenant: str, day: int) -> TenantCounters:
        """The tenant's counters with `day` of the ledger loaded (one read the first time)."""
        counters = self.counters.tenant(tenant)
        while not counters.is_day_loaded(day):
            key = (tenant, day)
            pending = self._day_loads.get(key)
            if pending is None:
                pending = self._writer.submit(
                    _day_loader(tenant, day), lambda rows: self.counters.tenant(tenant).load_day(day, rows)
                )
                self._day_loads[key] = pending
                pending.add_done_callback(lambda _, key=key: self._day_loads.pop(key, None))  # type: ignore[misc]
            await asyncio.shield(pending)
        return counters


def _day_loader(tenant: str, day: int) -> Callable[[Database], list[tuple[str, int, int]]]:
    def work(db: Database) -> list[tuple[str, int, int]]:
        # Run on the writer thread so the read is ordered with every ledger commit.
        return db.execute(
            "SELECT offer_id, impressions, spend_micros FROM offer_daily WHERE tenant = ? AND day = ?",
            [tenant, day],
        ).fetchall()

    return work
