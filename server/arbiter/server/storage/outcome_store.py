"""Recording outcomes: idempotent, group-committed, reflected in memory at once (storage layer)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from ..domain.customer_history import HistoryEvent
from ..domain.errors import InvalidArgument, NotFound, ViolationCollector
from ..domain.ids import new_fast_id
from ..domain.offers import Offer
from ..domain.outcomes import (
    MAX_BULK_OUTCOMES,
    OutcomeInput,
    OutcomeRecord,
    OutcomeType,
    validate_outcome,
)
from ..domain.timekeeping import local_day
from .counters import Counters
from .customer_histories import CustomerHistories
from .offer_cache import OfferCache
from .tenant_settings import TenantSettingsRepository
from .writer import Writer

OUTCOME_PREFIX = "out_"


@dataclass(frozen=True, slots=True)
class PreparedOutcome:
    """An outcome with what its effects need, fixed on the loop before writing."""

    input: OutcomeInput
    type: OutcomeType
    day: int
    cost_micros: int
    model_ref: str
    reserved: bool = False


@dataclass(frozen=True, slots=True)
class _Effect:
    """What one written outcome changes in memory; seq is None for a duplicate (nothing changes)."""

    outcome: PreparedOutcome
    seq: int | None
    positives: int = 0  # how much the adaptive model's positives grow


_WriteResult = tuple[list[OutcomeRecord], list[_Effect]]


class OutcomeStore:
    """Writes outcomes and keeps counters and customer histories in step with the commits."""

    def __init__(
        self,
        writer: Writer,
        offers: OfferCache,
        settings: TenantSettingsRepository,
        counters: Counters,
        histories: CustomerHistories,
        clock_us: Callable[[], int],
    ) -> None:
        self._writer = writer
        self._offers = offers
        self._settings = settings
        self._counters = counters
        self._histories = histories
        self._clock_us = clock_us

    def prepare(self, tenant: str, outcome: OutcomeInput, offer: Offer, *, reserved: bool = False) -> PreparedOutcome:
        assert outcome.type is not None
        return PreparedOutcome(
            input=outcome,
            type=outcome.type,
            day=local_day(outcome.occurred_us, self._settings.zone(tenant)),
            cost_micros=offer.budget.cost_per_action_micros if offer.budget else 0,
            model_ref=offer.qualification.model_reference if offer.qualification else "",
            reserved=reserved,
        )

    async def record(self, tenant: str, outcomes: Sequence[OutcomeInput], *, bulk: bool) -> list[OutcomeRecord]:
        """Validate every outcome, then record them in one transaction.

        A single outcome naming an unknown offer is NOT_FOUND; in a bulk call
        any bad item, an unknown offer included, rejects the whole batch.
        """
        v = ViolationCollector()
        if bulk and not 1 <= len(outcomes) <= MAX_BULK_OUTCOMES:
            v.add("outcomes", f"must hold 1 to {MAX_BULK_OUTCOMES} outcomes, got {len(outcomes)}")
            v.raise_if_any()
        prepared: list[PreparedOutcome] = []
        for i, outcome in enumerate(outcomes):
            item = v.nested(f"outcomes[{i}]." if bulk else "outcome.")
            before = len(v.violations)
            validate_outcome(item, outcome)
            offer = self._offers.get(tenant, outcome.offer_id)
            if offer is None and outcome.offer_id.strip():
                if not bulk:
                    v.raise_if_any()
                    raise NotFound(
                        f"offer {outcome.offer_id!r} not found",
                        reason="OFFER_NOT_FOUND",
                        metadata={"id": outcome.offer_id},
                    )
                item.add("offerId", f"offer {outcome.offer_id!r} not found")
            if offer is not None and len(v.violations) == before:
                prepared.append(self.prepare(tenant, outcome, offer))
        v.raise_if_any()
        records, _ = await self._writer.run(self._write_job(tenant, prepared), self._applier(tenant))
        return records

    def submit(
        self, tenant: str, prepared: list[PreparedOutcome], on_failure: Callable[[], None]
    ) -> asyncio.Future[_WriteResult]:
        """Queue already-prepared outcomes (Decide's impressions); `on_failure` releases their reservations."""
        return self._writer.submit(self._write_job(tenant, prepared), self._applier(tenant), on_failure)

    def _write_job(self, tenant: str, prepared: list[PreparedOutcome]) -> Callable[[Database], _WriteResult]:
        recorded_us = self._clock_us()

        def work(db: Database) -> _WriteResult:
            conn = db.conn
            records: list[OutcomeRecord] = []
            effects: list[_Effect] = []
            ledger: dict[tuple[str, int], list[int]] = {}
            model: dict[tuple[str, str], list[int]] = {}
            for item in prepared:
                o = item.input
                outcome_id = new_fast_id(OUTCOME_PREFIX)
                row = conn.execute(
                    "INSERT INTO outcomes (id, tenant, idempotency_key, customer_id, offer_id, type, decision_id, "
                    "channel, occurred_us, recorded_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING seq",
                    [
                        outcome_id,
                        tenant,
                        o.idempotency_key,
                        o.customer_id,
                        o.offer_id,
                        int(item.type),
                        o.decision_id,
                        o.channel,
                        o.occurred_us,
                        recorded_us,
                    ],
                ).fetchone()
                if row is None:
                    first_id, first_us = _first_result(conn, tenant, item)
                    records.append(OutcomeRecord(first_id, first_us, duplicate=True))
                    effects.append(_Effect(item, None))
                    continue
                positives = 0
                if item.type is OutcomeType.IMPRESSION:
                    entry = ledger.setdefault((o.offer_id, item.day), [0, 0])
                    entry[0] += 1
                    entry[1] += item.cost_micros
                if item.model_ref and (item.type is OutcomeType.IMPRESSION or item.type.is_positive):
                    positives = _new_positives(conn, tenant, o.customer_id, o.offer_id, row[0], item.type)
                    counts = model.setdefault((item.model_ref, o.offer_id), [0, 0])
                    counts[0] += item.type is OutcomeType.IMPRESSION
                    counts[1] += positives
                records.append(OutcomeRecord(outcome_id, recorded_us, duplicate=False))
                effects.append(_Effect(item, row[0], positives))
            conn.executemany(
                "INSERT INTO offer_daily (tenant, offer_id, day, impressions, spend_micros) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, day, offer_id) DO UPDATE SET impressions = impressions + excluded.impressions, "
                "spend_micros = spend_micros + excluded.spend_micros",
                [(tenant, offer_id, day, n, spend) for (offer_id, day), (n, spend) in ledger.items()],
            )
            conn.executemany(
                "INSERT INTO model_stats (tenant, model_ref, offer_id, trials, positives) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, model_ref, offer_id) DO UPDATE SET trials = trials + excluded.trials, "
                "positives = positives + excluded.positives",
                [(tenant, ref, offer_id, t, p) for (ref, offer_id), (t, p) in model.items()],
            )
            return records, effects

        return work

    def _applier(self, tenant: str) -> Callable[[_WriteResult], None]:
        def apply(result: _WriteResult) -> None:
            counters = self._counters.tenant(tenant)
            for effect in result[1]:
                item, o = effect.outcome, effect.outcome.input
                if effect.seq is None:
                    if item.reserved:
                        counters.release(o.offer_id, item.day, item.cost_micros)
                    continue
                impression = item.type is OutcomeType.IMPRESSION
                if impression:
                    counters.commit_impression(o.offer_id, item.day, item.cost_micros, reserved=item.reserved)
                if item.model_ref and (impression or effect.positives):
                    counters.commit_model(item.model_ref, o.offer_id, int(impression), effect.positives)
                self._histories.record(
                    tenant,
                    o.customer_id,
                    HistoryEvent(o.occurred_us, effect.seq, o.offer_id, int(item.type), o.channel),
                )

        return apply


def _first_result(conn: sqlite3.Connection, tenant: str, item: PreparedOutcome) -> tuple[str, int]:
    """The stored outcome a duplicate repeats: same key, or (for an impression) same decision and offer."""
    o = item.input
    row = conn.execute(
        "SELECT id, recorded_us FROM outcomes WHERE tenant = ? AND idempotency_key = ?",
        [tenant, o.idempotency_key],
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT id, recorded_us FROM outcomes WHERE tenant = ? AND decision_id = ? AND offer_id = ? "
            "AND type = ? AND decision_id <> ''",
            [tenant, o.decision_id, o.offer_id, int(OutcomeType.IMPRESSION)],
        ).fetchone()
    if row is None:
        raise InvalidArgument.single("idempotencyKey", "conflicts with a stored outcome that cannot be found")
    return row[0], row[1]


def _new_positives(
    conn: sqlite3.Connection, tenant: str, customer: str, offer_id: str, seq: int, outcome_type: OutcomeType
) -> int:
    """How many more of this customer's impressions of the offer count as followed by a click or conversion.

    In event time: each click or conversion is matched to an earlier
    impression not yet matched (an impression at the same instant counts as
    earlier), so positives never exceed impressions and arrival order does
    not matter. The answer is the matching with the new outcome (`seq`)
    minus the matching without it.
    """
    if outcome_type is OutcomeType.IMPRESSION:
        # Most impressions belong to customers with no click on the offer at all.
        any_positive = conn.execute(
            "SELECT 1 FROM outcomes WHERE tenant = ? AND customer_id = ? AND offer_id = ? AND type IN (?, ?) LIMIT 1",
            [tenant, customer, offer_id, int(OutcomeType.CLICK), int(OutcomeType.CONVERSION)],
        ).fetchone()
        if any_positive is None:
            return 0
    events = conn.execute(
        "SELECT seq, type FROM outcomes WHERE tenant = ? AND customer_id = ? AND offer_id = ? AND type IN (?, ?, ?) "
        "ORDER BY occurred_us, type, seq",
        [
            tenant,
            customer,
            offer_id,
            *(int(t) for t in (OutcomeType.IMPRESSION, OutcomeType.CLICK, OutcomeType.CONVERSION)),
        ],
    ).fetchall()
    return _matched(events, skip=None) - _matched(events, skip=seq)


def _matched(events: list[tuple[int, int]], skip: int | None) -> int:
    waiting = matched = 0
    for event_seq, event_type in events:
        if event_seq == skip:
            continue
        if event_type == OutcomeType.IMPRESSION:
            waiting += 1
        elif waiting:
            waiting -= 1
            matched += 1
    return matched
