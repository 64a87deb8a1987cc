"""The outcome log in SQL: idempotent, group-committed, with the ledger and model counts it feeds (storage layer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence

from ...app.ports import AppendResult, OutcomeEffect, PreparedOutcome
from ...domain.errors import InvalidArgument
from ...domain.ids import new_fast_id
from ...domain.outcomes import (
    OUTCOME_PREFIX,
    EventKey,
    MatchState,
    OutcomeRecord,
    OutcomeType,
    advance,
    recount,
)
from ...domain.timekeeping import Clock
from .connection import SqlConnection
from .writer import Writer

APPLY_SLICE = 100  # outcomes applied to memory at a time


class SqlOutcomeLog:
    """Writes outcomes on the writer thread; one job per call, group-committed with whatever else is queued."""

    def __init__(self, writer: Writer, clock: Clock) -> None:
        self._writer = writer
        self._clock = clock

    def append(
        self,
        tenant: str,
        items: Sequence[PreparedOutcome],
        on_commit: Callable[[AppendResult], None],
        on_failure: Callable[[], None] | None = None,
    ) -> asyncio.Future[AppendResult]:
        def apply(result: AppendResult) -> Iterator[None]:
            # In slices, the writer yielding the loop between them: a bulk's effects cost milliseconds.
            for start in range(0, len(result.effects), APPLY_SLICE):
                end = start + APPLY_SLICE
                on_commit(AppendResult(result.records[start:end], result.effects[start:end]))
                yield

        future = self._writer.submit(self._write_job(tenant, list(items)), apply, on_failure)
        return asyncio.shield(future)

    def _write_job(self, tenant: str, prepared: list[PreparedOutcome]) -> Callable[[SqlConnection], AppendResult]:
        recorded_us = self._clock.now_us()

        def work(conn: SqlConnection) -> AppendResult:
            records: list[OutcomeRecord] = []
            effects: list[OutcomeEffect] = []
            ledger: dict[tuple[str, int], list[int]] = {}
            model: dict[tuple[str, str], list[int]] = {}
            matching = _Matching(conn, tenant)
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
                    effects.append(OutcomeEffect(item, None))
                    continue
                positives = grown = 0
                if item.type is OutcomeType.IMPRESSION:
                    entry = ledger.setdefault((o.offer_id, item.day), [0, 0])
                    entry[0] += 1
                    entry[1] += item.cost_micros
                if item.type is OutcomeType.IMPRESSION or item.type.is_positive:
                    # Every pair's state moves, so a model reference added later starts from the truth.
                    grown = matching.record(o.customer_id, o.offer_id, (o.occurred_us, int(item.type), row[0]))
                if item.model_ref and (item.type is OutcomeType.IMPRESSION or item.type.is_positive):
                    positives = grown
                    counts = model.setdefault((item.model_ref, o.offer_id), [0, 0])
                    counts[0] += item.type is OutcomeType.IMPRESSION
                    counts[1] += positives
                records.append(OutcomeRecord(outcome_id, recorded_us, duplicate=False))
                effects.append(OutcomeEffect(item, row[0], positives))
            matching.flush()
            conn.executemany(
                "INSERT INTO offer_daily (tenant, offer_id, day, impressions, spend_micros) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, day, offer_id) DO UPDATE SET "
                "impressions = offer_daily.impressions + excluded.impressions, "
                "spend_micros = offer_daily.spend_micros + excluded.spend_micros",
                [(tenant, offer_id, day, n, spend) for (offer_id, day), (n, spend) in ledger.items()],
            )
            conn.executemany(
                "INSERT INTO model_stats (tenant, model_ref, offer_id, trials, positives) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, model_ref, offer_id) DO UPDATE SET "
                "trials = model_stats.trials + excluded.trials, positives = model_stats.positives + excluded.positives",
                [(tenant, ref, offer_id, t, p) for (ref, offer_id), (t, p) in model.items()],
            )
            return AppendResult(records, effects)

        return work


def _first_result(conn: SqlConnection, tenant: str, item: PreparedOutcome) -> tuple[str, int]:
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


_MATCHED_TYPES = (int(OutcomeType.IMPRESSION), int(OutcomeType.CLICK), int(OutcomeType.CONVERSION))


class _Matching:
    """Adaptive-model matching state of the (customer, offer) pairs one write job touches.

    Each pair's state is read once, moved by every impression, click and
    conversion of the job, and written back once: an outcome that is the
    latest of its pair in event time costs O(1) whatever the history; one
    that arrives out of order recounts that pair's events. Only pairs with a
    click or conversion have a state: an impression of any other pair
    matches nothing and costs one lookup, not a write (most impressions are
    never clicked); the first positive of a pair counts its impressions.
    (docs/rules.md, "Adaptive model")
    """

    def __init__(self, conn: SqlConnection, tenant: str) -> None:
        self._conn = conn
        self._tenant = tenant
        self._states: dict[tuple[str, str], MatchState | None] = {}  # None: no positive yet

    def record(self, customer: str, offer_id: str, key: EventKey) -> int:
        """Take in one stored event; returns how much the matched positives grew."""
        pair = (customer, offer_id)
        before = self._states[pair] if pair in self._states else self._load(pair)
        if before is None and key[1] == OutcomeType.IMPRESSION:
            self._states[pair] = None
            return 0
        after = (advance(before, key) if before is not None else None) or self._recount(pair)
        self._states[pair] = after
        return after.matched - (before.matched if before is not None else 0)

    def flush(self) -> None:
        self._conn.executemany(
            "INSERT INTO outcome_matching (tenant, customer_id, offer_id, last_occurred_us, last_type, "
            "last_seq, waiting, matched) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, customer_id, offer_id) DO UPDATE SET last_occurred_us = excluded.last_occurred_us, "
            "last_type = excluded.last_type, last_seq = excluded.last_seq, waiting = excluded.waiting, "
            "matched = excluded.matched",
            [
                (self._tenant, customer, offer_id, *state.last, state.waiting, state.matched)
                for (customer, offer_id), state in self._states.items()
                if state is not None
            ],
        )

    def _load(self, pair: tuple[str, str]) -> MatchState | None:
        row = self._conn.execute(
            "SELECT last_occurred_us, last_type, last_seq, waiting, matched FROM outcome_matching "
            "WHERE tenant = ? AND customer_id = ? AND offer_id = ?",
            [self._tenant, *pair],
        ).fetchone()
        return None if row is None else MatchState((row[0], row[1], row[2]), row[3], row[4])

    def _recount(self, pair: tuple[str, str]) -> MatchState:
        rows = self._conn.execute(
            "SELECT occurred_us, type, seq FROM outcomes WHERE tenant = ? AND customer_id = ? AND offer_id = ? "
            "AND type IN (?, ?, ?)",
            [self._tenant, *pair, *_MATCHED_TYPES],
        ).fetchall()
        return recount(rows)
