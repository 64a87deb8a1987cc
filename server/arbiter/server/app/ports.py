"""What the use cases need from storage: the interfaces every backend implements (application layer).

Each backend (storage/sqlite, storage/postgres with storage/redis, and
storage/memory for unit tests) provides a `Stores` bundle. The use cases hold the rules; the
stores only keep, find and count.

Threading: everything here is called on the event loop. `CatalogStore.transact`
runs `work` wherever the backend runs its transactions (SQLite: the writer
thread), so `work` must be plain computation over the transaction it is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from ..domain.access import ApiKey
from ..domain.arrays import FloatArray, IntArray
from ..domain.catalog import Category, CategoryStatus, SubCategory
from ..domain.catalog_snapshot import CatalogSnapshot
from ..domain.customer_history import CustomerHistory, HistoryEvent
from ..domain.decision_log import LoggedDecision
from ..domain.decisions import DecisionRequest, DecisionResult, DropReason
from ..domain.offers import Offer, OfferStatus
from ..domain.outcomes import OutcomeInput, OutcomeRecord, OutcomeType
from ..domain.pagination import PageCursor
from ..domain.policies import ContactPolicy, PolicyStatus
from ..domain.resources import Kind
from ..domain.tenants import TenantSettings

T = TypeVar("T")


# -- the catalogue: offers, categories, sub-categories, policies, settings ----------


@dataclass(slots=True)
class StoredTenant:
    """Everything a tenant has configured, as loaded at start-up."""

    offers: list[Offer] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    sub_categories: list[SubCategory] = field(default_factory=list)
    policies: list[ContactPolicy] = field(default_factory=list)
    settings: TenantSettings | None = None


class CatalogTx(Protocol):
    """One tenant's configuration inside a transaction: reads see the transaction's own writes."""

    def offer(self, offer_id: str) -> Offer | None: ...
    def category(self, category_id: str) -> Category | None: ...
    def sub_category(self, sub_id: str) -> SubCategory | None: ...
    def policy(self, policy_id: str) -> ContactPolicy | None: ...
    def exists(self, kind: Kind, resource_id: str) -> bool: ...
    def name_owner(self, kind: Kind, name: str, *, category_id: str = "") -> str | None:
        """The id of the resource of `kind` called `name` (sub-categories: within `category_id`)."""
        ...

    def count_offers(self, *, category_id: str = "", sub_category_id: str = "") -> int: ...
    def count_sub_categories(self, category_id: str) -> int: ...
    def has_outcomes(self, offer_id: str) -> bool:
        """Whether any outcome was ever recorded for the offer (its interaction history)."""
        ...

    def save_offer(self, offer: Offer, *, new: bool) -> None: ...
    def save_category(self, category: Category, *, new: bool) -> None: ...
    def save_sub_category(self, sub: SubCategory, *, new: bool) -> None: ...
    def save_policy(self, policy: ContactPolicy, *, new: bool) -> None: ...
    def save_settings(self, settings: TenantSettings) -> None: ...
    def delete(self, kind: Kind, resource_id: str) -> bool:
        """Remove a resource; False when there was none. Deleting an offer drops its durable
        counters (ledger, model counts) and keeps its outcomes."""
        ...


@dataclass(frozen=True, slots=True)
class OfferQuery:
    """ListOffers' filters: a status, any of the categories, all of the tags."""

    status: OfferStatus | None = None
    category_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


class CatalogStore(Protocol):
    """The system of record for every tenant's configuration."""

    def load(self) -> dict[str, StoredTenant]:
        """Every tenant's configuration (start-up, before serving)."""
        ...

    def reload(
        self, tenant: str | None, apply: Callable[[dict[str, StoredTenant]], None]
    ) -> Awaitable[dict[str, StoredTenant]]:
        """Read the tenant's configuration again (every tenant's with None), as another process left it;
        `apply` runs with it on the loop in commit order with this process's own writes (so a change
        this process made is never put back by an older read)."""
        ...

    async def transact(
        self, tenant: str, work: Callable[[CatalogTx], T], apply: Callable[[T], None] | None = None
    ) -> T:
        """Run `work` atomically (an exception rolls it back and is raised here); once it is durable,
        run `apply` with its result on the event loop, then return the result."""
        ...

    # Lists are keyset pages ordered by (created_at, id), starting after `after`.
    async def list_offers(
        self, tenant: str, query: OfferQuery, after: PageCursor | None, limit: int
    ) -> list[Offer]: ...
    async def list_categories(
        self, tenant: str, status: CategoryStatus | None, after: PageCursor | None, limit: int
    ) -> list[Category]: ...
    async def list_sub_categories(
        self, tenant: str, category_id: str, after: PageCursor | None, limit: int
    ) -> list[SubCategory]: ...
    async def list_policies(
        self, tenant: str, status: PolicyStatus | None, after: PageCursor | None, limit: int
    ) -> list[ContactPolicy]: ...


