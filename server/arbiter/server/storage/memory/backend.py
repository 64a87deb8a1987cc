"""In-memory fakes of every store, on one in-memory "database" (storage layer, for unit tests).

They keep the contracts of app.ports (transactions roll back on error, the
outcome log is idempotent and runs `on_commit` before its caller resumes,
lists are keyset pages) so the use cases and the funnel can be tested fast,
without files or threads. `MemoryDatabase.hold_commits`, `hold_loads` and
`fail_commits` let a test stop an outcome commit or a load half-way, or make
a commit fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ...app.ports import (
    AppendResult,
    CatalogTx,
    OfferQuery,
    OutcomeEffect,
    PreparedOutcome,
    StoredTenant,
    Stores,
)
from ...domain.access import ApiKey
from ...domain.catalog import Category, CategoryStatus, SubCategory
from ...domain.customer_history import HISTORY_LOOKBACK_US, MAX_EVENTS_PER_CUSTOMER, CustomerHistory, HistoryEvent
from ...domain.decision_log import DEFAULT_RETENTION_DAYS, US_PER_DAY, LoggedDecision, logged_decision
from ...domain.decisions import DecisionRequest, DecisionResult
from ...domain.ids import new_fast_id
from ...domain.offers import Offer
from ...domain.outcomes import OUTCOME_PREFIX, OutcomeRecord, OutcomeType, matched_positives
from ...domain.pagination import PageCursor
from ...domain.policies import ContactPolicy, PolicyStatus
from ...domain.resources import Kind
from ...domain.tenants import TenantSettings
from ...domain.timekeeping import Clock, to_epoch_micros
from ..inprocess.counters import DayRows, InProcessCounters
from ..inprocess.histories import InProcessHistories

T = TypeVar("T")
R = TypeVar("R", Offer, Category, SubCategory, ContactPolicy, ApiKey)


_CATALOG_KINDS = (Kind.OFFER, Kind.CATEGORY, Kind.SUB_CATEGORY, Kind.POLICY)


@dataclass
class _Catalog:
    """One tenant's configuration tables."""

    tables: dict[Kind, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind in _CATALOG_KINDS})
    settings: TenantSettings | None = None

    def copy(self) -> _Catalog:
        return _Catalog({kind: dict(rows) for kind, rows in self.tables.items()}, self.settings)


@dataclass(frozen=True, slots=True)
class _StoredOutcome:
    seq: int
    id: str
    key: str
    customer_id: str
    offer_id: str
    type: OutcomeType
    decision_id: str
    channel: str
    occurred_us: int
    recorded_us: int


class MemoryDatabase:
    """Every table of the fakes; tests may look inside."""

    def __init__(self) -> None:
        self.catalogs: defaultdict[str, _Catalog] = defaultdict(_Catalog)
        self.keys: dict[str, ApiKey] = {}
        self.outcomes: defaultdict[str, list[_StoredOutcome]] = defaultdict(list)
        self.by_key: dict[tuple[str, str], _StoredOutcome] = {}
        self.ledger: defaultdict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0, 0])
        self.models: defaultdict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.decisions: dict[tuple[str, str], LoggedDecision] = {}
        self.seq = 0
        self.commit_gate: asyncio.Event | None = None
        self.load_gate: asyncio.Event | None = None
        self.fail_commits = False

    def hold_commits(self) -> asyncio.Event:
        """Outcome commits wait until the returned event is set."""
        self.commit_gate = asyncio.Event()
        return self.commit_gate

    def hold_loads(self) -> asyncio.Event:
        """Loads of ledger days and customer histories wait until the returned event is set."""
        self.load_gate = asyncio.Event()
        return self.load_gate


def _created_us(item: Offer | Category | SubCategory | ContactPolicy | ApiKey) -> int:
    assert item.created_at is not None
    return to_epoch_micros(item.created_at)


def _page(items: list[R], after: PageCursor | None, limit: int) -> list[R]:
    ordered = sorted(items, key=lambda item: (_created_us(item), item.id))
    if after is not None:
        ordered = [item for item in ordered if (_created_us(item), item.id) > (after.created_us, after.id)]
    return ordered[:limit]


