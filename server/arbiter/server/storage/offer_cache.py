"""The in-memory copy of every tenant's offers (storage layer).

Loaded once at start-up and changed only by committed writes (on the event
loop), so reads never touch SQLite. Each tenant's `version` moves on every
change; the decision engine rebuilds its snapshot when the version it was
built from is stale, which coalesces any number of writes into one rebuild.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

from ..domain.offers import Offer
from .offer_codec import offer_from_row


@dataclass(slots=True)
class TenantOffers:
    """One tenant's offers by id, and a counter that moves on every change."""

    by_id: dict[str, Offer] = field(default_factory=dict)
    version: int = 0


class OfferCache:
    """Every tenant's offers, by tenant."""

    def __init__(self) -> None:
        self._tenants: defaultdict[str, TenantOffers] = defaultdict(TenantOffers)

    def tenant(self, tenant: str) -> TenantOffers:
        return self._tenants[tenant]

    def tenants(self) -> list[str]:
        return list(self._tenants)

    def get(self, tenant: str, offer_id: str) -> Offer | None:
        offers = self._tenants.get(tenant)
        return None if offers is None else offers.by_id.get(offer_id)

    def put(self, tenant: str, offer: Offer) -> None:
        offers = self.tenant(tenant)
        offers.by_id[offer.id] = offer
        offers.version += 1

    def remove(self, tenant: str, offer_id: str) -> None:
        offers = self.tenant(tenant)
        if offers.by_id.pop(offer_id, None) is not None:
            offers.version += 1

    def load(self, conn: sqlite3.Connection) -> int:
        """Fill the cache from the database; returns how many offers were loaded."""
        count = 0
        rows = conn.execute("SELECT tenant, id, created_us, updated_us, body FROM offers")
        for tenant, offer_id, created_us, updated_us, body in rows:
            self.tenant(tenant).by_id[offer_id] = offer_from_row(offer_id, created_us, updated_us, body)
            count += 1
        for offers in self._tenants.values():
            offers.version += 1
        return count
