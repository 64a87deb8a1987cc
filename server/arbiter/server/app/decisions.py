"""The Decide and GetOfferStats use cases (application layer).

A decision reads one TenantView for everything: the snapshot the funnel
runs over, and the tenant's zone, hence the ledger day that budgets read,
reservations take and committed impressions release. Every await comes
before the funnel; from the funnel to the reservations nothing yields with
the embedded counters (their reserve does not), so concurrent decisions
cannot both pass a cap; counters shared between servers check the caps
again, atomically, as they reserve, and an offer they refuse is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import date

from ..domain.access import Permission, Principal, require
from ..domain.customer_history import CustomerHistory
from ..domain.decision_engine import decide
from ..domain.decision_log import LoggedDecision, WhyNotAnswer, sampled, why_not
from ..domain.decisions import (
    DECISION_PREFIX,
    DecidedOffer,
    DecisionRequest,
    DecisionResult,
    batch_size_problem,
    effective_limit,
    validate_decision_request,
)
from ..domain.errors import Decoded, FieldViolation, InvalidArgument, NotFound, raise_if_invalid
from ..domain.ids import new_id
from ..domain.offers import Offer
from ..domain.outcomes import SERVER_TIME, OutcomeInput, OutcomeType, adaptive_estimate
from ..domain.timekeeping import Clock
from .outcomes import OutcomeRecorder, prepare
from .ports import (
    NO_TELEMETRY,
    CustomerHistories,
    DecisionLog,
    LiveCounters,
    OfferCounts,
    PreparedOutcome,
    Reservation,
    Telemetry,
)
from .views import TenantView, TenantViews


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    decision_us: int
    result: DecisionResult


@dataclass(frozen=True, slots=True)
class OfferStats:
    """An offer's counters as GetOfferStats reports them, "today" being the tenant-local day now."""

    offer: Offer
    today: date
    timezone: str
    counts: OfferCounts

    @property
    def model_reference(self) -> str:
        return self.offer.qualification.model_reference if self.offer.qualification else ""

    @property
    def model_estimate(self) -> float:
        return adaptive_estimate(self.counts.model_trials, self.counts.model_positives)

    @property
    def remaining_impressions(self) -> int | None:
        budget = self.offer.budget
        if budget is None or budget.max_impressions is None:
            return None
        return max(0, budget.max_impressions - self.counts.lifetime_impressions)

    @property
    def remaining_daily_budget_micros(self) -> int | None:
        budget = self.offer.budget
        if budget is None or budget.max_daily_budget_micros is None:
            return None
        return max(0, budget.max_daily_budget_micros - self.counts.today_spend_micros)


def _reservation(offer: Offer, held_to_budget: bool) -> Reservation:
    """The impression to reserve, with the caps the funnel held `offer` to (reserving checks them again)."""
    budget = offer.budget
    # Mandatory offers skip the budget step, unless a non-bypassable budget_exhausted policy holds them to it.
    capped = budget is not None and (not offer.mandatory or held_to_budget)
    return Reservation(
        offer_id=offer.id,
        cost_micros=budget.cost_per_action_micros if budget else 0,
        max_impressions=budget.max_impressions if capped and budget else None,
        daily_budget_micros=budget.max_daily_budget_micros if capped and budget else None,
    )