class MemoryCatalogTx(CatalogTx):
    def __init__(self, db: MemoryDatabase, tenant: str, catalog: _Catalog) -> None:
        self._db = db
        self._tenant = tenant
        self.catalog = catalog
        self.deleted_offers: list[str] = []

    def _get(self, kind: Kind, resource_id: str) -> Any:
        return self.catalog.tables[kind].get(resource_id)

    def offer(self, offer_id: str) -> Offer | None:
        return self._get(Kind.OFFER, offer_id)

    def category(self, category_id: str) -> Category | None:
        return self._get(Kind.CATEGORY, category_id)

    def sub_category(self, sub_id: str) -> SubCategory | None:
        return self._get(Kind.SUB_CATEGORY, sub_id)

    def policy(self, policy_id: str) -> ContactPolicy | None:
        return self._get(Kind.POLICY, policy_id)

    def exists(self, kind: Kind, resource_id: str) -> bool:
        return resource_id in self.catalog.tables[kind]

    def name_owner(self, kind: Kind, name: str, *, category_id: str = "") -> str | None:
        for item in self.catalog.tables[kind].values():
            if item.name == name and (kind is not Kind.SUB_CATEGORY or item.category_id == category_id):
                return str(item.id)
        return None

    def count_offers(self, *, category_id: str = "", sub_category_id: str = "") -> int:
        offers = self.catalog.tables[Kind.OFFER].values()
        if sub_category_id:
            return sum(o.sub_category_id == sub_category_id for o in offers)
        return sum(o.category_id == category_id for o in offers)

    def count_sub_categories(self, category_id: str) -> int:
        return sum(s.category_id == category_id for s in self.catalog.tables[Kind.SUB_CATEGORY].values())

    def has_outcomes(self, offer_id: str) -> bool:
        return any(o.offer_id == offer_id for o in self._db.outcomes[self._tenant])

    def _put(self, kind: Kind, item: Any, new: bool) -> None:
        rows = self.catalog.tables[kind]
        assert (item.id in rows) != new, "insert of an existing row or update of a missing one"
        rows[item.id] = item

    def save_offer(self, offer: Offer, *, new: bool) -> None:
        self._put(Kind.OFFER, offer, new)

    def save_category(self, category: Category, *, new: bool) -> None:
        self._put(Kind.CATEGORY, category, new)

    def save_sub_category(self, sub: SubCategory, *, new: bool) -> None:
        self._put(Kind.SUB_CATEGORY, sub, new)

    def save_policy(self, policy: ContactPolicy, *, new: bool) -> None:
        self._put(Kind.POLICY, policy, new)

    def save_settings(self, settings: TenantSettings) -> None:
        self.catalog.settings = settings

    def delete(self, kind: Kind, resource_id: str) -> bool:
        gone = self.catalog.tables[kind].pop(resource_id, None) is not None
        if gone and kind is Kind.OFFER:
            self.deleted_offers.append(resource_id)
        return gone


