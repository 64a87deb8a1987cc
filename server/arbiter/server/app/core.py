"""The core: every use case over one backend's stores, with the tenant views between them (application layer)."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from ..domain.timekeeping import Clock
from .auth import Authenticator, RateLimiter
from .catalog import CatalogUseCases
from .decisions import DecisionUseCases
from .following import CatalogFollower
from .keys import KeyUseCases
from .offers import OfferUseCases
from .outcomes import OutcomeRecorder, OutcomeUseCases
from .policies import PolicyUseCases
from .ports import NO_TELEMETRY, Stores, Telemetry
from .tenants import TenantUseCases
from .views import TenantViews


@dataclass
class Core:
    """What every front door calls. Build with `Core.start` on the event loop that will serve it."""

    stores: Stores
    views: TenantViews
    auth: Authenticator
    offers: OfferUseCases
    catalog: CatalogUseCases
    policies: PolicyUseCases
    tenants: TenantUseCases
    keys: KeyUseCases
    decisions: DecisionUseCases
    outcomes: OutcomeUseCases
    follower: CatalogFollower | None = None  # when other processes change the catalogue too

    @classmethod
    def start(
        cls,
        stores: Stores,
        clock: Clock,
        *,
        authenticate: bool = True,
        limiter: RateLimiter | None = None,
        rebuilds: Executor | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
        decision_log_sample: float = 0.0,
    ) -> Core:
        """Load every tenant's view from the stores (before serving). `rebuilds` runs view rebuilds
        off the event loop; `authenticate` False accepts any caller (the tenant they name, as admin);
        `decision_log_sample` is the share of decisions kept in the stores' decision log."""
        views = TenantViews(stores.counters, rebuilds, telemetry)
        views.load(stores.catalog.load())
        recorder = OutcomeRecorder(stores.outcomes, stores.counters, stores.histories, telemetry)
        follower = None
        if stores.changes is not None:
            follower = CatalogFollower(stores.catalog, views)
            stores.changes.follow(follower.changed)
        return cls(
            stores=stores,
            views=views,
            auth=Authenticator(stores.keys if authenticate else None, clock, limiter),
            offers=OfferUseCases(stores.catalog, views, stores.counters, clock),
            catalog=CatalogUseCases(stores.catalog, views, clock),
            policies=PolicyUseCases(stores.catalog, views, clock),
            tenants=TenantUseCases(stores.catalog, views, clock),
            keys=KeyUseCases(stores.keys, clock),
            decisions=DecisionUseCases(
                views,
                stores.counters,
                stores.histories,
                recorder,
                clock,
                stores.decisions,
                decision_log_sample,
                telemetry,
            ),
            outcomes=OutcomeUseCases(views, recorder, clock),
            follower=follower,
        )

    async def close(self) -> None:
        """After the front doors stopped: finish queued writes, then pending view rebuilds."""
        if self.follower is not None:
            await self.follower.close()
        await self.stores.close()
        await self.views.close()
