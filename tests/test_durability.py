"""Acknowledged outcomes and counters survive SIGKILL and graceful restarts of the server process."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from decide_helpers import make_offer, new_key, offer_ids, reason_of, returned, source_name, stats_dict
from serverproc import ServerProcess

from arbiter.client import Client, outcome
from arbiter.v1 import decisions_pb2

DUPLICATE = decisions_pb2.OUTCOME_STATUS_DUPLICATE
RECORDED = decisions_pb2.OUTCOME_STATUS_RECORDED


@dataclass
class Recorded:
    """What the first server acknowledged, to be found again after the restart."""

    sent: dict[str, decisions_pb2.Outcome] = field(default_factory=dict)  # key -> outcome
    results: dict[str, decisions_pb2.OutcomeResult] = field(default_factory=dict)  # key -> first result
    decisions: list[tuple[str, str, str]] = field(default_factory=list)  # (decision id, customer, offer id)


def _record(client: Client, log: Recorded, items: list[decisions_pb2.Outcome]) -> None:
    if len(items) == 1:
        o = items[0]
        result = client.record_outcome(
            o.customer_id,
            o.offer_id,
            o.type,
            o.idempotency_key,
            occurred_at=o.occurred_at.ToDatetime(tzinfo=UTC),
        )
        results = [result]
    else:
        results = client.record_outcomes(items)
    for item, result in zip(items, results, strict=True):
        assert result.status == RECORDED
        log.sent[item.idempotency_key] = item
        log.results[item.idempotency_key] = result


def _populate(client: Client, target: str, tenant: str, now: datetime) -> tuple[dict[str, str], Recorded]:
    """Offers, settings, single, bulk, concurrent and Decide-recorded outcomes; every one acknowledged."""
    client.update_tenant_settings(timezone="Europe/Paris")
    offers = {
        "learner": make_offer(
            client,
            qualification={"modelReference": "m-durable", "recency": 1},
            budget={"maxImpressions": 1000, "maxDailyBudget": 1000.0, "costPerAction": 0.25},
        ),
        "capped": make_offer(client, budget={"maxImpressions": 6}),
    }
    log = Recorded()
    learner, capped = offers["learner"], offers["capped"]
    # Single calls: three impressions today, one two days ago, two clicks that follow an impression.
    for n in range(3):
        _record(client, log, [outcome(f"single-{n}", learner, "impression", new_key(), occurred_at=now)])
    _record(client, log, [outcome("single-old", learner, "impression", new_key(), occurred_at=now - timedelta(days=2))])
    for n in range(2):
        _record(client, log, [outcome(f"single-{n}", learner, "click", new_key(), occurred_at=now)])
    # One bulk call: 40 impressions, 10 of them converted, and a dismiss.
    bulk = [outcome(f"bulk-{n}", learner, "impression", new_key(), occurred_at=now) for n in range(40)]
    bulk += [outcome(f"bulk-{n}", learner, "conversion", new_key(), occurred_at=now) for n in range(10)]
    bulk.append(outcome("bulk-0", learner, "dismiss", new_key(), occurred_at=now))
    _record(client, log, bulk)
    # Concurrent single calls from 10 clients, occurred_at left to the server (now).
    items = [outcome(f"rush-{n}", learner, "impression", new_key(), occurred_at=now) for n in range(20)]

    def send(item: decisions_pb2.Outcome) -> decisions_pb2.OutcomeResult:
        with Client(target, tenant=tenant) as own:
            return own.record_outcome(item.customer_id, item.offer_id, item.type, item.idempotency_key)

    with ThreadPoolExecutor(max_workers=10) as pool:
        for item, result in zip(items, pool.map(send, items), strict=True):
            assert result.status == RECORDED
            log.sent[item.idempotency_key] = item
            log.results[item.idempotency_key] = result
    # Impressions recorded by Decide itself; the last is acknowledged just before the crash.
    for n in range(6):
        answer = client.decide(f"decided-{n}", record_impressions=True, decision_time=now)
        assert capped in offer_ids(answer)
        for decided in answer.offers:
            log.decisions.append((answer.decision_id, f"decided-{n}", decided.offer_id))
    return offers, log


def _observe(client: Client, offers: dict[str, str], now: datetime) -> dict[str, object]:
    """Everything the restart must keep: counters, the adaptive estimate, recency and caps as Decide sees them."""
    learner, capped = offers["learner"], offers["capped"]
    seen = client.decide("single-0", decision_time=now, explain=True, limit=10)
    fresh = client.decide("nobody", decision_time=now, explain=True, limit=10)
    decided = returned(fresh, learner)
    return {
        "settings": client.get_tenant_settings().timezone,
        "learner": stats_dict(client.get_offer_stats(learner)),
        "capped": stats_dict(client.get_offer_stats(capped)),
        "learner-today": client.get_offer_stats(learner).today,
        "propensity": (decided.propensity, source_name(decided)),
        "recency": reason_of(seen, learner),
        "cap": reason_of(fresh, capped),
        "offers": [client.get_offer(i) for i in offers.values()],
    }


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_everything_acknowledged_survives_a_restart(db_path: Path, how: str) -> None:
    tenant = "t-" + uuid.uuid4().hex[:16]
    now = datetime.now(UTC)
    with ServerProcess(db_path) as process:
        with Client(process.target, tenant=tenant) as client:
            offers, log = _populate(client, process.target, tenant, now)
            before = _observe(client, offers, now)
        if how == "sigkill":
            process.kill()
        else:
            assert process.stop() == 0

        # What the first server saw, spelled out: the restart must find exactly this.
        trials = 3 + 1 + 40 + 20 + 6
        assert before["learner"] == {
            "lifetime_impressions": trials,
            "today_impressions": trials - 1,
            "today_spend": pytest.approx((trials - 1) * 0.25),
            "remaining_impressions": 1000 - trials,
            "remaining_daily_budget": pytest.approx(1000 - (trials - 1) * 0.25),
            "model_trials": trials,
            "model_positives": 12,
            "model_estimate": pytest.approx(13 / (trials + 2)),
        }
        assert before["propensity"] == (13 / (trials + 2), "ADAPTIVE_MODEL")
        assert before["recency"] == "RECENCY" and before["cap"] == "MAX_IMPRESSIONS_REACHED"
        assert before["settings"] == "Europe/Paris"

        process.start()
        with Client(process.target, tenant=tenant) as client:
            after = _observe(client, offers, now)
            assert after == before
            # Every acknowledged outcome is still there: its key is a duplicate with the first id and time.
            keys = list(log.sent)
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                again = client.record_outcomes([log.sent[k] for k in chunk])
                for key, result in zip(chunk, again, strict=True):
                    first = log.results[key]
                    assert (result.status, result.outcome_id, result.recorded_at) == (
                        DUPLICATE,
                        first.outcome_id,
                        first.recorded_at,
                    ), key
            # So is every impression Decide recorded.
            for decision_id, customer, offer_id in log.decisions:
                result = client.record_outcome(customer, offer_id, "impression", new_key(), decision_id=decision_id)
                assert result.status == DUPLICATE, (decision_id, offer_id)
            # Re-sending changed nothing.
            assert _observe(client, offers, now) == before


def test_a_crash_right_after_many_concurrent_acknowledgements_loses_none(db_path: Path) -> None:
    tenant = "t-" + uuid.uuid4().hex[:16]
    with ServerProcess(db_path) as process:
        with Client(process.target, tenant=tenant) as client:
            offer_id = make_offer(client, qualification={"modelReference": "m-crash"})
            keys = [new_key() for _ in range(300)]

            def send(batch: list[str]) -> list[decisions_pb2.OutcomeResult]:
                with Client(process.target, tenant=tenant) as own:
                    return [own.record_outcome(f"c-{k}", offer_id, "impression", k) for k in batch]

            with ThreadPoolExecutor(max_workers=30) as pool:
                acked = [r for rs in pool.map(send, [keys[i::30] for i in range(30)]) for r in rs]
        process.kill()  # at once: no grace, no flush
        assert all(r.status == RECORDED for r in acked)
        first_ids = {r.outcome_id for r in acked}

        process.start()
        with Client(process.target, tenant=tenant) as client:
            stats = client.get_offer_stats(offer_id)
            assert (stats.lifetime_impressions, stats.model_trials) == (300, 300)
            assert stats.model_estimate == 1 / 302
            again = client.record_outcomes([outcome(f"c-{k}", offer_id, "impression", k) for k in keys])
            assert {r.status for r in again} == {DUPLICATE}
            assert {r.outcome_id for r in again} == first_ids
