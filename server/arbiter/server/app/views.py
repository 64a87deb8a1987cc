"""One TenantView per tenant: what every read and every decision sees, rebuilt when writes commit (application layer).

A tenant's configuration lives twice in memory: `TenantRecords`, changed by
committed writes on the event loop, and the published `TenantView`, an
immutable picture of the records with the compiled catalogue snapshot that
Decide reads. After a change, the view is rebuilt off the event loop (on a
thread of its own) and swapped in atomically; changes that arrive while a
rebuild runs are coalesced into the next one, and when only offers changed
the last snapshot is patched rather than rebuilt. A write is acknowledged only
once a view that contains it is published (`settled`), so every
acknowledged write is visible to the next call, and no decision ever pays for
a rebuild.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo

from ..domain.catalog import Category, CategoryStatus, SubCategory, compile_category
from ..domain.catalog_snapshot import CatalogSnapshot, OfferRows
from ..domain.formulas import ComputedFields
from ..domain.offers import Offer, OfferStatus
from ..domain.policies import ContactPolicy
from ..domain.resources import Kind, not_found
from ..domain.tenants import TenantSettings
from ..domain.timekeeping import local_day
from .ports import NO_TELEMETRY, LiveCounters, StoredTenant, Telemetry

log = logging.getLogger(__name__)
T = TypeVar("T")

# Generations number views across all tenants, so a generation names one snapshot for the process's life.
_generations = itertools.count(1)


@dataclass(frozen=True, eq=False)
class TenantView:
    """A tenant's configuration at one moment, and its compiled snapshot. Never changes once published."""

    tenant: str
    generation: int
    version: int  # how many changes of the tenant's records it includes
    settings: TenantSettings
    offers: Mapping[str, Offer]  # every offer, any status
    categories: Mapping[str, Category]
    sub_categories: Mapping[str, SubCategory]
    policies: Mapping[str, ContactPolicy]
    snapshot: CatalogSnapshot

    @property
    def zone(self) -> ZoneInfo:
        return self.snapshot.tenant_zone

    def local_day(self, t_us: int) -> int:
        """The tenant-local calendar day containing t (budgets' "today")."""
        return local_day(t_us, self.snapshot.tenant_zone)

    def offer(self, offer_id: str) -> Offer:
        return _found(self.offers, Kind.OFFER, offer_id)

    def category(self, category_id: str) -> Category:
        return _found(self.categories, Kind.CATEGORY, category_id)

    def sub_category(self, sub_id: str) -> SubCategory:
        return _found(self.sub_categories, Kind.SUB_CATEGORY, sub_id)

    def policy(self, policy_id: str) -> ContactPolicy:
        return _found(self.policies, Kind.POLICY, policy_id)


