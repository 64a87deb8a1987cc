"""The outcome log in SQL: idempotent, group-committed, with the ledger and model counts it feeds (storage layer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence

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
            outcome_ids = [new_fast_id(OUTCOME_PREFIX) for _ in prepared]
            seqs = _insert(conn, tenant, prepared, outcome_ids, recorded_us)
            firsts = _first_results(
                conn, tenant, [item for item, seq in zip(prepared, seqs, strict=True) if seq is None]
            )
            records: list[OutcomeRecord] = []
            effects: list[OutcomeEffect] = []
            ledger: dict[tuple[str, int], list[int]] = {}
            model: dict[tuple[str, str], list[int]] = {}
            matching = _Matching(conn, tenant)
            stored = [item for item, seq in zip(prepared, seqs, strict=True) if seq is not None]
            matching.preload(
                moved=(_pair(i) for i in stored if i.type is OutcomeType.IMPRESSION or i.type.is_positive),
                positive=(_pair(i) for i in stored if i.type.is_positive),
            )
            for item, outcome_id, seq in zip(prepared, outcome_ids, seqs, strict=True):
                o = item.input
                if seq is None:
                    first_id, first_us = firsts[o.idempotency_key]
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
                    grown = matching.record(o.customer_id, o.offer_id, (o.occurred_us, int(item.type), seq))
                if item.model_ref and (item.type is OutcomeType.IMPRESSION or item.type.is_positive):
                    positives = grown
                    counts = model.setdefault((item.model_ref, o.offer_id), [0, 0])
                    counts[0] += item.type is OutcomeType.IMPRESSION
                    counts[1] += positives
                records.append(OutcomeRecord(outcome_id, recorded_us, duplicate=False))
                effects.append(OutcomeEffect(item, seq, positives))
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


def _pair(item: PreparedOutcome) -> tuple[str, str]:
    return item.input.customer_id, item.input.offer_id


def _insert(
    conn: SqlConnection, tenant: str, prepared: list[PreparedOutcome], outcome_ids: list[str], recorded_us: int
) -> list[int | None]:
    """Insert the outcomes in order; each one's seq, None for a duplicate (of a stored one, or of an
    earlier one of the same job: as if they had come one call after the other)."""
    results = conn.execute_each(
        "INSERT INTO outcomes (id, tenant, idempotency_key, customer_id, offer_id, type, decision_id, channel, "
        "occurred_us, recorded_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING seq",
        [
            _outcome_row(tenant, item, outcome_id, recorded_us)
            for item, outcome_id in zip(prepared, outcome_ids, strict=True)
        ],
    )
    return [rows[0][0] if rows else None for rows in results]


def _outcome_row(tenant: str, item: PreparedOutcome, outcome_id: str, recorded_us: int) -> list[object]:
    o = item.input
    return [
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
    ]


def _first_results(conn: SqlConnection, tenant: str, duplicates: list[PreparedOutcome]) -> dict[str, tuple[str, int]]:
    """By idempotency key: the stored outcome each duplicate repeats (same key, or for an impression
    the same decision and offer)."""
    found: dict[str, tuple[str, int]] = {}
    by_key = conn.execute_each(
        "SELECT id, recorded_us FROM outcomes WHERE tenant = ? AND idempotency_key = ?",
        [(tenant, item.input.idempotency_key) for item in duplicates],
    )
    for item, same_key in zip(duplicates, by_key, strict=True):
        o = item.input
        rows = (
            same_key
            or conn.execute(
                "SELECT id, recorded_us FROM outcomes WHERE tenant = ? AND decision_id = ? AND offer_id = ? "
                "AND type = ? AND decision_id <> ''",
                [tenant, o.decision_id, o.offer_id, int(OutcomeType.IMPRESSION)],
            ).fetchall()
        )
        if not rows:
            raise InvalidArgument.single("idempotencyKey", "conflicts with a stored outcome that cannot be found")
        found[o.idempotency_key] = (rows[0][0], rows[0][1])
    return found


Pair = tuple[str, str]  # (customer, offer)
_MATCHED_TYPES = (int(OutcomeType.IMPRESSION), int(OutcomeType.CLICK), int(OutcomeType.CONVERSION))


class _Matching:
    """Adaptive-model matching state of the (customer, offer) pairs one write job touches.

    Every pair's state is read up front (`preload`, a chunk of pairs per
    query), moved by every impression, click and conversion of the job, and
    written back once: an outcome that is the latest of its pair in event
    time costs O(1) whatever the history; one that arrives out of order
    recounts that pair's events. Only pairs with a click or conversion have a
    state: an impression of any other pair matches nothing and costs no
    write (most impressions are never clicked); the first positive of a pair
    counts its impressions.
    (docs/rules.md, "Adaptive model")
    """

    def __init__(self, conn: SqlConnection, tenant: str) -> None:
        self._conn = conn
        self._tenant = tenant
        self._states: dict[Pair, MatchState | None] = {}  # None: no positive yet
        self._events: dict[Pair, list[EventKey]] = {}  # preloaded stored events, for the pairs counted first

    def record(self, customer: str, offer_id: str, key: EventKey) -> int:
        """Take in one stored event; returns how much the matched positives grew."""
        pair = (customer, offer_id)
        before = self._states[pair]  # preloaded
        if before is None and key[1] == OutcomeType.IMPRESSION:
            self._states[pair] = None
            return 0
        after = (advance(before, key) if before is not None else None) or self._recount(pair, key[2])
        self._states[pair] = after
        return after.matched - (before.matched if before is not None else 0)

    def preload(self, moved: Iterable[Pair], positive: Iterable[Pair]) -> None:
        """Read up front the state of every pair the job `moved`, and the stored events of those with a
        `positive` in the job but no state yet (they are counted): one lookup per pair, all in one go."""
        pairs = sorted(set(moved) - self._states.keys())
        states = self._conn.execute_each(
            "SELECT last_occurred_us, last_type, last_seq, waiting, matched FROM outcome_matching "
            "WHERE tenant = ? AND customer_id = ? AND offer_id = ?",
            [(self._tenant, *pair) for pair in pairs],
        )
        for pair, rows in zip(pairs, states, strict=True):
            self._states[pair] = MatchState((rows[0][0], rows[0][1], rows[0][2]), *rows[0][3:]) if rows else None
        self._load_events(pair for pair in set(positive) if self._states.get(pair) is None)

    def _load_events(self, pairs: Iterable[Pair]) -> None:
        """Read the stored events of `pairs`, one lookup per customer, all in one go.

        By customer, not by pair: only the index that begins with the customer can answer that, where a
        lookup by pair may be planned on the offer's index instead (Postgres, before its statistics say
        otherwise), which reads every outcome of the offer."""
        wanted = set(pairs)
        for pair in wanted:
            self._events[pair] = []
        customers = sorted({customer for customer, _ in wanted})
        found = self._conn.execute_each(
            "SELECT offer_id, occurred_us, type, seq FROM outcomes WHERE tenant = ? AND customer_id = ? "
            "AND type IN (?, ?, ?)",
            [(self._tenant, customer, *_MATCHED_TYPES) for customer in customers],
        )
        for customer, rows in zip(customers, found, strict=True):
            for offer_id, *key in rows:
                if (customer, offer_id) in wanted:
                    self._events[(customer, offer_id)].append((key[0], key[1], key[2]))

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

    def _recount(self, pair: Pair, upto_seq: int) -> MatchState:
        """The pair's state over its stored events up to the one numbered `upto_seq` (the job's outcomes are
        all stored before any is matched: the later ones are matched after it)."""
        if pair not in self._events:  # an event out of order on a pair with a state: rare
            self._load_events([pair])
        return recount([key for key in self._events[pair] if key[2] <= upto_seq])
