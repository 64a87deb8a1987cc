"""How every configuration write runs: one transaction, then the tenant's view, then the answer (application layer)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..domain.access import Permission, Principal, require
from ..domain.errors import Decoded, raise_if_invalid
from ..domain.ids import new_id
from ..domain.pagination import PageCursor
from ..domain.resources import Kind, check_name_free
from ..domain.timekeeping import Clock
from .paging import Listed, Page, PageRequest, fetch_page
from .ports import CatalogStore, CatalogTx
from .views import TenantRecords, TenantViews

T = TypeVar("T")
S = TypeVar("S", bound=enum.Enum)
L = TypeVar("L", bound=Listed)
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

    async def _list_by_status(
        self,
        principal: Principal,
        status: Decoded[S | None],
        page: PageRequest,
        resource: str,
        fetch: Callable[[str, S | None, PageCursor | None, int], Awaitable[list[L]]],
    ) -> Page[L]:
        """A page of catalogue resources (categories, policies), optionally of one status."""
        require(principal, Permission.CATALOG_READ)
        raise_if_invalid(status.violations)
        tenant, wanted = principal.tenant, status.value
        return await fetch_page(
            page, tenant, resource, [wanted.value if wanted else None], lambda after, n: fetch(tenant, wanted, after, n)
        )


def ensure_name_free(tx: CatalogTx, kind: Kind, name: str, own_id: str | None, *, category_id: str = "") -> None:
    """The name rule (domain.resources.check_name_free) against what the transaction sees."""
    check_name_free(kind, name, tx.name_owner(kind, name, category_id=category_id), own_id, within=category_id)


def fresh_id(tx: CatalogTx, kind: Kind, prefix: str) -> str:
    """A new random id (prefix and 16 hex digits) that no resource of the tenant has."""
    while True:
        candidate = new_id(prefix)
        if not tx.exists(kind, candidate):
            return candidate