class MemoryCatalogStore:
    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def load(self) -> dict[str, StoredTenant]:
        return {
            tenant: StoredTenant(
                offers=list(c.tables[Kind.OFFER].values()),
                categories=list(c.tables[Kind.CATEGORY].values()),
                sub_categories=list(c.tables[Kind.SUB_CATEGORY].values()),
                policies=list(c.tables[Kind.POLICY].values()),
                settings=c.settings,
            )
            for tenant, c in self._db.catalogs.items()
        }

    async def reload(
        self, tenant: str | None, apply: Callable[[dict[str, StoredTenant]], None]
    ) -> dict[str, StoredTenant]:
        stored = {t: data for t, data in self.load().items() if tenant is None or t == tenant}
        apply(stored)
        return stored

    async def transact(
        self, tenant: str, work: Callable[[CatalogTx], T], apply: Callable[[T], None] | None = None
    ) -> T:
        tx = MemoryCatalogTx(self._db, tenant, self._db.catalogs[tenant].copy())
        result = work(tx)  # an exception leaves the tables as they were
        self._db.catalogs[tenant] = tx.catalog
        for offer_id in tx.deleted_offers:
            for day_key in [k for k in self._db.ledger if k[0] == tenant and k[2] == offer_id]:
                del self._db.ledger[day_key]
            for model_key in [k for k in self._db.models if k[0] == tenant and k[2] == offer_id]:
                del self._db.models[model_key]
        if apply is not None:
            apply(result)
        return result

    def _rows(self, tenant: str, kind: Kind) -> list[Any]:
        return list(self._db.catalogs[tenant].tables[kind].values())

    async def list_offers(self, tenant: str, query: OfferQuery, after: PageCursor | None, limit: int) -> list[Offer]:
        offers = [
            o
            for o in self._rows(tenant, Kind.OFFER)
            if (query.status is None or o.status is query.status)
            and (not query.category_ids or o.category_id in query.category_ids)
            and set(query.tags) <= set(o.tags)
        ]
        return _page(offers, after, limit)

    async def list_categories(
        self, tenant: str, status: CategoryStatus | None, after: PageCursor | None, limit: int
    ) -> list[Category]:
        rows = [c for c in self._rows(tenant, Kind.CATEGORY) if status is None or c.status is status]
        return _page(rows, after, limit)

    async def list_sub_categories(
        self, tenant: str, category_id: str, after: PageCursor | None, limit: int
    ) -> list[SubCategory]:
        rows = [s for s in self._rows(tenant, Kind.SUB_CATEGORY) if not category_id or s.category_id == category_id]
        return _page(rows, after, limit)

    async def list_policies(
        self, tenant: str, status: PolicyStatus | None, after: PageCursor | None, limit: int
    ) -> list[ContactPolicy]:
        rows = [p for p in self._rows(tenant, Kind.POLICY) if status is None or p.status is status]
        return _page(rows, after, limit)


class MemoryKeyStore:
    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def lookup(self, key_id: str) -> ApiKey | None:
        return self._db.keys.get(key_id)

    def all_keys(self) -> list[ApiKey]:
        return list(self._db.keys.values())

    async def insert(self, key: ApiKey) -> None:
        self._db.keys[key.id] = key

    async def revoke(self, tenant: str, key_id: str, at: datetime) -> ApiKey | None:
        key = self._db.keys.get(key_id)
        if key is None or key.tenant != tenant:
            return None
        if key.revoked_at is None:
            key = self._db.keys[key_id] = dataclasses.replace(key, revoked_at=at)
        return key

    async def list_keys(self, tenant: str, after: PageCursor | None, limit: int) -> list[ApiKey]:
        return _page([k for k in self._db.keys.values() if k.tenant == tenant], after, limit)


