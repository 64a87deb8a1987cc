"""Decide end to end: every funnel step on its own and in combination (decisions.proto, docs/rules.md "Decide")."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from decide_helpers import (
    DECISION_TIME,
    ONE_US,
    PRIORITY_SCORES,
    create_offer,
    decide,
    fates,
    local,
    make_offer,
    new_key,
    next_weekday,
    offer_body,
    offer_ids,
    reason_of,
    record_impression,
    returned,
    rfc3339,
    sort_key,
    source_name,
    weekday_number,
)
from offer_builders import ensure_hierarchy

from arbiter.client import Client, InvalidArgumentError
from arbiter.v1 import decisions_pb2

DECISION_ID = re.compile(r"dec_[0-9a-f]{16}")

# --------------------------------------------------------------------------
# Step 1: inventory — status and request filters
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mandatory", [False, True], ids=["optional", "mandatory"])
def test_only_active_offers_are_decided(client: Client, mandatory: bool) -> None:
    stays_active = make_offer(client, mandatory=mandatory)
    paused = make_offer(client, mandatory=mandatory)
    archived = make_offer(client, mandatory=mandatory)
    reactivated = make_offer(client, mandatory=mandatory)
    draft = client.create_offer(offer_body(status="draft", mandatory=mandatory)).id
    before = decide(client, limit=50)
    assert set(offer_ids(before)) == {stays_active, paused, archived, reactivated}

    client.set_offer_status(paused, "paused")
    client.set_offer_status(archived, "archived")
    client.set_offer_status(reactivated, "paused")
    client.set_offer_status(reactivated, "active")

    after = decide(client, limit=50, explain=True)
    assert set(offer_ids(after)) == {stays_active, reactivated}
    # Explain's candidates are the active offers only: draft, paused and archived are not even considered.
    assert set(fates(after)) == {stays_active, reactivated}
    assert draft not in offer_ids(after)


FILTER_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"A", "B", "C", "D", "M"}),
    ({"category_ids": ["cat_a"]}, {"A", "B"}),
    ({"category_ids": ["cat_a", "cat_b"]}, {"A", "B", "C", "M"}),
    ({"category_ids": ["cat_none"]}, set()),
    ({"sub_category_ids": ["sub_a1", "sub_b1"]}, {"A", "C"}),
    ({"sub_category_ids": ["sub_b2"]}, {"M"}),
    ({"tags": ["x"]}, {"A", "B", "M"}),
    ({"tags": ["x", "y"]}, {"A", "M"}),
    ({"tags": ["y", "x", "z"]}, {"M"}),
    ({"tags": ["x", "nope"]}, set()),
    ({"category_ids": ["cat_a"], "tags": ["y"]}, {"A"}),
    ({"category_ids": ["cat_b"], "sub_category_ids": ["sub_b1"]}, {"C"}),
    ({"category_ids": ["cat_a"], "sub_category_ids": ["sub_b1"]}, set()),
]


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES, ids=[str(f) for f, _ in FILTER_CASES])
def test_request_filters_categories_any_tags_all_mandatory_included(
    client: Client, filters: dict[str, Any], expected: set[str]
) -> None:
    ensure_hierarchy(client, "cat_a", "cat_b")  # with sub_a1, sub_a2 and sub_b1, sub_b2
    ids = {
        "A": make_offer(client, categoryId="cat_a", subCategoryId="sub_a1", tags=["x", "y"]),
        "B": make_offer(client, categoryId="cat_a", subCategoryId="sub_a2", tags=["x"]),
        "C": make_offer(client, categoryId="cat_b", subCategoryId="sub_b1", tags=["y"]),
        "D": make_offer(client),
        "M": make_offer(client, categoryId="cat_b", subCategoryId="sub_b2", tags=["z", "y", "x"], mandatory=True),
    }
    names = {offer_id: name for name, offer_id in ids.items()}

    response = decide(client, limit=50, explain=True, **filters)

    assert {names[i] for i in offer_ids(response)} == expected
    # Offers the filters exclude are not candidates at all.
    assert {names[i] for i in fates(response)} == expected
    if "M" in expected:
        assert response.offers[0].offer_id == ids["M"] and response.offers[0].mandatory


# --------------------------------------------------------------------------
# Mandatory offers
# --------------------------------------------------------------------------

# Conditions that drop an ordinary offer in qualification or budget, and the reason it gets.
BYPASSED: list[tuple[str, dict[str, Any], str]] = [
    ("segments", {"qualification": {"requiredSegments": ["vip", "eu"]}}, "MISSING_SEGMENTS"),
    ("threshold", {"qualification": {"propensityThreshold": 0.95}}, "BELOW_PROPENSITY_THRESHOLD"),
    ("recency", {"qualification": {"recency": 30}}, "RECENCY"),
    ("max-impressions-0", {"budget": {"maxImpressions": 0}}, "MAX_IMPRESSIONS_REACHED"),
    ("max-impressions-reached", {"budget": {"maxImpressions": 1}}, "MAX_IMPRESSIONS_REACHED"),
    ("daily-budget", {"budget": {"maxDailyBudget": 0.5, "costPerAction": 0.5}}, "DAILY_BUDGET_EXHAUSTED"),
    (
        "all-at-once",
        {
            "qualification": {"requiredSegments": ["vip"], "propensityThreshold": 0.95, "recency": 30},
            "budget": {"maxImpressions": 1, "maxDailyBudget": 0.5, "costPerAction": 0.5},
        },
        "MISSING_SEGMENTS",
    ),
]


@pytest.mark.parametrize(("config", "reason"), [(c, r) for _, c, r in BYPASSED], ids=[n for n, _, _ in BYPASSED])
def test_mandatory_offers_bypass_qualification_and_budget(client: Client, config: dict[str, Any], reason: str) -> None:
    ordinary = make_offer(client, **config)
    mandatory = make_offer(client, mandatory=True, priority="low", **config)
    best = make_offer(client, priority="critical")
    # One impression of each (an hour ago, by this customer) trips recency, the cap of 1 and the daily budget.
    for offer_id in (ordinary, mandatory):
        record_impression(client, "cust-1", offer_id, DECISION_TIME - timedelta(hours=1))

    response = decide(client, explain=True, offer_propensities={mandatory: 0.3, best: 1.0})

    assert reason_of(response, ordinary) == reason
    assert offer_ids(response) == [mandatory, best]
    first = response.offers[0]
    assert first.rank == 1 and first.mandatory
    assert first.score == 1.0
    # It reports the propensity it has, even though it does not score with it.
    assert first.propensity == pytest.approx(0.3)
    assert source_name(first) == "REQUEST_OFFER"
    assert first.priority_score == 25
    assert response.offers[1].score == pytest.approx(0.9) and response.offers[1].rank == 2
    assert fates(response)[mandatory].mandatory and not fates(response)[ordinary].mandatory


SCHEDULE_DROPS: list[tuple[str, dict[str, Any], str]] = [
    ("not-started", {"startDate": rfc3339(DECISION_TIME + timedelta(days=1))}, "SCHEDULE_NOT_STARTED"),
    ("ended", {"endDate": rfc3339(DECISION_TIME - timedelta(days=1))}, "SCHEDULE_ENDED"),
    ("day", {"daysOfWeek": [(weekday_number(DECISION_TIME.date()) + 1) % 7]}, "SCHEDULE_DAY"),
    ("time-window", {"timeWindow": {"start": "08:00", "end": "09:00"}}, "SCHEDULE_TIME_WINDOW"),
]


@pytest.mark.parametrize(
    ("schedule", "reason"), [(s, r) for _, s, r in SCHEDULE_DROPS], ids=[n for n, _, _ in SCHEDULE_DROPS]
)
def test_status_and_schedule_bind_mandatory_offers_too(client: Client, schedule: dict[str, Any], reason: str) -> None:
    ordinary = make_offer(client, schedule=schedule)
    mandatory = make_offer(client, schedule=schedule, mandatory=True)
    paused_mandatory = make_offer(client, mandatory=True)
    client.set_offer_status(paused_mandatory, "paused")
    plain = make_offer(client)

    response = decide(client, explain=True)

    assert offer_ids(response) == [plain]
    assert reason_of(response, ordinary) == reason
    assert reason_of(response, mandatory) == reason
    assert paused_mandatory not in fates(response)


def test_mandatory_offers_rank_first_ordered_by_priority_then_created_at_then_id(client: Client) -> None:
    top_optional = make_offer(client, priority="critical")
    created = [
        create_offer(client, mandatory=True, priority=priority)
        for priority in ("low", "critical", "medium", "critical", "high", "medium")
    ]
    expected = [o.id for o in sorted(created, key=lambda o: sort_key(o, 1.0))]
    by_id = {o.id: o for o in created}
    # Sanity: priority first, then creation order.
    assert [by_id[i].name for i in expected] == [created[i].name for i in (1, 3, 4, 2, 5, 0)]

    response = decide(client, limit=10, offer_propensities={top_optional: 1.0, created[0].id: 0.0})

    assert offer_ids(response) == [*expected, top_optional]
    assert [o.rank for o in response.offers] == list(range(1, 8))
    assert all(o.mandatory and o.score == 1.0 for o in response.offers[:6])
    # A mandatory offer with propensity 0 still scores 1.0, above an optional offer at 0.9.
    assert returned(response, created[0].id).propensity == 0.0
    assert response.offers[6].score == pytest.approx(0.9) and not response.offers[6].mandatory


def test_mandatory_offers_count_toward_the_limit(client: Client) -> None:
    optional = make_offer(client, priority="critical")
    mandatory = [make_offer(client, mandatory=True) for _ in range(3)]

    response = decide(client, limit=2, explain=True, offer_propensities={optional: 1.0})

    assert offer_ids(response) == mandatory[:2]
    assert reason_of(response, mandatory[2]) == "RANKED_BELOW_LIMIT"
    assert reason_of(response, optional) == "RANKED_BELOW_LIMIT"


# --------------------------------------------------------------------------
# Step 2: schedule
# --------------------------------------------------------------------------

START = datetime(2027, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
END = datetime(2027, 3, 5, 17, 45, 0, 654321, tzinfo=UTC)

DATE_EDGES = [
    ("exactly-start", START, None),
    ("1us-before-start", START - ONE_US, "SCHEDULE_NOT_STARTED"),
    ("long-before-start", START - timedelta(days=30), "SCHEDULE_NOT_STARTED"),
    ("between", START + (END - START) / 2, None),
    ("exactly-end", END, None),
    ("1us-after-end", END + ONE_US, "SCHEDULE_ENDED"),
    ("long-after-end", END + timedelta(days=30), "SCHEDULE_ENDED"),
]


@pytest.mark.parametrize(("at", "reason"), [(a, r) for _, a, r in DATE_EDGES], ids=[n for n, _, _ in DATE_EDGES])
def test_schedule_start_and_end_are_inclusive_instants(client: Client, at: datetime, reason: str | None) -> None:
    schedule = {"startDate": rfc3339(START), "endDate": rfc3339(END)}
    ordinary = make_offer(client, schedule=schedule)
    mandatory = make_offer(client, schedule=schedule, mandatory=True)

    response = decide(client, decision_time=at, explain=True)

    assert reason_of(response, ordinary) == reason
    assert reason_of(response, mandatory) == reason
    if reason == "SCHEDULE_NOT_STARTED":
        assert "2027-03-01" in fates(response)[ordinary].message
    if reason == "SCHEDULE_ENDED":
        assert "2027-03-05" in fates(response)[ordinary].message


def test_only_a_start_or_only_an_end_bounds_one_side(client: Client) -> None:
    only_start = make_offer(client, schedule={"startDate": rfc3339(START)})
    only_end = make_offer(client, schedule={"endDate": rfc3339(END)})

    early = decide(client, decision_time=START - timedelta(days=400), explain=True)
    late = decide(client, decision_time=END + timedelta(days=400), explain=True)

    assert reason_of(early, only_start) == "SCHEDULE_NOT_STARTED" and reason_of(early, only_end) is None
    assert reason_of(late, only_start) is None and reason_of(late, only_end) == "SCHEDULE_ENDED"


def test_days_of_week_count_from_sunday_as_zero(client: Client) -> None:
    sunday = next_weekday(0, DECISION_TIME.date())
    assert sunday.strftime("%A") == "Sunday"
    one_day = {number: make_offer(client, schedule={"daysOfWeek": [number]}) for number in range(7)}
    weekend = make_offer(client, schedule={"daysOfWeek": [6, 0]})
    every_day = make_offer(client, schedule={"daysOfWeek": []})

    for offset in range(7):
        day = sunday + timedelta(days=offset)
        response = decide(client, decision_time=local(day, "12:00"), explain=True, limit=50)
        expected = {one_day[offset], every_day} | ({weekend} if day.strftime("%A") in ("Saturday", "Sunday") else set())
        assert set(offer_ids(response)) == expected, day.strftime("%A")
        for number, offer_id in one_day.items():
            assert reason_of(response, offer_id) == (None if number == offset else "SCHEDULE_DAY")


FRIDAY = next_weekday(5, DECISION_TIME.date())
assert FRIDAY.strftime("%A") == "Friday"
FRI = datetime(FRIDAY.year, FRIDAY.month, FRIDAY.day, tzinfo=UTC)
EITHER = "DAY_OR_WINDOW"  # outside the window on a day that is not allowed: either reason is right

# (instant, Friday-only 22:00-02:00 offer, every-day 22:00-02:00 offer)
WRAP_CASES: list[tuple[str, datetime, str | None, str | None]] = [
    ("fri-21:59:59.999999", FRI + timedelta(hours=22) - ONE_US, "SCHEDULE_TIME_WINDOW", "SCHEDULE_TIME_WINDOW"),
    ("fri-22:00", FRI + timedelta(hours=22), None, None),
    ("fri-23:59:59.999999", FRI + timedelta(days=1) - ONE_US, None, None),
    ("sat-00:00", FRI + timedelta(days=1), None, None),
    ("sat-01:00", FRI + timedelta(days=1, hours=1), None, None),
    ("sat-01:59:59.999999", FRI + timedelta(days=1, hours=2) - ONE_US, None, None),
    ("sat-02:00", FRI + timedelta(days=1, hours=2), EITHER, "SCHEDULE_TIME_WINDOW"),
    ("sat-12:00", FRI + timedelta(days=1, hours=12), EITHER, "SCHEDULE_TIME_WINDOW"),
    ("sat-23:00", FRI + timedelta(days=1, hours=23), "SCHEDULE_DAY", None),
    ("fri-01:00-thursdays-window", FRI + timedelta(hours=1), "SCHEDULE_DAY", None),
    ("fri-02:00", FRI + timedelta(hours=2), "SCHEDULE_TIME_WINDOW", "SCHEDULE_TIME_WINDOW"),
]


@pytest.mark.parametrize(
    ("at", "friday_only", "every_day"), [c[1:] for c in WRAP_CASES], ids=[c[0] for c in WRAP_CASES]
)
def test_a_window_that_wraps_midnight_belongs_to_the_day_it_opens(
    client: Client, at: datetime, friday_only: str | None, every_day: str | None
) -> None:
    window = {"start": "22:00", "end": "02:00"}
    friday = make_offer(client, schedule={"daysOfWeek": [5], "timeWindow": window})
    daily = make_offer(client, schedule={"timeWindow": window})

    response = decide(client, decision_time=at, explain=True)

    if friday_only == EITHER:
        assert reason_of(response, friday) in ("SCHEDULE_DAY", "SCHEDULE_TIME_WINDOW")
    else:
        assert reason_of(response, friday) == friday_only
    assert reason_of(response, daily) == every_day


DAY = DECISION_TIME.date()
WINDOW_CASES: list[tuple[str, dict[str, str], datetime, bool]] = [
    ("start-inclusive", {"start": "09:00", "end": "17:00"}, local(DAY, "09:00"), True),
    ("1us-before-start", {"start": "09:00", "end": "17:00"}, local(DAY, "09:00") - ONE_US, False),
    ("1us-before-end", {"start": "09:00", "end": "17:00"}, local(DAY, "17:00") - ONE_US, True),
    ("end-exclusive", {"start": "09:00", "end": "17:00"}, local(DAY, "17:00"), False),
    ("minute-window-open", {"start": "12:00", "end": "12:01"}, local(DAY, "12:00") + timedelta(seconds=59), True),
    ("minute-window-closed", {"start": "12:00", "end": "12:01"}, local(DAY, "12:01"), False),
    (
        "ends-at-midnight-open",
        {"start": "20:00", "end": "00:00"},
        local(DAY, "00:00") + timedelta(days=1) - ONE_US,
        True,
    ),
    ("ends-at-midnight-closed", {"start": "20:00", "end": "00:00"}, local(DAY, "00:00"), False),
    ("starts-at-midnight", {"start": "00:00", "end": "06:00"}, local(DAY, "00:00"), True),
]


@pytest.mark.parametrize(("window", "at", "inside"), [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES])
def test_time_window_start_inclusive_end_exclusive(
    client: Client, window: dict[str, str], at: datetime, inside: bool
) -> None:
    offer_id = make_offer(client, schedule={"timeWindow": window})

    response = decide(client, decision_time=at, explain=True)

    assert reason_of(response, offer_id) == (None if inside else "SCHEDULE_TIME_WINDOW")
    if not inside:
        message = fates(response)[offer_id].message
        assert window["start"] in message and window["end"] in message


WEDNESDAY = DECISION_TIME.date()
assert WEDNESDAY.strftime("%A") == "Wednesday"
THURSDAY_03_UTC = local(WEDNESDAY + timedelta(days=1), "03:00")  # Wednesday 22:00 in New York (EST)
WEDNESDAY_04_UTC = local(WEDNESDAY, "04:00")  # Tuesday 23:00 in New York


@pytest.mark.parametrize(
    ("at", "new_york", "utc"),
    [(THURSDAY_03_UTC, None, "SCHEDULE_DAY"), (WEDNESDAY_04_UTC, "SCHEDULE_DAY", None)],
    ids=["wed-evening-in-new-york", "tue-night-in-new-york"],
)
def test_days_are_read_in_the_offers_timezone(
    client: Client, at: datetime, new_york: str | None, utc: str | None
) -> None:
    wednesdays = {"daysOfWeek": [3]}
    in_new_york = make_offer(client, schedule={**wednesdays, "timezone": "America/New_York"})
    in_utc = make_offer(client, schedule={**wednesdays, "timezone": "UTC"})
    no_zone = make_offer(client, schedule=wednesdays)

    response = decide(client, decision_time=at, explain=True)

    assert reason_of(response, in_new_york) == new_york
    assert reason_of(response, in_utc) == utc
    assert reason_of(response, no_zone) == utc  # the tenant's zone: UTC by default


@pytest.mark.parametrize(
    ("at", "new_york_inside", "utc_inside"),
    [
        (local(WEDNESDAY, "05:00"), True, False),  # 00:00 EST
        (local(WEDNESDAY, "05:30"), True, False),
        (local(WEDNESDAY, "06:00"), False, False),  # 01:00 EST
        (local(WEDNESDAY, "05:00") - ONE_US, False, False),  # 23:59:59.999999 EST the day before
        (local(WEDNESDAY, "00:30"), False, True),  # 19:30 EST the day before
    ],
    ids=["00:00-est", "00:30-est", "01:00-est", "1us-before-midnight-est", "00:30-utc"],
)
def test_time_windows_are_read_in_the_offers_timezone(
    client: Client, at: datetime, new_york_inside: bool, utc_inside: bool
) -> None:
    window = {"start": "00:00", "end": "01:00"}
    new_york = make_offer(client, schedule={"timeWindow": window, "timezone": "America/New_York"})
    utc = make_offer(client, schedule={"timeWindow": window})

    response = decide(client, decision_time=at, explain=True)

    assert reason_of(response, new_york) == (None if new_york_inside else "SCHEDULE_TIME_WINDOW")
    assert reason_of(response, utc) == (None if utc_inside else "SCHEDULE_TIME_WINDOW")


def test_schedules_without_a_zone_use_the_tenants_timezone(client: Client) -> None:
    wednesdays = {"daysOfWeek": [3]}
    no_zone = make_offer(client, schedule=wednesdays)
    in_utc = make_offer(client, schedule={**wednesdays, "timezone": "UTC"})
    in_tokyo = make_offer(client, schedule={"daysOfWeek": [4], "timezone": "Asia/Tokyo"})  # Thursday 12:00 there

    before = decide(client, decision_time=THURSDAY_03_UTC, explain=True)
    assert reason_of(before, no_zone) == "SCHEDULE_DAY"  # Thursday in UTC

    client.update_tenant_settings(timezone="America/New_York")
    in_new_york = decide(client, decision_time=THURSDAY_03_UTC, explain=True)

    client.update_tenant_settings(timezone="UTC")
    back = decide(client, decision_time=THURSDAY_03_UTC, explain=True)

    assert reason_of(in_new_york, no_zone) is None  # Wednesday 22:00 in New York
    assert reason_of(in_new_york, in_utc) == "SCHEDULE_DAY"  # its own zone wins over the tenant's
    assert reason_of(back, no_zone) == "SCHEDULE_DAY"
    for response in (before, in_new_york, back):
        assert reason_of(response, in_tokyo) is None


LONDON = "Europe/London"
SPRING = date(2026, 3, 29)  # clocks go 01:00 GMT -> 02:00 BST
AUTUMN = date(2026, 10, 25)  # clocks go 02:00 BST -> 01:00 GMT
DST_CASES: list[tuple[str, dict[str, Any], datetime, str | None]] = [
    (
        "1-2-day-before-spring",
        {"timeWindow": {"start": "01:00", "end": "02:00"}},
        local(SPRING - timedelta(days=1), "01:30", LONDON),
        None,
    ),
    (
        "1-2-day-after-spring",
        {"timeWindow": {"start": "01:00", "end": "02:00"}},
        local(SPRING + timedelta(days=1), "01:30", LONDON),
        None,
    ),
    (
        "9-10-gmt-09:00",
        {"timeWindow": {"start": "09:00", "end": "10:00"}},
        datetime(2026, 3, 28, 9, 0, tzinfo=UTC),
        None,
    ),
    (
        "9-10-gmt-08:30",
        {"timeWindow": {"start": "09:00", "end": "10:00"}},
        datetime(2026, 3, 28, 8, 30, tzinfo=UTC),
        "SCHEDULE_TIME_WINDOW",
    ),
    (
        "9-10-bst-08:00Z",
        {"timeWindow": {"start": "09:00", "end": "10:00"}},
        datetime(2026, 3, 29, 8, 0, tzinfo=UTC),
        None,
    ),
    (
        "9-10-bst-09:00Z",
        {"timeWindow": {"start": "09:00", "end": "10:00"}},
        datetime(2026, 3, 29, 9, 0, tzinfo=UTC),
        "SCHEDULE_TIME_WINDOW",
    ),
    (
        "autumn-first-01:30-bst",
        {"timeWindow": {"start": "01:00", "end": "02:00"}},
        local(AUTUMN, "01:30", LONDON, fold=0),  # 00:30Z
        None,
    ),
    (
        "autumn-second-01:30-gmt",
        {"timeWindow": {"start": "01:00", "end": "02:00"}},
        local(AUTUMN, "01:30", LONDON, fold=1),  # 01:30Z
        None,
    ),
    (
        "autumn-02:00-gmt",
        {"timeWindow": {"start": "01:00", "end": "02:00"}},
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
        "SCHEDULE_TIME_WINDOW",
    ),
    ("sunday-starts-at-23:00Z-in-bst", {"daysOfWeek": [0]}, datetime(2026, 10, 24, 23, 30, tzinfo=UTC), None),
    ("saturday-23:30-gmt", {"daysOfWeek": [0]}, datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "SCHEDULE_DAY"),
    ("sunday-bst-after-spring", {"daysOfWeek": [0]}, datetime(2026, 3, 29, 22, 59, tzinfo=UTC), None),
    ("monday-00:00-bst", {"daysOfWeek": [0]}, datetime(2026, 3, 29, 23, 0, tzinfo=UTC), "SCHEDULE_DAY"),
]


@pytest.mark.parametrize(("schedule", "at", "reason"), [c[1:] for c in DST_CASES], ids=[c[0] for c in DST_CASES])
def test_schedules_follow_local_time_across_dst_changes(
    client: Client, schedule: dict[str, Any], at: datetime, reason: str | None
) -> None:
    offer_id = make_offer(client, schedule={**schedule, "timezone": LONDON})

    response = decide(client, decision_time=at, explain=True)

    assert reason_of(response, offer_id) == reason


def test_a_window_that_does_not_exist_on_the_spring_dst_day_never_opens(client: Client) -> None:
    skipped = make_offer(client, schedule={"timeWindow": {"start": "01:00", "end": "02:00"}, "timezone": LONDON})
    tenant_zone = make_offer(client, schedule={"timeWindow": {"start": "01:00", "end": "02:00"}})
    client.update_tenant_settings(timezone=LONDON)
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 23:00 GMT on the 28th

    selected = []
    for step in range(26 * 4):  # every 15 minutes, 23:00Z on the 28th to 00:45Z on the 30th
        at = start + timedelta(minutes=15 * step)
        response = decide(client, decision_time=at, explain=True)
        assert reason_of(response, skipped) == reason_of(response, tenant_zone)
        if reason_of(response, skipped) is None:
            selected.append(at)

    # Only the 01:00-02:00 of the 30th (BST, 00:00Z-01:00Z) is inside; none of the 29th is.
    assert selected == [datetime(2026, 3, 30, 0, 0, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(4)]


# --------------------------------------------------------------------------
# Step 4: qualification — recency, segments, propensity threshold
# --------------------------------------------------------------------------

RECENCY_CASES: list[tuple[str, str, timedelta, str | None]] = [
    ("exactly-7-days", "impression", timedelta(days=7), None),
    ("1us-less-than-7-days", "impression", timedelta(days=7) - ONE_US, "RECENCY"),
    ("an-hour", "impression", timedelta(hours=1), "RECENCY"),
    ("at-decision-time", "impression", timedelta(0), "RECENCY"),
    ("8-days", "impression", timedelta(days=8), None),
    ("a-click-is-not-an-impression", "click", timedelta(hours=1), None),
    ("a-dismiss-is-not-an-impression", "dismiss", timedelta(hours=1), None),
]


@pytest.mark.parametrize(("kind", "age", "reason"), [c[1:] for c in RECENCY_CASES], ids=[c[0] for c in RECENCY_CASES])
def test_recency_in_days_since_the_last_impression(
    client: Client, kind: str, age: timedelta, reason: str | None
) -> None:
    offer_id = make_offer(client, qualification={"recency": 7})
    no_recency = make_offer(client)
    for other in (offer_id, no_recency):
        result = client.record_outcome("cust-1", other, kind, new_key(), occurred_at=DECISION_TIME - age)
        assert result.status == decisions_pb2.OUTCOME_STATUS_RECORDED

    response = decide(client, explain=True)

    assert reason_of(response, offer_id) == reason
    assert reason_of(response, no_recency) is None
    if reason:
        message = fates(response)[offer_id].message
        assert "7 days" in message, message
    # Recency is per customer: someone else still gets the offer.
    assert reason_of(decide(client, "cust-2", explain=True), offer_id) is None


def test_recency_zero_imposes_nothing(client: Client) -> None:
    offer_id = make_offer(client, qualification={"recency": 0})
    record_impression(client, "cust-1", offer_id, DECISION_TIME)

    assert offer_ids(decide(client)) == [offer_id]


def test_recency_uses_the_latest_impression_before_the_decision_time(client: Client) -> None:
    offer_id = make_offer(client, qualification={"recency": 2})
    record_impression(client, "cust-1", offer_id, DECISION_TIME - timedelta(days=10))
    record_impression(client, "cust-1", offer_id, DECISION_TIME - timedelta(days=1))

    assert reason_of(decide(client, explain=True), offer_id) == "RECENCY"
    # Decided two days later, the latest impression is exactly two days old: allowed again.
    later = decide(client, explain=True, decision_time=DECISION_TIME + timedelta(days=1))
    assert reason_of(later, offer_id) is None
    # Decided before the impressions happened, none of them counts.
    assert reason_of(decide(client, explain=True, decision_time=DECISION_TIME - timedelta(days=20)), offer_id) is None


SEGMENT_CASES: list[tuple[list[str], str | None, list[str]]] = [
    ([], "MISSING_SEGMENTS", ["gold", "eu"]),
    (["gold"], "MISSING_SEGMENTS", ["eu"]),
    (["eu"], "MISSING_SEGMENTS", ["gold"]),
    (["gold", "eu"], None, []),
    (["eu", "extra", "gold"], None, []),
    (["Gold", "EU"], "MISSING_SEGMENTS", ["gold", "eu"]),
]


@pytest.mark.parametrize(("segments", "reason", "missing"), SEGMENT_CASES, ids=[str(c[0]) for c in SEGMENT_CASES])
def test_every_required_segment_is_needed(
    client: Client, segments: list[str], reason: str | None, missing: list[str]
) -> None:
    offer_id = make_offer(client, qualification={"requiredSegments": ["gold", "eu"]})
    open_offer = make_offer(client)

    response = decide(client, segments=segments, explain=True)

    assert reason_of(response, offer_id) == reason
    assert reason_of(response, open_offer) is None
    for segment in missing:
        assert segment in fates(response)[offer_id].message


# (id, threshold, modelReference, offer propensity, model propensities, train adaptive, propensity, source)
PROPENSITY_CASES: list[tuple[str, float, str, float | None, dict[str, float], bool, float, str]] = [
    ("default-below", 0.6, "", None, {}, False, 0.5, "DEFAULT"),
    ("default-equal-passes", 0.5, "", None, {}, False, 0.5, "DEFAULT"),
    ("default-ignores-model-scores", 0.6, "", None, {"m1": 0.9}, False, 0.5, "DEFAULT"),
    ("adaptive-untrained", 0.6, "m1", None, {}, False, 0.5, "ADAPTIVE_MODEL"),
    ("adaptive-trained", 0.6, "m1", None, {}, True, 0.8, "ADAPTIVE_MODEL"),
    ("adaptive-other-models-score-ignored", 0.6, "m1", None, {"m2": 0.9}, False, 0.5, "ADAPTIVE_MODEL"),
    ("model-beats-adaptive", 0.6, "m1", None, {"m1": 0.3}, True, 0.3, "REQUEST_MODEL"),
    ("model-passes", 0.6, "m1", None, {"m1": 0.7}, False, 0.7, "REQUEST_MODEL"),
    ("model-equal-passes", 0.7, "m1", None, {"m1": 0.7}, False, 0.7, "REQUEST_MODEL"),
    ("offer-beats-model", 0.6, "m1", 0.2, {"m1": 0.9}, True, 0.2, "REQUEST_OFFER"),
    ("offer-beats-everything-up", 0.6, "m1", 0.65, {"m1": 0.1}, True, 0.65, "REQUEST_OFFER"),
    ("offer-without-model", 0.41, "", 0.41, {}, False, 0.41, "REQUEST_OFFER"),
    ("zero-threshold-zero-propensity", 0.0, "m1", 0.0, {}, False, 0.0, "REQUEST_OFFER"),
    ("threshold-one", 1.0, "m1", None, {"m1": 0.999}, False, 0.999, "REQUEST_MODEL"),
]


@pytest.mark.parametrize(
    ("threshold", "model", "offer_score", "model_scores", "train", "propensity", "source"),
    [c[1:] for c in PROPENSITY_CASES],
    ids=[c[0] for c in PROPENSITY_CASES],
)
def test_propensity_threshold_with_each_propensity_source(
    client: Client,
    threshold: float,
    model: str,
    offer_score: float | None,
    model_scores: dict[str, float],
    train: bool,
    propensity: float,
    source: str,
) -> None:
    offer_id = make_offer(
        client, priority="high", qualification={"propensityThreshold": threshold, "modelReference": model}
    )
    if train:  # three impressions, each followed by a click: (3 + 1) / (3 + 2) = 0.8
        for n in range(3):
            record_impression(client, f"trainer-{n}", offer_id, DECISION_TIME - timedelta(days=1))
            client.record_outcome(
                f"trainer-{n}", offer_id, "click", new_key(), occurred_at=DECISION_TIME - timedelta(hours=20)
            )
    offer_scores = {offer_id: offer_score} if offer_score is not None else {}

    response = decide(client, explain=True, offer_propensities=offer_scores, model_propensities=model_scores)

    fate = fates(response)[offer_id]
    assert fate.propensity == pytest.approx(propensity)
    if propensity >= threshold:
        decided = returned(response, offer_id)
        assert decided.propensity == pytest.approx(propensity)
        assert source_name(decided) == source
        assert decided.score == pytest.approx(propensity * 70 / 100)
    else:
        assert reason_of(response, offer_id) == "BELOW_PROPENSITY_THRESHOLD"
        assert f"{propensity:g}" in fate.message and f"{threshold:g}" in fate.message, fate.message
        assert fate.message.index(f"{propensity:g}") < fate.message.index(f"{threshold:g}")


FIRST_REASON_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "schedule-before-qualification-and-budget",
        {
            "schedule": {"endDate": rfc3339(DECISION_TIME - timedelta(days=1))},
            "qualification": {"requiredSegments": ["vip"], "propensityThreshold": 0.9, "recency": 5},
            "budget": {"maxImpressions": 0},
        },
        "SCHEDULE_ENDED",
    ),
    (
        "segments-before-threshold",
        {
            "qualification": {"requiredSegments": ["vip"], "propensityThreshold": 0.9, "recency": 5},
            "budget": {"maxImpressions": 0},
        },
        "MISSING_SEGMENTS",
    ),
    (
        "threshold-before-recency",
        {"qualification": {"propensityThreshold": 0.9, "recency": 5}, "budget": {"maxImpressions": 0}},
        "BELOW_PROPENSITY_THRESHOLD",
    ),
    ("recency-before-budget", {"qualification": {"recency": 5}, "budget": {"maxImpressions": 0}}, "RECENCY"),
    (
        "impressions-cap-and-daily-budget",
        {"budget": {"maxImpressions": 1, "maxDailyBudget": 0.1, "costPerAction": 0.1}},
        "MAX_IMPRESSIONS_REACHED",
    ),
]


@pytest.mark.parametrize(
    ("config", "reason"), [c[1:] for c in FIRST_REASON_CASES], ids=[c[0] for c in FIRST_REASON_CASES]
)
def test_an_offer_failing_several_steps_reports_the_first(client: Client, config: dict[str, Any], reason: str) -> None:
    offer_id = make_offer(client, **config)
    record_impression(client, "cust-1", offer_id, DECISION_TIME - timedelta(hours=1))

    response = decide(client, explain=True)

    assert reason_of(response, offer_id) == reason


# --------------------------------------------------------------------------
# Steps 7-9: score, rank, limit, output
# --------------------------------------------------------------------------


def test_score_is_propensity_times_priority_and_ties_break_by_priority_then_age(client: Client) -> None:
    spec = [  # name, priority, propensity
        ("a", "critical", 0.5),  # 0.45
        ("b", "high", 0.9),  # 0.63
        ("c", "medium", 0.7),  # 0.35
        ("d", "high", 0.5),  # 0.35: ties with c, higher priority first
        ("e", "low", 1.0),  # 0.25
        ("f", "medium", 0.5),  # 0.25: ties with e, higher priority first
        ("g", "medium", 0.5),  # 0.25: ties with f on priority too, created later
        ("h", "medium", 0.5),
        ("i", "medium", 0.5),
        ("j", "medium", 0.5),
    ]
    offers = {name: create_offer(client, priority=priority) for name, priority, _ in spec}
    propensity = {offers[name].id: p for name, _, p in spec}
    expected_score = {offers[name].id: p * PRIORITY_SCORES[priority] / 100 for name, priority, p in spec}
    assert expected_score[offers["c"].id] == expected_score[offers["d"].id]
    assert len({expected_score[offers[n].id] for n in "efghij"}) == 1
    expected = sorted(offers.values(), key=lambda o: sort_key(o, expected_score[o.id]))
    assert [o.name for o in expected] == [offers[n].name for n in "badcfghije"]

    response = decide(client, limit=10, offer_propensities=propensity)

    assert offer_ids(response) == [o.id for o in expected]
    for rank, decided in enumerate(response.offers, start=1):
        assert decided.rank == rank
        assert decided.score == expected_score[decided.offer_id]
        assert decided.propensity == propensity[decided.offer_id]
        assert not decided.mandatory
    assert [o.priority_score for o in response.offers] == [70, 90, 70, 50, 50, 50, 50, 50, 50, 25]


def test_output_carries_the_offers_fields(client: Client) -> None:
    ensure_hierarchy(client, "cat_cards")  # with sub_gold
    offer = create_offer(
        client,
        shortDesc="Three times the points",
        categoryId="cat_cards",
        subCategoryId="sub_gold",
        tags=["rewards", "q1"],
        priority="critical",
    )

    (decided,) = decide(client).offers

    assert (decided.offer_id, decided.name, decided.short_desc) == (offer.id, offer.name, "Three times the points")
    assert (decided.category_id, decided.sub_category_id) == ("cat_cards", "sub_gold")
    assert list(decided.tags) == ["rewards", "q1"]
    assert decided.priority_score == 90 and decided.rank == 1
    assert decided.propensity == 0.5 and source_name(decided) == "DEFAULT"
    assert decided.score == 0.5 * 90 / 100


def test_limit_defaults_to_5_and_goes_up_to_50(client: Client) -> None:
    ids = [make_offer(client) for _ in range(52)]  # equal scores: ranked by creation

    for limit, count in ((0, 5), (1, 1), (5, 5), (7, 7), (50, 50)):
        response = decide(client, limit=limit, explain=True)
        assert offer_ids(response) == ids[:count], limit
        assert sum(c.selected for c in response.candidates) == count
        below = [c for c in response.candidates if not c.selected]
        assert len(below) == 52 - count
        assert {c.reason for c in below} == {decisions_pb2.DROP_REASON_RANKED_BELOW_LIMIT}
        assert all(re.search(rf"\b{count}\b", c.message) for c in below), below[0].message
    assert len(decide(client).offers) == 5


@pytest.mark.parametrize("limit", [51, -1, 1000, -(2**31)])
def test_limit_out_of_range_is_invalid(client: Client, limit: int) -> None:
    make_offer(client)

    with pytest.raises(InvalidArgumentError) as info:
        decide(client, limit=limit)

    assert info.value.fields == ["limit"]


@pytest.mark.parametrize("customer", ["", "   ", "c" * 257])
def test_customer_id_is_required(client: Client, customer: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        decide(client, customer)
    assert info.value.fields == ["customerId"]

    with pytest.raises(InvalidArgumentError) as both:
        decide(client, customer, limit=51)
    assert set(both.value.fields) == {"customerId", "limit"}


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"offer_propensities": {"act_0000000000000001": 1.5}}, "offerPropensities"),
        ({"offer_propensities": {"act_0000000000000001": -0.1}}, "offerPropensities"),
        ({"model_propensities": {"m1": 1.01}}, "modelPropensities"),
        ({"model_propensities": {"m1": float("nan")}}, "modelPropensities"),
    ],
    ids=["offer-above-1", "offer-below-0", "model-above-1", "model-nan"],
)
def test_request_propensities_must_be_between_0_and_1(
    client: Client, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        decide(client, **request_fields)

    assert len(info.value.fields) == 1 and info.value.fields[0].startswith(field), info.value.fields


def test_without_explain_the_answer_is_the_top_of_the_explained_ranking(client: Client) -> None:
    priorities = ["low", "medium", "high", "critical"]
    ids = [make_offer(client, priority=priorities[n % 4]) for n in range(60)]
    mandatory = make_offer(client, mandatory=True, priority="low")
    propensities = {offer_id: round((n * 37 % 11) / 10, 1) for n, offer_id in enumerate(ids)}

    for limit in (1, 3, 5, 14, 50):
        explained = decide(client, limit=limit, explain=True, offer_propensities=propensities)
        plain = decide(client, limit=limit, offer_propensities=propensities)
        assert list(plain.offers) == list(explained.offers), limit
        assert offer_ids(plain)[0] == mandatory
        ranked = [c.offer_id for c in explained.candidates]
        assert offer_ids(plain) == ranked[:limit]
        scores = [o.score for o in plain.offers[1:]]
        assert scores == sorted(scores, reverse=True)


def test_explain_gives_every_candidate_its_fate_with_numbers(client: Client) -> None:
    tag = {"tags": ["shown"]}
    o = {
        "best": make_offer(client, priority="critical", **tag),
        "second": make_offer(client, priority="high", **tag),
        "below_limit": make_offer(client, **tag),
        "not_started": make_offer(client, schedule={"startDate": "2027-03-10T00:00:00Z"}, **tag),
        "ended": make_offer(client, schedule={"endDate": "2027-02-01T00:00:00Z"}, **tag),
        "day": make_offer(client, schedule={"daysOfWeek": [0, 6]}, **tag),
        "window": make_offer(client, schedule={"timeWindow": {"start": "08:00", "end": "09:00"}}, **tag),
        "segments": make_offer(client, qualification={"requiredSegments": ["gold", "platinum"]}, **tag),
        "threshold": make_offer(client, qualification={"propensityThreshold": 0.65}, **tag),
        "recency": make_offer(client, qualification={"recency": 3}, **tag),
        "max_impressions": make_offer(client, budget={"maxImpressions": 2}, **tag),
        "daily_budget": make_offer(client, budget={"maxDailyBudget": 0.25, "costPerAction": 0.1}, **tag),
    }
    untagged = make_offer(client)
    paused = make_offer(client, **tag)
    client.set_offer_status(paused, "paused")
    record_impression(client, "cust-1", o["recency"], DECISION_TIME - timedelta(hours=12))
    for n in range(2):
        record_impression(client, f"other-{n}", o["max_impressions"], DECISION_TIME - timedelta(hours=1))
        record_impression(client, f"other-{n}", o["daily_budget"], DECISION_TIME - timedelta(hours=1))

    response = decide(
        client, segments=["gold"], tags=["shown"], limit=2, explain=True, offer_propensities={o["threshold"]: 0.41}
    )

    names = {offer_id: name for name, offer_id in o.items()}
    assert set(fates(response)) == set(names)  # untagged and paused offers are no candidates
    assert untagged not in fates(response) and paused not in fates(response)
    assert {names[i]: reason_of(response, i) for i in names} == {
        "best": None,
        "second": None,
        "below_limit": "RANKED_BELOW_LIMIT",
        "not_started": "SCHEDULE_NOT_STARTED",
        "ended": "SCHEDULE_ENDED",
        "day": "SCHEDULE_DAY",
        "window": "SCHEDULE_TIME_WINDOW",
        "segments": "MISSING_SEGMENTS",
        "threshold": "BELOW_PROPENSITY_THRESHOLD",
        "recency": "RECENCY",
        "max_impressions": "MAX_IMPRESSIONS_REACHED",
        "daily_budget": "DAILY_BUDGET_EXHAUSTED",
    }
    message = {names[c.offer_id]: c.message for c in response.candidates}
    assert all(message[n] == "" for n in ("best", "second"))
    assert "2" in message["below_limit"]
    assert "2027-03-10" in message["not_started"]
    assert "2027-02-01" in message["ended"]
    assert "12:00" in message["window"] and "08:00" in message["window"]
    assert "platinum" in message["segments"] and "gold" not in message["segments"]
    assert "0.41" in message["threshold"] and "0.65" in message["threshold"]
    assert "12" in message["recency"] and "3" in message["recency"]
    assert "2" in message["max_impressions"]
    assert all(n in message["daily_budget"] for n in ("0.2", "0.1", "0.25")), message["daily_budget"]
    # Selected first in rank order, then eligible ones cut by the limit, then the dropped ones.
    order = [names[c.offer_id] for c in response.candidates]
    assert order[:3] == ["best", "second", "below_limit"]
    assert [c.score for c in response.candidates[:3]] == [0.45, 0.35, 0.25]
    assert all(c.score == 0 for c in response.candidates[3:])
    assert fates(response)[o["threshold"]].propensity == pytest.approx(0.41)
    # Candidates dropped before qualification carry no propensity; later ones carry theirs.
    for name in ("not_started", "ended", "day", "window"):
        assert fates(response)[o[name]].propensity == 0
    for name in ("segments", "recency", "max_impressions", "daily_budget"):
        assert fates(response)[o[name]].propensity == 0.5


def test_without_explain_there_are_no_candidates(client: Client) -> None:
    make_offer(client)
    make_offer(client, qualification={"requiredSegments": ["vip"]})

    response = decide(client)

    assert len(response.offers) == 1 and len(response.candidates) == 0


def test_the_same_request_gives_the_same_answer(client: Client) -> None:
    for priority in ("low", "medium", "medium", "high", "critical"):
        make_offer(client, priority=priority)
    make_offer(client, mandatory=True, priority="low")
    make_offer(client, mandatory=True, priority="low")
    make_offer(client, qualification={"propensityThreshold": 0.7, "modelReference": "m1"})
    make_offer(client, qualification={"modelReference": "m1"})
    make_offer(client, schedule={"daysOfWeek": [1]})
    request: dict[str, Any] = {
        "segments": ["a", "b"],
        "model_propensities": {"m1": 0.75},
        "limit": 6,
        "explain": True,
        "attributes": {"age": 40},
    }

    answers = [decide(client, **request) for _ in range(5)]

    first = answers[0]
    assert len(first.offers) == 6
    for answer in answers[1:]:
        assert list(answer.offers) == list(first.offers)
        assert list(answer.candidates) == list(first.candidates)
        assert answer.decision_time == first.decision_time
    decision_ids = [a.decision_id for a in answers]
    assert all(DECISION_ID.fullmatch(d) for d in decision_ids), decision_ids
    assert len(set(decision_ids)) == len(decision_ids)
    assert first.decision_time.ToDatetime(tzinfo=UTC) == DECISION_TIME


def test_a_decision_without_a_time_is_made_now(client: Client) -> None:
    offer_id = make_offer(client, schedule={"endDate": rfc3339(datetime.now(UTC) + timedelta(days=1))})
    before = datetime.now(UTC)

    response = client.decide("cust-1")

    after = datetime.now(UTC)
    assert offer_ids(response) == [offer_id]
    assert (
        before - timedelta(seconds=1) <= response.decision_time.ToDatetime(tzinfo=UTC) <= after + timedelta(seconds=1)
    )
