"""The outcome log in SQLite: idempotent, group-committed, with the ledger and model counts it feeds (storage layer)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence

from sqlite_utils import Database

from ...app.ports import AppendResult, OutcomeEffect, PreparedOutcome
from ...domain.errors import InvalidArgument
from ...domain.ids import new_fast_id
from ...domain.outcomes import OUTCOME_PREFIX, OutcomeRecord, OutcomeType, matched_positives
from ...domain.timekeeping import Clock
from .writer import Writer


class SqliteOutcomeLog:
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
        future = self._writer.submit(self._write_job(tenant, list(items)), on_commit, on_failure)
        return asyncio.shield(future)

    def _write_job(self, tenant: str, prepared: list[PreparedOutcome]) -> Callable[[Database], AppendResult]:
        recorded_us = self._clock.now_us()

        def work(db: Database) -> AppendResult:
            conn = db.conn
            records: list[OutcomeRecord] = []
            effects: list[OutcomeEffect] = []
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
                    effects.append(OutcomeEffect(item, None))
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
                effects.append(OutcomeEffect(item, row[0], positives))
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
            return AppendResult(records, effects)

        return work


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
    return matched_positives(events) - matched_positives(events, skip=seq)