class MemoryOutcomeLog:
    def __init__(self, db: MemoryDatabase, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def append(
        self,
        tenant: str,
        items: Sequence[PreparedOutcome],
        on_commit: Callable[[AppendResult], None],
        on_failure: Callable[[], None] | None = None,
    ) -> AppendResult:
        db = self._db
        if db.commit_gate is not None:
            await db.commit_gate.wait()
        if db.fail_commits:
            if on_failure is not None:
                on_failure()
            raise OSError("the commit failed (MemoryDatabase.fail_commits)")
        recorded_us = self._clock.now_us()
        records: list[OutcomeRecord] = []
        effects: list[OutcomeEffect] = []
        for item in items:
            o = item.input
            first = db.by_key.get((tenant, o.idempotency_key)) or self._same_impression(tenant, item)
            if first is not None:
                records.append(OutcomeRecord(first.id, first.recorded_us, duplicate=True))
                effects.append(OutcomeEffect(item, None))
                continue
            db.seq += 1
            stored = _StoredOutcome(
                db.seq,
                new_fast_id(OUTCOME_PREFIX),
                o.idempotency_key,
                o.customer_id,
                o.offer_id,
                item.type,
                o.decision_id,
                o.channel,
                o.occurred_us,
                recorded_us,
            )
            db.outcomes[tenant].append(stored)
            db.by_key[tenant, o.idempotency_key] = stored
            positives = 0
            if item.type is OutcomeType.IMPRESSION:
                entry = db.ledger[tenant, item.day, o.offer_id]
                entry[0] += 1
                entry[1] += item.cost_micros
            if item.model_ref and (item.type is OutcomeType.IMPRESSION or item.type.is_positive):
                positives = self._new_positives(tenant, stored)
                counts = db.models[tenant, item.model_ref, o.offer_id]
                counts[0] += item.type is OutcomeType.IMPRESSION
                counts[1] += positives
            records.append(OutcomeRecord(stored.id, recorded_us, duplicate=False))
            effects.append(OutcomeEffect(item, stored.seq, positives))
        result = AppendResult(records, effects)
        on_commit(result)
        return result

    def _same_impression(self, tenant: str, item: PreparedOutcome) -> _StoredOutcome | None:
        o = item.input
        if item.type is not OutcomeType.IMPRESSION or not o.decision_id:
            return None
        for stored in self._db.outcomes[tenant]:
            same = (stored.decision_id, stored.offer_id) == (o.decision_id, o.offer_id)
            if same and stored.type is OutcomeType.IMPRESSION:
                return stored
        return None

    def _new_positives(self, tenant: str, new: _StoredOutcome) -> int:
        kinds = (OutcomeType.IMPRESSION, OutcomeType.CLICK, OutcomeType.CONVERSION)
        events = sorted(
            (s.occurred_us, int(s.type), s.seq)
            for s in self._db.outcomes[tenant]
            if s.customer_id == new.customer_id and s.offer_id == new.offer_id and s.type in kinds
        )
        ordered = [(seq, kind) for _, kind, seq in events]
        return matched_positives(ordered) - matched_positives(ordered, skip=new.seq)


class MemoryDecisionLog:
    """Keeps decisions in `MemoryDatabase.decisions`; anything past the retention is purged on every call."""

    def __init__(self, db: MemoryDatabase, clock: Clock, retention_days: int) -> None:
        self._db = db
        self._clock = clock
        self._retention_us = retention_days * US_PER_DAY

    def purge(self) -> int:
        cutoff = self._clock.now_us() - self._retention_us
        expired = [key for key, d in self._db.decisions.items() if d.logged_us <= cutoff]
        for key in expired:
            del self._db.decisions[key]
        return len(expired)

    def keep(self, tenant: str, decision_id: str, request: DecisionRequest, result: DecisionResult) -> None:
        self.purge()
        self._db.decisions[tenant, decision_id] = logged_decision(decision_id, self._clock.now_us(), request, result)

    async def get(self, tenant: str, decision_id: str) -> LoggedDecision | None:
        self.purge()
        return self._db.decisions.get((tenant, decision_id))


def memory_stores(
    clock: Clock, *, customer_cache_size: int = 1_000, decision_log_days: int = DEFAULT_RETENTION_DAYS
) -> tuple[Stores, MemoryDatabase]:
    """A complete backend in memory, and its tables."""
    db = MemoryDatabase()

    async def load_day(tenant: str, day: int, on_loaded: Callable[[DayRows], None]) -> DayRows:
        if db.load_gate is not None:
            await db.load_gate.wait()
        rows = [(offer, n, spend) for (t, d, offer), (n, spend) in db.ledger.items() if (t, d) == (tenant, day)]
        on_loaded(rows)
        return rows

    async def load_history(tenant: str, customer: str, on_loaded: Callable[[CustomerHistory], None]) -> CustomerHistory:
        since = clock.now_us() - HISTORY_LOOKBACK_US
        events = [
            HistoryEvent(s.occurred_us, s.seq, s.offer_id, int(s.type), s.channel)
            for s in db.outcomes[tenant]
            if s.customer_id == customer and s.occurred_us > since
        ]
        history = CustomerHistory(sorted(events)[-MAX_EVENTS_PER_CUSTOMER:])
        on_loaded(history)
        return history

    async def close() -> None:
        return None

    stores = Stores(
        catalog=MemoryCatalogStore(db),
        keys=MemoryKeyStore(db),
        outcomes=MemoryOutcomeLog(db, clock),
        counters=InProcessCounters(load_day),
        histories=InProcessHistories(load_history, capacity=customer_cache_size),
        decisions=MemoryDecisionLog(db, clock, decision_log_days),
        close=close,
    )
    return stores, db