class DecisionUseCases:
    """Decide for a customer; report an offer's counters; read kept decisions; say why an offer is not shown.

    `log_sample` (0 to 1) is the share of decisions kept in `log`; at 0 a
    decision costs one comparison more than without a log.
    """

    def __init__(
        self,
        views: TenantViews,
        counters: LiveCounters,
        histories: CustomerHistories,
        recorder: OutcomeRecorder,
        clock: Clock,
        log: DecisionLog,
        log_sample: float = 0.0,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._views = views
        self._counters = counters
        self._histories = histories
        self._recorder = recorder
        self._clock = clock
        self._log = log
        self._log_sample = log_sample
        self._telemetry = telemetry

    def _validated(self, decoded: Decoded[DecisionRequest]) -> DecisionRequest:
        raise_if_invalid(decoded.violations, validate_decision_request(decoded.value))
        request = decoded.value
        return replace(
            request,
            limit=effective_limit(request.limit),
            decision_us=self._clock.now_us() if request.decision_us == SERVER_TIME else request.decision_us,
        )

    async def decide(self, principal: Principal, decoded: Decoded[DecisionRequest]) -> Decision:
        require(principal, Permission.DECIDE)
        return await self._decide(principal.tenant, self._validated(decoded))

    async def decide_many(
        self, principal: Principal, batch: Sequence[Decoded[DecisionRequest]], *, limit: int, one_answer: bool
    ) -> AsyncIterator[Decision]:
        """Each request decided exactly as `decide` would, one after another in order (BatchDecide, StreamDecide).

        Every request is checked before the first is decided, so a bad one
        refuses the whole batch, naming `requests[i].<field>`. The loop is
        given back between two decisions: a batch must not hold up other callers.
        With `one_answer` (BatchDecide) every decision goes out in one message,
        which may turn out too large to send: so no request may ask for
        `explain`, whose answers grow with the catalogue, nor for
        `recordImpressions`, which would be kept for answers never delivered.
        """
        require(principal, Permission.DECIDE)
        problem = batch_size_problem(len(batch), limit)
        if problem is not None:
            raise InvalidArgument.single("requests", problem)
        requests: list[DecisionRequest] = []
        violations: list[FieldViolation] = []
        for i, decoded in enumerate(batch):
            try:
                requests.append(self._validated(decoded))
            except InvalidArgument as error:
                violations.extend(FieldViolation(f"requests[{i}].{v.field}", v.description) for v in error.violations)
            if one_answer:
                violations.extend(
                    FieldViolation(f"requests[{i}].{field}", f"is not taken in one answer for many: {why}")
                    for field, asked, why in (
                        ("explain", decoded.value.explain, "use StreamDecide, or Decide"),
                        ("recordImpressions", decoded.value.record_impressions, "use StreamDecide, or Decide"),
                    )
                    if asked
                )
        if violations:
            raise InvalidArgument(violations)
        for request in requests:
            yield await self._decide(principal.tenant, request)
            await asyncio.sleep(0)

    async def _decide(self, tenant: str, request: DecisionRequest) -> Decision:
        decision_id = new_id(DECISION_PREFIX)
        # A kept decision stores every candidate's fate, so the funnel explains it whatever the caller asked.
        keep = self._log_sample > 0.0 and sampled(decision_id, self._log_sample)
        funnel_request = replace(request, explain=True) if keep and not request.explain else request
        telemetry = self._telemetry
        view, day, result = await self._run(tenant, funnel_request, telemetry)
        if request.record_impressions and not request.dry_run and result.offers:
            recording = time.perf_counter()
            result = await self._record_impressions(tenant, view, day, decision_id, request, result)
            telemetry.decide_stage("record", time.perf_counter() - recording)
        telemetry.decision(len(result.offers), result.dropped)
        if keep:
            self._log.keep(tenant, decision_id, request, result)  # not awaited: written off this path
            if not request.explain:
                result = replace(result, candidates=None)
        return Decision(decision_id, request.decision_us, result)

    async def _run(
        self, tenant: str, request: DecisionRequest, telemetry: Telemetry = NO_TELEMETRY
    ) -> tuple[TenantView, int, DecisionResult]:
        """Read the state the funnel needs (awaiting only what is missing), then run it with no await between.

        `telemetry` hears how long each took (real durations, not the business clock)."""
        started = time.perf_counter()
        history: CustomerHistory | None = None
        history_loaded = False
        while True:
            view = self._views.current(tenant)
            snapshot = view.snapshot
            day = view.local_day(request.decision_us)
            # Only what is missing is awaited: a day already loaded, a history already read, return at once.
            if snapshot.any_daily_budget:
                await self._counters.load_day(tenant, day)
            if not history_loaded and (snapshot.any_recency or snapshot.policies.needs_history):
                history = await self._histories.get(tenant, request.customer_id)
                history_loaded = True
            # From here on nothing yields until the impressions are reserved. If a new view was
            # published meanwhile (or the day's ledger evicted), go round again with what is current.
            if self._views.current(tenant) is not view:
                continue
            counts = self._counters.read(tenant, snapshot, day, spend=snapshot.any_daily_budget)
            if counts is not None:
                break
        loaded = time.perf_counter()
        result = decide(snapshot, counts, counts.spend_today, request, history)
        telemetry.decide_stage("load", loaded - started)
        telemetry.decide_stage("funnel", time.perf_counter() - loaded)
        return view, day, result

    async def why_not(self, principal: Principal, offer_id: str, decoded: Decoded[DecisionRequest]) -> WhyNotAnswer:
        """Where `offer_id` leaves the funnel for this customer: Decide's own funnel, explained, as a dry run.

        The request's filters are ignored (the question is about one offer);
        its limit counts as in Decide. Nothing is recorded or logged.
        """
        require(principal, Permission.STATS)
        tenant = principal.tenant
        offer = self._views.current(tenant).offer(offer_id)  # NOT_FOUND when the tenant has no such offer
        request = replace(
            self._validated(decoded),
            category_ids=frozenset(),
            sub_category_ids=frozenset(),
            tags=frozenset(),
            explain=True,
            dry_run=True,
            record_impressions=False,
        )
        _, _, result = await self._run(tenant, request)
        return why_not(offer_id, offer.status.value if offer.status else "not active", request, result)

    async def get_decision(self, principal: Principal, decision_id: str) -> LoggedDecision:
        """A kept decision of the caller's tenant; NOT_FOUND when not kept, expired or another tenant's."""
        require(principal, Permission.STATS)
        logged = await self._log.get(principal.tenant, decision_id) if decision_id.startswith(DECISION_PREFIX) else None
        if logged is None:
            raise NotFound(f"decision {decision_id!r} is not in the decision log", reason="DECISION_NOT_FOUND")
        return logged

    async def _record_impressions(
        self,
        tenant: str,
        view: TenantView,
        day: int,
        decision_id: str,
        request: DecisionRequest,
        result: DecisionResult,
    ) -> DecisionResult:
        """Reserve, then durably record, the impressions of what is returned; a refused reservation drops its offer."""
        snapshot = view.snapshot
        wanted = [
            _reservation(
                decided.offer,
                decided.offer.mandatory
                and snapshot.policies.holds_to_budget(snapshot.index[decided.offer.id], request.channel),
            )
            for decided in result.offers
        ]
        granted = await self._counters.reserve(tenant, day, wanted)
        kept: list[DecidedOffer] = []
        reserved: list[Reservation] = []
        prepared: list[PreparedOutcome] = []
        for decided, reservation, ok in zip(result.offers, wanted, granted, strict=True):
            if not ok:
                continue
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
            prepared.append(prepare(outcome, offer, day, reserved=True))
            reserved.append(reservation)
            kept.append(replace(decided, rank=len(kept) + 1))
        if prepared:
            await self._recorder.append(tenant, prepared, lambda: self._counters.release(tenant, day, reserved))
        if len(kept) == len(result.offers):
            return result
        return replace(result, offers=kept)

    async def offer_stats(self, principal: Principal, offer_id: str) -> OfferStats:
        require(principal, Permission.STATS)
        # An empty id is a malformed request, not a missing offer: say which field.
        raise_if_invalid((), [FieldViolation("offerId", "is required")] if not offer_id else [])
        tenant = principal.tenant
        view = self._views.current(tenant)
        offer = view.offer(offer_id)
        day = view.local_day(self._clock.now_us())
        model_ref = offer.qualification.model_reference if offer.qualification else ""
        counts = await self._counters.offer_counts(tenant, offer_id, model_ref, day)
        return OfferStats(offer, date.fromordinal(day), view.settings.timezone, counts)
