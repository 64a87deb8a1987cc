"""How every configuration write runs: one transaction, then the tenant's view, then the answer (application layer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..domain.ids import new_id
from ..domain.resources import Kind
from ..domain.timekeeping import Clock
from .ports import CatalogStore, CatalogTx
from .views import TenantRecords, TenantViews

T = TypeVar("T")
Mutation = Callable[[TenantRecords], None]


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """What a write's transaction returns: its answer, and the change to the tenant's records (None: no change)."""

    result: T
    mutate: Mutation | None = None


class ConfigWriter:
    """Runs a use case's transaction and acknowledges it once the tenant's view includes it (read-your-writes)."""

    def __init__(self, store: CatalogStore, views: TenantViews) -> None:
        self._store = store
        self._views = views

    async def write(self, tenant: str, work: Callable[[CatalogTx], Change[T]]) -> T:
        def apply(change: Change[T]) -> None:
            if change.mutate is not None:
                self._views.change(tenant, change.mutate)

        change = await self._store.transact(tenant, work, apply)
        await self._views.settled(tenant)
        return change.result


class ConfigUseCases:
    """Base of the use cases that change a tenant's configuration (offers, catalogue, policies, settings)."""

    def __init__(self, store: CatalogStore, views: TenantViews, clock: Clock) -> None:
        self._store = store
        self._views = views
        self._clock = clock
        self._writer = ConfigWriter(store, views)


def fresh_id(tx: CatalogTx, kind: Kind, prefix: str) -> str:
    """A new random id (prefix and 16 hex digits) that no resource of the tenant has."""
    while True:
        candidate = new_id(prefix)
        if not tx.exists(kind, candidate):
            return candidate