# -- API keys ------------------------------------------------------------------------


class KeyStore(Protocol):
    """API keys of every tenant, hashed."""

    def lookup(self, key_id: str) -> ApiKey | None:
        """The key as the store has it now (including changes other processes made)."""
        ...

    async def insert(self, key: ApiKey) -> None: ...
    async def revoke(self, tenant: str, key_id: str, at: datetime) -> ApiKey | None:
        """Set the key's revocation instant unless it has one; the key as it is then, None if the tenant has none."""
        ...

    async def list_keys(self, tenant: str, after: PageCursor | None, limit: int) -> list[ApiKey]: ...

    def all_keys(self) -> list[ApiKey]:
        """Every tenant's keys as the store has them now (a start-up check, not a request path)."""
        ...


# -- outcomes and what they feed -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedOutcome:
    """An outcome with what its effects need, fixed before it is written (ledger day, cost, model)."""

    input: OutcomeInput
    type: OutcomeType
    day: int
    cost_micros: int
    model_ref: str
    reserved: bool = False  # an impression Decide reserved: the counters count it already


@dataclass(frozen=True, slots=True)
class OutcomeEffect:
    """What one written outcome changes in memory; `seq` is None for a duplicate (nothing changes)."""

    outcome: PreparedOutcome
    seq: int | None
    positives: int = 0  # how much the adaptive model's positives grow


@dataclass(frozen=True, slots=True)
class AppendResult:
    records: list[OutcomeRecord]
    effects: list[OutcomeEffect]


class OutcomeLog(Protocol):
    """The durable, idempotent record of outcomes (with the durable counters they feed)."""

    def append(
        self,
        tenant: str,
        items: Sequence[PreparedOutcome],
        on_commit: Callable[[AppendResult], None],
        on_failure: Callable[[], None] | None = None,
    ) -> Awaitable[AppendResult]:
        """Write the outcomes in one transaction; a repeated idempotency key is a duplicate.

        `on_commit` runs on the event loop once they are durable, in commit
        order with every other write and history load, before the caller
        resumes; a backend may call it on consecutive slices of the result
        (records and effects alike), with the loop free in between, so that
        a large bulk does not hold up other callers. `on_failure` runs
        instead when nothing was written.
        """
        ...


@dataclass(frozen=True, slots=True)
class Reservation:
    """One impression Decide is about to record, with the caps it must stay within (None: no cap)."""

    offer_id: str
    cost_micros: int
    max_impressions: int | None = None
    daily_budget_micros: int | None = None


@dataclass(frozen=True, slots=True)
class CounterArrays:
    """Counters aligned with one snapshot's rows, as the funnel reads them (decision_engine.LiveCounters)."""

    impressions: IntArray  # lifetime impressions, reservations included
    propensity: FloatArray  # the adaptive model's estimate (0.5 without a model reference)
    spend_today: IntArray | None  # the day's spend in micro-units, reservations included


@dataclass(frozen=True, slots=True)
class OfferCounts:
    lifetime_impressions: int
    today_impressions: int
    today_spend_micros: int
    model_trials: int
    model_positives: int


class LiveCounters(Protocol):
    """Impressions, daily spend and adaptive-model counts as Decide needs them, reservations included."""

    def bind(self, tenant: str, snapshot: CatalogSnapshot) -> None:
        """Align the tenant's counters with a newly published snapshot."""
        ...

    async def load_day(self, tenant: str, day: int) -> None:
        """Make the ledger of `day` readable without I/O."""
        ...

    def read(self, tenant: str, snapshot: CatalogSnapshot, day: int, *, spend: bool) -> CounterArrays | None:
        """The counters for `snapshot` (the one last bound); None when `day` must be loaded (again) first."""
        ...

    async def reserve(self, tenant: str, day: int, wanted: Sequence[Reservation]) -> list[bool]:
        """Count impressions before they are committed, so concurrent decisions see them; False: refused.

        A backend that needs no I/O for it must not yield (Decide relies on it: see app/decisions.py)."""
        ...

    def release(self, tenant: str, day: int, reserved: Sequence[Reservation]) -> None:
        """Undo reservations whose impressions were not committed."""
        ...

    def apply(self, tenant: str, effects: Sequence[OutcomeEffect]) -> None:
        """Committed outcomes (called from OutcomeLog's on_commit)."""
        ...

    def forget_offer(self, tenant: str, offer_id: str) -> None: ...
    async def offer_counts(self, tenant: str, offer_id: str, model_ref: str, day: int) -> OfferCounts: ...


