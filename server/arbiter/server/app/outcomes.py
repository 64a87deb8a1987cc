"""Recording outcomes, and what a committed outcome changes in memory (application layer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from ..domain.access import Permission, Principal, require
from ..domain.customer_history import HistoryEvent
from ..domain.errors import Decoded, ViolationCollector, raise_if_invalid
from ..domain.offers import Offer
from ..domain.outcomes import (
    SERVER_TIME,
    OutcomeInput,
    OutcomeRecord,
    OutcomeType,
    bulk_size_problem,
    validate_outcome,
)
from ..domain.resources import Kind, not_found
from ..domain.timekeeping import Clock
from .ports import (
    NO_TELEMETRY,
    AppendResult,
    CustomerHistories,
    LiveCounters,
    OutcomeLog,
    PreparedOutcome,
    Reservation,
    Telemetry,
)
from .views import TenantView, TenantViews

YIELD_EVERY = 100  # outcomes validated between two turns of the event loop


def prepare(outcome: OutcomeInput, offer: Offer, day: int, *, reserved: bool = False) -> PreparedOutcome:
    """Fix what an outcome's effects need before it is written: its ledger day, cost and model."""
    assert outcome.type is not None
    return PreparedOutcome(
        input=outcome,
        type=outcome.type,
        day=day,
        cost_micros=offer.budget.cost_per_action_micros if offer.budget else 0,
        model_ref=offer.qualification.model_reference if offer.qualification else "",
        reserved=reserved,
    )


class OutcomeRecorder:
    """Writes prepared outcomes and applies their effects to counters and histories as they commit."""

    def __init__(
        self,
        log: OutcomeLog,
        counters: LiveCounters,
        histories: CustomerHistories,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._log = log
        self._counters = counters
        self._histories = histories
        self._telemetry = telemetry

    def append(
        self, tenant: str, items: Sequence[PreparedOutcome], on_failure: Callable[[], None] | None = None
    ) -> Awaitable[AppendResult]:
        return self._log.append(tenant, items, lambda result: self._apply(tenant, result), on_failure)

    async def append_reported(self, tenant: str, items: Sequence[PreparedOutcome]) -> AppendResult:
        """Write outcomes a caller reports; their impressions are reserved first, without a cap (they happened).

        So counters shared by several servers count an impression before it
        commits, as they count a decision's, and give it back if it does not.
        """
        reported: list[PreparedOutcome] = []
        by_day: dict[int, list[Reservation]] = {}
        for item in items:
            if item.type is OutcomeType.IMPRESSION:
                by_day.setdefault(item.day, []).append(Reservation(item.input.offer_id, item.cost_micros))
            reported.append(replace(item, reserved=True) if item.type is OutcomeType.IMPRESSION else item)

        def release(days: Iterable[int]) -> None:
            for day in days:
                self._counters.release(tenant, day, by_day[day])

        taken: list[int] = []
        try:
            for day, wanted in by_day.items():
                await self._counters.reserve(tenant, day, wanted)
                taken.append(day)
        except BaseException:
            release(taken)
            raise
        return await self.append(tenant, reported, lambda: release(taken))

    def _apply(self, tenant: str, result: AppendResult) -> None:
        """Runs on the loop, in commit order: counters and histories move with the durable record."""
        self._counters.apply(tenant, result.effects)
        self._telemetry.outcomes_recorded([e.outcome.type for e in result.effects if e.seq is not None])
        for effect in result.effects:
            if effect.seq is None:  # a duplicate changes nothing
                continue
            o = effect.outcome.input
            self._histories.record(
                tenant,
                o.customer_id,
                HistoryEvent(o.occurred_us, effect.seq, o.offer_id, int(effect.outcome.type), o.channel),
            )


class OutcomeUseCases:
    """RecordOutcome and RecordOutcomes."""

    def __init__(self, views: TenantViews, recorder: OutcomeRecorder, clock: Clock) -> None:
        self._views = views
        self._recorder = recorder
        self._clock = clock

    async def record(
        self, principal: Principal, decoded: Decoded[list[OutcomeInput]], *, bulk: bool
    ) -> list[OutcomeRecord]:
        """Validate every outcome, then record them in one transaction.

        A single outcome naming an unknown offer is NOT_FOUND; in a bulk call
        any bad item, an unknown offer included, rejects the whole batch.
        Paths are `outcome.<field>` for one, `outcomes[i].<field>` in bulk.
        """
        require(principal, Permission.DECIDE)
        outcomes = decoded.value
        v = ViolationCollector()
        problem = bulk_size_problem(len(outcomes)) if bulk else None
        if problem is not None:
            v.add("outcomes", problem)
            v.raise_if_any()
        view = self._views.current(principal.tenant)
        now_us = self._clock.now_us()
        items: list[PreparedOutcome] = []
        unknown: str | None = None
        for i, given in enumerate(outcomes):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a bulk of 1,000 is milliseconds of work: let other callers in between
            item = v.nested(f"outcomes[{i}]." if bulk else "outcome.")
            before = len(v.violations)
            validate_outcome(item, given)
            offer = view.offers.get(given.offer_id)
            if offer is None and given.offer_id.strip():
                if bulk:
                    item.add("offerId", f"offer {given.offer_id!r} not found")
                else:
                    unknown = given.offer_id
            if offer is not None and len(v.violations) == before:
                o = replace(given, occurred_us=now_us) if given.occurred_us == SERVER_TIME else given
                items.append(prepare(o, offer, _ledger_day(view, o)))
        raise_if_invalid(decoded.violations, v.violations)
        if unknown is not None:
            raise not_found(Kind.OFFER, unknown)
        result = await self._recorder.append_reported(principal.tenant, items)
        return result.records


def _ledger_day(view: TenantView, outcome: OutcomeInput) -> int:
    # The tenant-local day of occurrence, in the zone the tenant has when the outcome is recorded.
    return view.local_day(outcome.occurred_us)