def _found(items: Mapping[str, T], kind: Kind, resource_id: str) -> T:
    item = items.get(resource_id)
    if item is None:
        raise not_found(kind, resource_id)
    return item


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What one rebuild reads, copied on the loop so the build can run on another thread."""

    version: int
    settings: TenantSettings
    offers: dict[str, Offer]
    categories: dict[str, Category]
    computed: dict[str, ComputedFields]
    sub_categories: dict[str, SubCategory]
    policies: dict[str, ContactPolicy]
    rows: OfferRows
    changed_offers: dict[str, Offer | None]  # since the last build (None: deleted)
    only_offers_changed: bool  # so the last view's snapshot can be patched instead of rebuilt


@dataclass(slots=True)
class TenantRecords:
    """A tenant's configuration as committed so far (changed on the event loop only)."""

    tenant: str
    settings: TenantSettings
    offers: dict[str, Offer] = field(default_factory=dict)
    categories: dict[str, Category] = field(default_factory=dict)
    computed: dict[str, ComputedFields] = field(default_factory=dict)
    sub_categories: dict[str, SubCategory] = field(default_factory=dict)
    policies: dict[str, ContactPolicy] = field(default_factory=dict)
    version: int = 0
    rows: OfferRows = field(default_factory=OfferRows)  # decoded offers, reused by the next rebuild
    # What changed since the last build started: offers only (patch the snapshot), or more (rebuild it).
    changed_offers: dict[str, Offer | None] = field(default_factory=dict)
    only_offers_changed: bool = False

    def put_offer(self, offer: Offer) -> None:
        self.offers[offer.id] = offer
        self.changed_offers[offer.id] = offer

    def put_category(self, category: Category) -> None:
        self.categories[category.id] = category
        self.computed[category.id] = compile_category(category)
        self.only_offers_changed = False

    def put_sub_category(self, sub: SubCategory) -> None:
        self.sub_categories[sub.id] = sub  # the snapshot does not read sub-categories themselves

    def put_policy(self, policy: ContactPolicy) -> None:
        self.policies[policy.id] = policy
        self.only_offers_changed = False

    def put_settings(self, settings: TenantSettings) -> None:
        self.settings = settings
        self.only_offers_changed = False

    def remove(self, kind: Kind, resource_id: str) -> None:
        if kind is Kind.OFFER:
            self.offers.pop(resource_id, None)
            self.changed_offers[resource_id] = None
        elif kind is Kind.CATEGORY:
            self.categories.pop(resource_id, None)
            self.computed.pop(resource_id, None)
        elif kind is Kind.SUB_CATEGORY:
            self.sub_categories.pop(resource_id, None)
        elif kind is Kind.POLICY:
            self.policies.pop(resource_id, None)
            self.only_offers_changed = False

    def reset(self, stored: StoredTenant) -> None:
        """Everything as `stored` has it (read again after another process changed it)."""
        before = self.offers
        self.settings = stored.settings or TenantSettings(self.tenant)
        self.offers, self.categories, self.computed, self.sub_categories, self.policies = {}, {}, {}, {}, {}
        # An offer read again unchanged keeps its object, so the next build reuses its decoded row.
        unchanged = [before[o.id] if before.get(o.id) == o else o for o in stored.offers]
        self.fill(replace(stored, offers=unchanged))

    def fill(self, stored: StoredTenant) -> None:
        """Add everything `stored` has (to records that hold none of it)."""
        for offer in stored.offers:
            self.put_offer(offer)
        for category in stored.categories:
            self.put_category(category)
        for sub in stored.sub_categories:
            self.put_sub_category(sub)
        for policy in stored.policies:
            self.put_policy(policy)
        self.only_offers_changed = False  # the next build starts from scratch

    def inputs(self) -> _Inputs:
        """What the next build reads; the change tracking starts over from here."""
        inputs = _Inputs(
            self.version,
            self.settings,
            dict(self.offers),
            dict(self.categories),
            dict(self.computed),
            dict(self.sub_categories),
            dict(self.policies),
            self.rows,
            self.changed_offers,
            self.only_offers_changed,
        )
        self.changed_offers = {}
        self.only_offers_changed = True
        return inputs

    def build_failed(self) -> None:
        """The changes handed to a failed build are not in any view: the next build starts from scratch."""
        self.only_offers_changed = False


def build_view(tenant: str, inputs: _Inputs, previous: TenantView | None = None) -> TenantView:
    """Compile a view: from scratch, or by patching `previous` when only offers changed since it.

    Safe on any thread: it reads `inputs` and the immutable previous view, and changes only the
    tenant's row cache (`inputs.rows`), which one build at a time uses.
    """
    generation = next(_generations)
    if previous is not None and inputs.only_offers_changed:
        snapshot = previous.snapshot.with_offers(inputs.changed_offers, generation=generation, rows=inputs.rows)
    else:
        archived = frozenset(c.id for c in inputs.categories.values() if c.status is CategoryStatus.ARCHIVED)
        snapshot = CatalogSnapshot.build(
            list(inputs.offers.values()),
            inputs.settings.timezone,
            archived,
            inputs.computed,
            list(inputs.policies.values()),
            generation=generation,
            rows=inputs.rows,
        )
    return TenantView(
        tenant=tenant,
        generation=generation,
        version=inputs.version,
        settings=inputs.settings,
        offers=MappingProxyType(inputs.offers),
        categories=MappingProxyType(inputs.categories),
        sub_categories=MappingProxyType(inputs.sub_categories),
        policies=MappingProxyType(inputs.policies),
        snapshot=snapshot,
    )


@dataclass(slots=True)
class _Tenant:
    records: TenantRecords
    view: TenantView
    rebuild: asyncio.Task[None] | None = None
    waiters: list[tuple[int, asyncio.Future[TenantView]]] = field(default_factory=list)


def _retrieve(future: asyncio.Future[TenantView]) -> None:
    if not future.cancelled():
        future.exception()


