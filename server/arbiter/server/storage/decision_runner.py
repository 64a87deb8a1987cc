"""Runs a decision: gathers state, calls the funnel, reserves and records impressions (storage layer)."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.decision_engine import decide
from ..domain.decisions import DecisionRequest, DecisionResult
from ..domain.errors import NotFound
from ..domain.ids import new_id
from ..domain.offers import Offer
from ..domain.outcomes import OutcomeInput, OutcomeType, adaptive_estimate
from ..domain.timekeeping import local_day
from .counters import TenantCounters
from .customer_histories import CustomerHistories
from .decision_state import DecisionState
from .offer_cache import OfferCache
from .outcome_store import OutcomeStore, PreparedOutcome
from .tenant_settings import TenantSettingsRepository

DECISION_PREFIX = "dec_"


@dataclass(frozen=True, slots=True)
class OfferStats:
    offer: Offer
    day: int
    timezone: str
    lifetime_impressions: int
    today_impressions: int
    today_spend_micros: int
    model_trials: int
    model_positives: int

    @property
    def model_estimate(self) -> float:
        return adaptive_estimate(self.model_trials, self.model_positives)


class DecisionRunner:
    """The Decide and GetOfferStats use cases over the in-memory state."""

    def __init__(
        self,
        state: DecisionState,
        histories: CustomerHistories,
        outcomes: OutcomeStore,
        offers: OfferCache,
        settings: TenantSettingsRepository,
    ) -> None:
        self._state = state
        self._histories = histories
        self._outcomes = outcomes
        self._offers = offers
        self._settings = settings

    async def decide(self, tenant: str, request: DecisionRequest) -> tuple[str, DecisionResult]:
        decision_id = new_id(DECISION_PREFIX)
        snapshot, _ = self._state.current(tenant)
        day = local_day(request.decision_us, snapshot.tenant_zone)
        records = request.record_impressions and not request.dry_run
        needs_day = snapshot.any_daily_budget
        # The awaits come first: from here on, the check-and-reserve below
        # runs without yielding, so concurrent decisions cannot both pass a cap.
        if needs_day:
            await self._state.ensure_day(tenant, day)
        history = None
        if snapshot.any_recency or snapshot.policies.needs_history:
            history = await self._histories.get(tenant, request.customer_id)
        snapshot, live = self._state.current(tenant)  # an offer write may have landed meanwhile
        counters = self._state.counters.tenant(tenant)
        if needs_day and not counters.is_day_loaded(day):  # evicted while we waited: load again
            return await self.decide(tenant, request)
        spend = counters.spend_array(day) if snapshot.any_daily_budget else None
        result = decide(snapshot, live, spend, request, history)
        if records and result.offers:
            await self._record_impressions(tenant, decision_id, request, result, counters, day)
        return decision_id, result

    async def _record_impressions(
        self,
        tenant: str,
        decision_id: str,
        request: DecisionRequest,
        result: DecisionResult,
        counters: TenantCounters,
        day: int,
    ) -> None:
        prepared: list[PreparedOutcome] = []
        for decided in result.offers:
            offer = decided.offer
            outcome = OutcomeInput(
                customer_id=request.customer_id,
                offer_id=offer.id,
                type=OutcomeType.IMPRESSION,
                decision_id=decision_id,
                channel=request.channel,
                occurred_us=request.decision_us,
                idempotency_key=f"{decision_id}:{offer.id}:impression",
            )
            item = self._outcomes.prepare(tenant, outcome, offer, reserved=True)
            counters.reserve(offer.id, day, item.cost_micros)
            prepared.append(item)

        def release() -> None:
            for item in prepared:
                counters.release(item.input.offer_id, item.day, item.cost_micros)

        await self._outcomes.submit(tenant, prepared, release)

    async def offer_stats(self, tenant: str, offer_id: str, now_us: int) -> OfferStats:
        offer = self._offers.get(tenant, offer_id)
        if offer is None:
            raise NotFound(f"offer {offer_id!r} not found", reason="OFFER_NOT_FOUND", metadata={"id": offer_id})
        settings = self._settings.get(tenant)
        day = local_day(now_us, settings.zone)
        counters = await self._state.ensure_day(tenant, day)
        impressions, spend = counters.day_ledger(day).get(offer_id, (0, 0))
        ref = offer.qualification.model_reference if offer.qualification else ""
        trials, positives = counters.model.get((ref, offer_id), (0, 0)) if ref else (0, 0)
        return OfferStats(
            offer=offer,
            day=day,
            timezone=settings.timezone,
            lifetime_impressions=counters.lifetime.get(offer_id, 0),
            today_impressions=impressions,
            today_spend_micros=spend,
            model_trials=trials,
            model_positives=positives,
        )
