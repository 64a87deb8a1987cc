"""Adaptive-model positives kept incrementally in SQLite match the reference count, in any arrival order."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Database

from arbiter.server.app.ports import PreparedOutcome
from arbiter.server.domain.outcomes import OutcomeInput, OutcomeType, matched_positives
from arbiter.server.domain.timekeeping import ManualClock
from arbiter.server.storage.sql.outcome_log import SqlOutcomeLog
from arbiter.server.storage.sql.writer import Writer
from arbiter.server.storage.sqlite.database import Durability, SqliteConnection, open_writer
from arbiter.server.storage.sqlite.migrations import migrations

MATCHED = (OutcomeType.IMPRESSION, OutcomeType.CLICK, OutcomeType.CONVERSION)
# (customer, type, occurred_us): few customers and instants, so pairs repeat and instants tie.
EVENTS = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(list(OutcomeType)), st.integers(0, 4)),
    max_size=40,
)
_keys = itertools.count()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteConnection]:
    database = open_writer(tmp_path_factory.mktemp("matching") / "a.db", Durability.PROCESS)
    yield database
    database.close()


def _prepared(customer: str, kind: OutcomeType, occurred_us: int) -> PreparedOutcome:
    o = OutcomeInput(customer, "offer", kind, occurred_us=occurred_us, idempotency_key=f"k{next(_keys)}")
    return PreparedOutcome(o, kind, day=0, cost_micros=0, model_ref="model")


def _write(db: SqliteConnection, tenant: str, items: list[PreparedOutcome]) -> int:
    """Write one job as the writer would; returns how much the model's positives grew."""
    job = SqlOutcomeLog(Writer(lambda: db), ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))._write_job(tenant, items)
    db.begin()
    result = job(db)
    db.commit()
    return sum(effect.positives for effect in result.effects)


def _reference(db: SqliteConnection, tenant: str) -> int:
    """matched_positives over every stored event, per customer, in event time."""
    total = 0
    for customer in ("a", "b"):
        rows = db.execute(
            "SELECT seq, type FROM outcomes WHERE tenant = ? AND customer_id = ? AND type IN (1, 2, 3) "
            "ORDER BY occurred_us, type, seq",
            [tenant, customer],
        ).fetchall()
        total += matched_positives(rows)
    return total


@given(events=EVENTS, cuts=st.lists(st.integers(0, 40), max_size=5))
def test_positives_grow_as_the_event_time_matching_says_whatever_the_arrival_order(
    db: SqliteConnection, events: list[tuple[str, OutcomeType, int]], cuts: list[int]
) -> None:
    tenant = uuid.uuid4().hex
    items = [_prepared(*event) for event in events]
    bounds = sorted({0, len(items), *(min(c, len(items)) for c in cuts)})
    positives = 0
    for start, end in itertools.pairwise(bounds):  # several bulks, several pairs in one bulk
        positives += _write(db, tenant, items[start:end])
        assert positives == _reference(db, tenant)


@given(events=EVENTS)
def test_the_migration_builds_the_state_the_writer_would_have(
    tmp_path_factory: pytest.TempPathFactory, events: list[tuple[str, OutcomeType, int]]
) -> None:
    path = tmp_path_factory.mktemp("migrate") / "a.db"
    old = Database(path)
    migrations.apply(old, stop_before="m008_outcome_matching")  # a database made before the state existed
    old["outcomes"].insert_all(  # type: ignore[union-attr]
        {
            "id": f"out_{i}",
            "tenant": "t",
            "idempotency_key": f"k{i}",
            "customer_id": customer,
            "offer_id": "offer",
            "type": int(kind),
            "decision_id": "",
            "channel": "",
            "occurred_us": occurred_us,
            "recorded_us": 0,
        }
        for i, (customer, kind, occurred_us) in enumerate(events)
    )
    old.conn.close()
    db = open_writer(path, Durability.PROCESS)
    try:
        stored = db.execute("SELECT customer_id, waiting, matched FROM outcome_matching WHERE tenant = 't'")
        for customer, waiting, matched in stored.fetchall():
            rows = db.execute(
                "SELECT seq, type FROM outcomes WHERE customer_id = ? AND type IN (1, 2, 3) "
                "ORDER BY occurred_us, type, seq",
                [customer],
            ).fetchall()
            impressions = sum(t == OutcomeType.IMPRESSION for _, t in rows)
            assert (waiting, matched) == (impressions - matched_positives(rows), matched_positives(rows))
        clicked = {customer for customer, kind, _ in events if kind in MATCHED and kind != OutcomeType.IMPRESSION}
        assert {row[0] for row in db.execute("SELECT customer_id FROM outcome_matching").fetchall()} == clicked
        # A click and an impression after all of it (in order) and one before (out of order) move
        # the state on from the backfill; every growth must be what the reference count says.
        before = _reference(db, "t")
        grown = _write(db, "t", [_prepared("a", OutcomeType.IMPRESSION, 10), _prepared("a", OutcomeType.CLICK, 11)])
        assert before + grown == _reference(db, "t")
        grown += _write(db, "t", [_prepared("a", OutcomeType.CLICK, 2), _prepared("b", OutcomeType.IMPRESSION, 3)])
        assert before + grown == _reference(db, "t")
    finally:
        db.close()