class TenantViews:
    """Every tenant's records and published view.

    `executor` runs the rebuilds (one thread, so they never overlap); None
    builds on the event loop, inside the rebuild task (unit tests).
    """

    def __init__(
        self, counters: LiveCounters, executor: Executor | None = None, telemetry: Telemetry = NO_TELEMETRY
    ) -> None:
        self._counters = counters
        self._executor = executor
        self._telemetry = telemetry
        self._tenants: dict[str, _Tenant] = {}
        self.rebuilds = 0

    def load(self, stored: Mapping[str, StoredTenant]) -> None:
        """Build every stored tenant's first view (start-up, on the loop, before serving)."""
        for tenant, data in stored.items():
            records = TenantRecords(tenant, data.settings or TenantSettings(tenant))
            records.fill(data)
            self._tenants[tenant] = self._first(records)

    def _first(self, records: TenantRecords) -> _Tenant:
        records.only_offers_changed = False
        view = build_view(records.tenant, records.inputs())
        self._counters.bind(records.tenant, view.snapshot)
        return _Tenant(records, view)

    def _state(self, tenant: str) -> _Tenant:
        state = self._tenants.get(tenant)
        if state is None:  # tenants exist implicitly: an empty one costs an empty snapshot
            state = self._tenants[tenant] = self._first(TenantRecords(tenant, TenantSettings(tenant)))
        return state

    def tenants(self) -> list[str]:
        return list(self._tenants)

    def offers_by_status(self) -> dict[tuple[str, OfferStatus], int]:
        """How many offers each tenant's published view holds per status.

        Safe from another thread (a metrics scrape): published views are immutable and
        replaced whole, and the tenant table is copied before it is read.
        """
        counts: dict[tuple[str, OfferStatus], int] = {}
        for tenant, state in list(self._tenants.items()):
            for offer in list(state.view.offers.values()):
                if offer.status is not None:
                    key = (tenant, offer.status)
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def current(self, tenant: str) -> TenantView:
        """The tenant's published view (never waits, never builds beyond an empty first one)."""
        return self._state(tenant).view

    def replace(self, stored: Mapping[str, StoredTenant], tenants: Iterable[str]) -> None:
        """Each of `tenants` as `stored` has it (none there: it has nothing), read again after another
        process changed them (call on the loop, in commit order with this process's own changes)."""
        for tenant in tenants:
            data = stored.get(tenant)
            self.change(tenant, lambda records, data=data: records.reset(data or StoredTenant()))  # type: ignore[misc]

    def change(self, tenant: str, mutate: Callable[[TenantRecords], None]) -> None:
        """Apply a committed change to the tenant's records and start a rebuild (call on the loop)."""
        state = self._state(tenant)
        mutate(state.records)
        state.records.version += 1
        if state.rebuild is None:
            state.rebuild = asyncio.get_running_loop().create_task(self._rebuild(state))

    async def settled(self, tenant: str) -> TenantView:
        """A published view that includes every change made so far (waits for the rebuild that brings it)."""
        state = self._state(tenant)
        wanted = state.records.version
        if state.view.version >= wanted:
            return state.view
        waiter: asyncio.Future[TenantView] = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(_retrieve)  # a caller that stopped waiting leaves no unretrieved error
        state.waiters.append((wanted, waiter))
        if state.rebuild is None:  # the last rebuild failed: try again
            state.rebuild = asyncio.get_running_loop().create_task(self._rebuild(state))
        return await asyncio.shield(waiter)

    async def _rebuild(self, state: _Tenant) -> None:
        loop = asyncio.get_running_loop()
        tenant = state.records.tenant
        try:
            while state.view.version < state.records.version:
                inputs = state.records.inputs()
                started = time.perf_counter()
                try:
                    if self._executor is None:
                        view = build_view(tenant, inputs, state.view)
                    else:
                        view = await loop.run_in_executor(self._executor, build_view, tenant, inputs, state.view)
                except BaseException:
                    state.records.build_failed()
                    raise
                # Binding and publishing happen in one step of the loop: a decision sees the
                # new snapshot only with counters aligned to it.
                self._counters.bind(tenant, view.snapshot)
                state.view = view
                self.rebuilds += 1
                self._telemetry.catalog_rebuild(time.perf_counter() - started)
                self._wake(state, None)
        except Exception as exc:
            log.exception("rebuilding the view of tenant %s failed", tenant)
            self._wake(state, exc)
        finally:
            state.rebuild = None

    @staticmethod
    def _wake(state: _Tenant, error: Exception | None) -> None:
        still: list[tuple[int, asyncio.Future[TenantView]]] = []
        for wanted, waiter in state.waiters:
            if waiter.done():
                continue
            if error is not None:
                waiter.set_exception(error)
            elif state.view.version >= wanted:
                waiter.set_result(state.view)
            else:
                still.append((wanted, waiter))
        state.waiters = still

    async def close(self) -> None:
        """Let running rebuilds finish (nothing new starts once the writers have stopped)."""
        running = [state.rebuild for state in self._tenants.values() if state.rebuild is not None]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
