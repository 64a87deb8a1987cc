"""Budgets end to end: impression caps, daily spend in micro-units, tenant-local days, stats, dry runs, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from decide_helpers import (
    DECISION_TIME,
    ONE_US,
    decide,
    fates,
    local,
    make_offer,
    new_key,
    offer_ids,
    reason_of,
    record_impression,
    stats_dict,
)
from serverproc import ServerProcess

from arbiter.client import Client, NotFoundError, outcome
from arbiter.v1 import decisions_pb2


def _decide_and_record(client: Client, customers: list[str], **kwargs: Any) -> list[decisions_pb2.DecideResponse]:
    return [decide(client, customer, record_impressions=True, explain=True, **kwargs) for customer in customers]


# --------------------------------------------------------------------------
# maxImpressions
# --------------------------------------------------------------------------


def test_max_impressions_counts_impressions_recorded_by_decide(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 3})

    answers = _decide_and_record(client, [f"cust-{n}" for n in range(5)])

    assert [offer_ids(a) for a in answers] == [[offer_id]] * 3 + [[]] * 2
    for answer in answers[3:]:
        assert reason_of(answer, offer_id) == "MAX_IMPRESSIONS_REACHED"
        assert "3" in fates(answer)[offer_id].message
    stats = client.get_offer_stats(offer_id)
    assert stats.lifetime_impressions == 3
    assert stats.HasField("remaining_impressions") and stats.remaining_impressions == 0
    # The impressions happened at the decision time, a day that is not today.
    assert stats.today_impressions == 0


def test_max_impressions_counts_impressions_reported_through_record_outcome(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 2})
    for kind in ("click", "conversion", "dismiss", "not_interested", "complaint"):
        client.record_outcome("cust-9", offer_id, kind, new_key(), occurred_at=DECISION_TIME - timedelta(days=1))
    assert offer_ids(decide(client)) == [offer_id]  # only impressions count toward the cap

    record_impression(client, "cust-8", offer_id, DECISION_TIME - timedelta(days=40))
    assert offer_ids(decide(client)) == [offer_id]
    record_impression(client, "cust-9", offer_id, DECISION_TIME - timedelta(days=1))

    response = decide(client, explain=True)
    assert reason_of(response, offer_id) == "MAX_IMPRESSIONS_REACHED"
    assert client.get_offer_stats(offer_id).lifetime_impressions == 2


def test_max_impressions_zero_is_never_shown(client: Client) -> None:
    capped = make_offer(client, budget={"maxImpressions": 0})
    uncapped = make_offer(client, budget={"costPerAction": 1.0})

    response = decide(client, explain=True, record_impressions=True)

    assert offer_ids(response) == [uncapped]
    assert reason_of(response, capped) == "MAX_IMPRESSIONS_REACHED"
    stats = client.get_offer_stats(capped)
    assert stats.lifetime_impressions == 0 and stats.remaining_impressions == 0
    assert not client.get_offer_stats(uncapped).HasField("remaining_impressions")


def test_decide_records_nothing_without_record_impressions(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 1})

    answers = [decide(client, f"cust-{n}") for n in range(3)]

    assert all(offer_ids(a) == [offer_id] for a in answers)
    assert client.get_offer_stats(offer_id).lifetime_impressions == 0


# --------------------------------------------------------------------------
# Daily budget
# --------------------------------------------------------------------------


def test_daily_budget_of_3_at_cost_0_1_allows_exactly_30_impressions(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxDailyBudget": 3.0, "costPerAction": 0.1})

    answers = _decide_and_record(client, [f"cust-{n}" for n in range(32)])

    shown = [bool(offer_ids(a)) for a in answers]
    assert shown == [True] * 30 + [False] * 2
    last = answers[-1]
    assert reason_of(last, offer_id) == "DAILY_BUDGET_EXHAUSTED"
    message = fates(last)[offer_id].message
    assert "3" in message and "0.1" in message, message
    assert client.get_offer_stats(offer_id).lifetime_impressions == 30


# (maxDailyBudget, costPerAction, impressions a day); each is exact only in integer micro-units.
EXACT_BUDGETS = [
    (0.3, 0.1, 3),
    (1.0, 0.3, 3),
    (0.7, 0.07, 10),
    (1.1, 0.11, 10),
    (2500.0, 1.5, 1666),
    (0.000003, 0.000001, 3),
]


@pytest.mark.parametrize(("budget", "cost", "allowed"), EXACT_BUDGETS, ids=[f"{b}/{c}" for b, c, _ in EXACT_BUDGETS])
def test_daily_budget_is_counted_in_micro_units(client: Client, budget: float, cost: float, allowed: int) -> None:
    offer_id = make_offer(client, budget={"maxDailyBudget": budget, "costPerAction": cost})
    earlier = DECISION_TIME - timedelta(hours=1)
    items = [outcome(f"c-{n}", offer_id, "impression", new_key(), occurred_at=earlier) for n in range(allowed - 1)]
    for start in range(0, len(items), 1000):
        client.record_outcomes(items[start : start + 1000])

    last_one = decide(client, "last", record_impressions=True)
    over = decide(client, "over", record_impressions=True, explain=True)

    assert offer_ids(last_one) == [offer_id]
    assert reason_of(over, offer_id) == "DAILY_BUDGET_EXHAUSTED"


@pytest.mark.parametrize("zone", ["America/New_York", "UTC", "Asia/Tokyo", "Asia/Kolkata"])
def test_daily_budget_resets_at_the_tenants_midnight(client: Client, zone: str) -> None:
    client.update_tenant_settings(timezone=zone)
    offer_id = make_offer(client, budget={"maxDailyBudget": 0.3, "costPerAction": 0.1})
    day = date(2027, 3, 3)
    spent_at = local(day, "18:00", zone)
    # Reported impressions count on the tenant-local day they occurred: 23:30 the evening before is not
    # this day (in New York it is already this day in UTC), 00:30 is (in Tokyo it is still yesterday in UTC).
    for n in range(3):
        record_impression(client, f"yesterday-{n}", offer_id, local(day - timedelta(days=1), "23:30", zone))
    record_impression(client, "early", offer_id, local(day, "00:30", zone))
    answers = _decide_and_record(client, ["a", "b", "c", "d"], decision_time=spent_at)
    assert [bool(offer_ids(a)) for a in answers] == [True, True, False, False]

    midnight = local(day + timedelta(days=1), "00:00", zone)
    probes = [
        midnight - ONE_US,
        midnight,
        datetime(2027, 3, 4, tzinfo=UTC),  # UTC midnight: a reset only where the tenant is on UTC
        datetime(2027, 3, 4, tzinfo=UTC) - ONE_US,
        *(spent_at + timedelta(hours=h) for h in range(1, 8)),
    ]
    for at in probes:
        same_day = at.astimezone(ZoneInfo(zone)).date() == day
        response = decide(client, "probe", decision_time=at, explain=True)
        assert reason_of(response, offer_id) == ("DAILY_BUDGET_EXHAUSTED" if same_day else None), (zone, at)

    # The next local day has its own budget of three.
    next_day = _decide_and_record(client, ["e", "f", "g", "h"], decision_time=midnight + timedelta(hours=9))
    assert [bool(offer_ids(a)) for a in next_day] == [True, True, True, False]
    assert client.get_offer_stats(offer_id).lifetime_impressions == 9


def test_daily_spend_is_kept_when_many_other_days_are_decided_in_between(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxDailyBudget": 0.2, "costPerAction": 0.1})
    assert [bool(offer_ids(a)) for a in _decide_and_record(client, ["a", "b", "c"])] == [True, True, False]

    for n in range(1, 41):  # forty other days, each with a spend of its own
        other_day = DECISION_TIME + timedelta(days=n)
        assert offer_ids(decide(client, f"day-{n}", decision_time=other_day, record_impressions=True)) == [offer_id]

    assert reason_of(decide(client, "again", explain=True), offer_id) == "DAILY_BUDGET_EXHAUSTED"
    later = decide(client, "again", explain=True, decision_time=DECISION_TIME + timedelta(days=1))
    assert reason_of(later, offer_id) is None  # one of two spent
    assert client.get_offer_stats(offer_id).lifetime_impressions == 42


def test_remaining_budget_never_goes_below_zero(client: Client) -> None:
    # Mandatory offers skip the budget step, so their impressions can pass the caps.
    offer_id = make_offer(
        client, mandatory=True, budget={"maxImpressions": 1, "maxDailyBudget": 0.5, "costPerAction": 0.5}
    )
    now = datetime.now(UTC)
    for n in range(3):
        assert offer_ids(client.decide(f"c-{n}", record_impressions=True, decision_time=now)) == [offer_id]

    stats = client.get_offer_stats(offer_id)

    assert (stats.lifetime_impressions, stats.today_impressions, stats.today_spend) == (3, 3, 1.5)
    assert stats.remaining_impressions == 0 and stats.remaining_daily_budget == 0


def test_spend_accrues_per_impression_and_stats_report_it(client: Client) -> None:
    offer_id = make_offer(
        client,
        budget={"maxImpressions": 10, "maxDailyBudget": 1.0, "costPerAction": 0.25},
        qualification={"modelReference": "m-stats"},
    )
    now = datetime.now(UTC)
    for n in range(3):
        record_impression(client, f"cust-{n}", offer_id, now)
    record_impression(client, "cust-old", offer_id, now - timedelta(days=3))
    client.record_outcome("cust-0", offer_id, "click", new_key(), occurred_at=now)
    client.record_outcome("cust-1", offer_id, "conversion", new_key(), occurred_at=now)
    client.record_outcome("cust-2", offer_id, "dismiss", new_key(), occurred_at=now)

    stats = client.get_offer_stats(offer_id)

    assert stats.offer_id == offer_id
    assert stats.timezone == "UTC"
    assert stats.today in {now.date().isoformat(), datetime.now(UTC).date().isoformat()}
    assert stats_dict(stats) == {
        "lifetime_impressions": 4,
        "today_impressions": 3,
        "today_spend": pytest.approx(0.75),
        "remaining_impressions": 6,
        "remaining_daily_budget": pytest.approx(0.25),
        "model_trials": 4,
        "model_positives": 2,
        "model_estimate": pytest.approx(3 / 6),
    }
    assert stats.model_reference == "m-stats"

    # One more impression, recorded by Decide now, spends the last 0.25 of today's budget.
    shown = client.decide("cust-new", record_impressions=True, decision_time=datetime.now(UTC))
    assert offer_ids(shown) == [offer_id]
    after = client.get_offer_stats(offer_id)
    assert (after.lifetime_impressions, after.today_impressions) == (5, 4)
    assert after.today_spend == pytest.approx(1.0) and after.remaining_daily_budget == 0
    assert after.remaining_impressions == 5
    assert (
        reason_of(client.decide("cust-late", explain=True, decision_time=datetime.now(UTC)), offer_id)
        == "DAILY_BUDGET_EXHAUSTED"
    )


def test_stats_without_caps_or_model_leave_those_numbers_unset(client: Client) -> None:
    offer_id = make_offer(client)

    stats = client.get_offer_stats(offer_id)

    assert stats_dict(stats) == {
        "lifetime_impressions": 0,
        "today_impressions": 0,
        "today_spend": 0.0,
        "remaining_impressions": None,
        "remaining_daily_budget": None,
        "model_trials": 0,
        "model_positives": 0,
        "model_estimate": None,
    }
    assert stats.model_reference == ""
    with pytest.raises(NotFoundError) as missing:
        client.get_offer_stats("act_0000000000000000")
    assert missing.value.reason == "OFFER_NOT_FOUND"


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Paris"])
def test_stats_today_is_the_tenant_local_day(client: Client, zone: str) -> None:
    client.update_tenant_settings(timezone=zone)
    offer_id = make_offer(client, budget={"maxDailyBudget": 1.0, "costPerAction": 0.5})
    now = datetime.now(UTC)
    record_impression(client, "cust-1", offer_id, now)

    stats = client.get_offer_stats(offer_id)

    assert stats.timezone == zone
    today = {now.astimezone(ZoneInfo(zone)).date().isoformat(), datetime.now(ZoneInfo(zone)).date().isoformat()}
    assert stats.today in today
    assert (stats.today_impressions, stats.today_spend, stats.remaining_daily_budget) == (1, 0.5, 0.5)


# --------------------------------------------------------------------------
# dry_run
# --------------------------------------------------------------------------


def test_dry_run_with_record_impressions_records_nothing(client: Client) -> None:
    offer_id = make_offer(
        client,
        budget={"maxImpressions": 1, "maxDailyBudget": 0.5, "costPerAction": 0.5},
        qualification={"recency": 3, "modelReference": "m-dry"},
    )
    now = datetime.now(UTC)
    before = client.get_offer_stats(offer_id)

    dry = [
        client.decide("cust-1", dry_run=True, record_impressions=True, decision_time=now, explain=True)
        for _ in range(3)
    ]

    assert all(offer_ids(a) == [offer_id] for a in dry)
    assert client.get_offer_stats(offer_id) == before
    # Nothing was stored under the dry run's decision: reporting its impression is a first, not a duplicate.
    again = client.decide("cust-1", decision_time=now, explain=True)
    assert list(again.offers) == list(dry[0].offers) and list(again.candidates) == list(dry[0].candidates)
    reported = client.record_outcome("cust-1", offer_id, "impression", new_key(), decision_id=dry[0].decision_id)
    assert reported.status == decisions_pb2.OUTCOME_STATUS_RECORDED
    assert client.get_offer_stats(offer_id).lifetime_impressions == 1


def test_a_real_decision_after_dry_runs_still_has_the_whole_budget(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 2})

    for n in range(5):
        assert offer_ids(decide(client, f"dry-{n}", dry_run=True, record_impressions=True)) == [offer_id]
    real = _decide_and_record(client, ["a", "b", "c"])

    assert [bool(offer_ids(a)) for a in real] == [True, True, False]
    assert client.get_offer_stats(offer_id).lifetime_impressions == 2


# --------------------------------------------------------------------------
# Concurrency: 100 clients deciding and recording at once
# --------------------------------------------------------------------------

CLIENTS = 100
CAPS = {
    "max-impressions": ({"maxImpressions": 25}, "MAX_IMPRESSIONS_REACHED"),
    "daily-budget": ({"maxDailyBudget": 2.5, "costPerAction": 0.1}, "DAILY_BUDGET_EXHAUSTED"),
    "both": ({"maxImpressions": 25, "maxDailyBudget": 100.0, "costPerAction": 0.1}, "MAX_IMPRESSIONS_REACHED"),
}


@pytest.mark.parametrize(("budget", "reason"), list(CAPS.values()), ids=list(CAPS))
def test_concurrent_deciders_never_overshoot_a_cap(
    server: ServerProcess, client: Client, tenant: str, budget: dict[str, Any], reason: str
) -> None:
    offer_id = make_offer(client, budget=budget)  # cold: the first Decide of this tenant is part of the rush
    start = threading.Barrier(CLIENTS)

    def one(n: int) -> list[str]:
        with Client(server.target, tenant=tenant, timeout=30) as own:
            start.wait(timeout=30)
            return offer_ids(decide(own, f"rush-{n}", record_impressions=True))

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(one, range(CLIENTS)))

    assert sum(len(a) for a in answers) == 25
    assert all(a in ([], [offer_id]) for a in answers)
    assert client.get_offer_stats(offer_id).lifetime_impressions == 25
    assert reason_of(decide(client, "after", explain=True), offer_id) == reason