class CustomerHistories(Protocol):
    """Each customer's recent outcomes, as the funnel reads them."""

    async def get(self, tenant: str, customer: str) -> CustomerHistory | None:
        """The history, None when the customer has none at all."""
        ...

    def record(self, tenant: str, customer: str, event: HistoryEvent) -> None:
        """A committed outcome (called from OutcomeLog's on_commit, in commit order)."""
        ...


# -- the decision log ----------------------------------------------------------------------


class DecisionLog(Protocol):
    """Sampled decisions, kept for a retention period counted from when they were logged."""

    def keep(self, tenant: str, decision_id: str, request: DecisionRequest, result: DecisionResult) -> None:
        """Queue the decision for storage and return at once: the write happens off the caller's path
        (SQLite: in the writer's next batch); a write that fails or meets shutdown is only logged."""
        ...

    async def get(self, tenant: str, decision_id: str) -> LoggedDecision | None:
        """The tenant's kept decision; None when it was never kept, has expired or is another tenant's."""
        ...


# -- one backend ---------------------------------------------------------------------------


class CatalogChanges(Protocol):
    """Word of configuration changes other processes commit (offers, categories, policies, settings)."""

    def follow(self, on_change: Callable[[str | None], None]) -> None:
        """From now on call `on_change` on the event loop with each tenant another process changed,
        or with None when changes may have gone unheard (every tenant must be read again)."""
        ...


class Reachability(Protocol):
    """Whether a store on another server answers (a local file always does: the embedded backend has none)."""

    @property
    def reachable(self) -> bool: ...

    def watch(self, on_change: Callable[[bool], None]) -> None:
        """Call `on_change` on the event loop each time the store is lost (False) or answers again (True)."""
        ...


async def _nothing() -> None:
    return None


@dataclass
class Stores:
    """One backend's stores, and how to close them."""

    catalog: CatalogStore
    keys: KeyStore
    outcomes: OutcomeLog
    counters: LiveCounters
    histories: CustomerHistories
    decisions: DecisionLog
    close: Callable[[], Awaitable[None]]
    # At a shutdown past its grace: fail the writes not yet begun, return once every write is answered.
    refuse_queued_writes: Callable[[], Awaitable[None]] = field(default=_nothing)
    reachability: Reachability | None = None  # None: nothing that can go away (a local file)
    changes: CatalogChanges | None = None  # None: no other process changes the catalogue (a locked file)


# -- telemetry: what the core reports as it works -----------------------------------


class Telemetry(Protocol):
    """Measurements the core and the stores report (Prometheus metrics implement it in transport/).

    Called from the event loop, except `writer_batch`, which the SQLite writer calls on its thread.
    """

    def decision(self, offers_returned: int, dropped: Mapping[DropReason, int]) -> None:
        """One Decide answered: how many offers it returned and how many each step dropped."""
        ...

    def decide_stage(self, stage: str, seconds: float) -> None:
        """Time one stage of a Decide took (load, funnel, record)."""
        ...

    def outcomes_recorded(self, types: Sequence[OutcomeType]) -> None:
        """Outcomes durably recorded (duplicates not included)."""
        ...

    def writer_batch(self, size: int, commit_seconds: float) -> None:
        """The writer committed a batch of `size` jobs."""
        ...

    def catalog_rebuild(self, seconds: float) -> None:
        """A tenant's view was rebuilt (or patched) and published."""
        ...

    def customer_cache(self, hit: bool) -> None:
        """A customer history was asked for: in memory (or known to be empty), or loaded."""
        ...


class NoTelemetry:
    """Telemetry that measures nothing (metrics off, unit tests)."""

    def decision(self, offers_returned: int, dropped: Mapping[DropReason, int]) -> None:
        pass

    def decide_stage(self, stage: str, seconds: float) -> None:
        pass

    def outcomes_recorded(self, types: Sequence[OutcomeType]) -> None:
        pass

    def writer_batch(self, size: int, commit_seconds: float) -> None:
        pass

    def catalog_rebuild(self, seconds: float) -> None:
        pass

    def customer_cache(self, hit: bool) -> None:
        pass


NO_TELEMETRY: Telemetry = NoTelemetry()
