"""Following the configuration changes other processes commit (application layer).

Several servers on one database each hold every tenant's view in memory. When
another one changes a tenant's offers, categories, policies or settings, the
stores say which tenant (CatalogChanges), and this server reads that tenant
again and publishes a new view. Reads are in line with this server's own
writes (CatalogStore.reload), at most one per tenant at a time: notices that
arrive meanwhile are answered by one more read after it.
"""

from __future__ import annotations

import asyncio
import logging

from .ports import CatalogStore, StoredTenant
from .views import TenantViews

log = logging.getLogger(__name__)

EVERY_TENANT = None  # what a notice names when any tenant may have changed


class CatalogFollower:
    """Reads tenants again as other processes change them (`changed` is a CatalogChanges callback)."""

    def __init__(self, catalog: CatalogStore, views: TenantViews) -> None:
        self._catalog = catalog
        self._views = views
        self._reading: dict[str | None, asyncio.Task[None]] = {}
        self._again: set[str | None] = set()

    def changed(self, tenant: str | None) -> None:
        """Another process changed `tenant` (None: maybe any tenant); called on the loop."""
        if tenant in self._reading:
            self._again.add(tenant)  # the read under way may have begun before this change
            return
        self._reading[tenant] = asyncio.get_running_loop().create_task(self._read(tenant))

    async def _read(self, tenant: str | None) -> None:
        try:
            while True:
                self._again.discard(tenant)
                await self._catalog.reload(tenant, lambda stored: self._publish(tenant, stored))
                if tenant not in self._again:
                    return
        except Exception as exc:  # the store is away: when it is back, its notices say what to read again
            log.warning("reading tenant %s again after a change elsewhere failed: %s", tenant or "(every one)", exc)
        finally:
            del self._reading[tenant]

    def _publish(self, tenant: str | None, stored: dict[str, StoredTenant]) -> None:
        # Every tenant: those that have nothing left are emptied too.
        tenants = [tenant] if tenant is not EVERY_TENANT else sorted(set(stored) | set(self._views.tenants()))
        self._views.replace(stored, tenants)

    async def close(self) -> None:
        for task in list(self._reading.values()):
            task.cancel()
        await asyncio.gather(*self._reading.values(), return_exceptions=True)
