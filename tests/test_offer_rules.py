"""Unit tests (no I/O) of the offer rules and of the stored offer codec."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbiter.server.domain import field_masks, offer_rules
from arbiter.server.domain.errors import FailedPrecondition, InvalidArgument
from arbiter.server.domain.offers import (
    Budget,
    Offer,
    OfferStatus,
    Priority,
    Qualification,
    Schedule,
    TimeWindow,
)
from arbiter.server.domain.timekeeping import from_epoch_micros, to_epoch_micros
from arbiter.server.storage.sql.offer_codec import offer_from_row, offer_to_json

# -- camel ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("name", "name"),
        ("short_desc", "shortDesc"),
        ("sub_category_id", "subCategoryId"),
        ("qualification.propensity_threshold", "qualification.propensityThreshold"),
        ("budget.max_daily_budget", "budget.maxDailyBudget"),
        ("schedule.time_window.start", "schedule.timeWindow.start"),
        ("schedule.days_of_week", "schedule.daysOfWeek"),
        # Custom field keys are the category's own names: kept verbatim, dots included.
        ("custom_fields.annual_fee", "customFields.annual_fee"),
        ("custom_fields.a_b.c_d", "customFields.a_b.c_d"),
        ("custom_fields", "customFields"),
    ],
)
def test_camel(path: str, expected: str) -> None:
    assert field_masks.camel(path) == expected


# -- parsing update masks ---------------------------------------------------------------

TOP_LEVEL = [
    "name",
    "short_desc",
    "category_id",
    "sub_category_id",
    "priority",
    "mandatory",
    "status",
    "tags",
    "qualification",
    "budget",
    "schedule",
    "custom_fields",
]


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["name"], ["name"]),
        (["shortDesc"], ["short_desc"]),
        (["short_desc", "shortDesc"], ["short_desc"]),
        (["budget.maxImpressions"], ["budget.max_impressions"]),
        (["qualification.propensityThreshold"], ["qualification.propensity_threshold"]),
        (["schedule.timeWindow.start"], ["schedule.time_window.start"]),
        (["schedule.timeWindow"], ["schedule.time_window"]),
        (["customFields.annual_fee"], ["custom_fields.annual_fee"]),
        (["custom_fields.annualFee"], ["custom_fields.annualFee"]),
        (["customFields"], ["custom_fields"]),
        (["*"], TOP_LEVEL),
        (["*", "name", "budget.max_impressions"], [*TOP_LEVEL, "budget.max_impressions"]),
    ],
)
def test_normalize_mask_canonicalises(paths: list[str], expected: list[str]) -> None:
    assert offer_rules.OFFER_UPDATES.parse(paths) == expected


def test_star_expands_to_every_mutable_top_level_field() -> None:
    expanded = offer_rules.OFFER_UPDATES.parse(["*"])

    assert set(expanded) == set(TOP_LEVEL)
    assert not set(expanded) & set(field_masks.OUTPUT_ONLY)


def test_normalize_mask_reports_every_bad_path() -> None:
    with pytest.raises(InvalidArgument) as info:
        offer_rules.OFFER_UPDATES.parse(["nope", "name", "id", "createdAt", "updated_at", "budget.x", "custom_fields."])

    assert [v.field for v in info.value.violations] == ["updateMask"] * 6
    text = " ".join(v.description for v in info.value.violations)
    for bad in ("nope", "id", "createdAt", "updated_at", "budget.x", "custom_fields."):
        assert repr(bad) in text


# -- paths set in a patch ------------------------------------------------------------------


PRESENT_CASES: list[tuple[str, Offer, list[str]]] = [
    ("nothing", Offer(), []),
    ("output_only_ignored", Offer(id="act_1", created_at=datetime(2026, 1, 1, tzinfo=UTC)), []),
    ("empty_string_not_provided", Offer(name="x", short_desc=""), ["name"]),
    ("bool_and_list", Offer(mandatory=True, tags=("a",)), ["mandatory", "tags"]),
    ("enums", Offer(priority=Priority.LOW, status=OfferStatus.ACTIVE), ["priority", "status"]),
    ("empty_config", Offer(qualification=Qualification()), []),
    ("config_leaf", Offer(qualification=Qualification(recency=3)), ["qualification.recency"]),
    ("window_leaf", Offer(schedule=Schedule(time_window=TimeWindow(start="09:00"))), ["schedule.time_window.start"]),
    ("custom_field_keys", Offer(custom_fields={"a": 0, "b": None}), ["custom_fields.a", "custom_fields.b"]),
    # A set optional number is provided even when it is zero: 0 is a cap of zero.
    ("zero_max_impressions", Offer(budget=Budget(max_impressions=0)), ["budget.max_impressions"]),
    (
        "zero_money",
        Offer(budget=Budget(max_daily_budget=0.0, cost_per_action=0.0)),
        ["budget.max_daily_budget", "budget.cost_per_action"],
    ),
    (
        "zero_qualification",
        Offer(qualification=Qualification(propensity_threshold=0.0, recency=0)),
        ["qualification.propensity_threshold", "qualification.recency"],
    ),
]


@pytest.mark.parametrize(("patch", "expected"), [pytest.param(p, e, id=i) for i, p, e in PRESENT_CASES])
def test_present_paths(patch: Offer, expected: list[str]) -> None:
    assert offer_rules.OFFER_UPDATES.present(patch) == expected


# -- apply_update -------------------------------------------------------------------

CURRENT_SCHEDULE = Schedule(days_of_week=(1, 2), time_window=TimeWindow("08:00", "20:00"), timezone="UTC")
CURRENT = Offer(
    id="act_0000000000000001",
    name="Current",
    short_desc="desc",
    priority=Priority.HIGH,
    mandatory=True,
    status=OfferStatus.ACTIVE,
    tags=("a", "b"),
    qualification=Qualification(propensity_threshold=0.5, recency=3, required_segments=("vip",)),
    budget=Budget(max_impressions=10, max_daily_budget=5.0, cost_per_action=0.5),
    schedule=CURRENT_SCHEDULE,
    custom_fields={"fee": 1.0, "rate": 2.0},
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    updated_at=datetime(2026, 1, 2, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("patch", "paths", "expected"),
    [
        (Offer(name="New"), ["name"], replace(CURRENT, name="New")),
        (Offer(), ["short_desc", "tags", "mandatory"], replace(CURRENT, short_desc="", tags=(), mandatory=False)),
        (Offer(), ["qualification"], replace(CURRENT, qualification=None)),
        (
            Offer(),
            ["budget.max_impressions"],
            replace(CURRENT, budget=Budget(max_impressions=None, max_daily_budget=5.0, cost_per_action=0.5)),
        ),
        (
            Offer(budget=Budget(max_impressions=0, cost_per_action=9.0)),
            ["budget.max_impressions"],
            replace(CURRENT, budget=Budget(max_impressions=0, max_daily_budget=5.0, cost_per_action=0.5)),
        ),
        (
            Offer(schedule=Schedule(time_window=TimeWindow(end="21:00"))),
            ["schedule.time_window.end"],
            replace(CURRENT, schedule=replace(CURRENT_SCHEDULE, time_window=TimeWindow("08:00", "21:00"))),
        ),
        (Offer(), ["custom_fields.fee"], replace(CURRENT, custom_fields={"rate": 2.0})),
        (
            Offer(custom_fields={"fee": 7, "rate": 0}),
            ["custom_fields.fee"],
            replace(CURRENT, custom_fields={"fee": 7, "rate": 2.0}),
        ),
        (
            Offer(custom_fields={"new": "x"}),
            ["custom_fields.new"],
            replace(CURRENT, custom_fields={**CURRENT.custom_fields, "new": "x"}),
        ),
        (Offer(custom_fields={"only": True}), ["custom_fields"], replace(CURRENT, custom_fields={"only": True})),
        (Offer(), ["custom_fields.missing"], CURRENT),
        (Offer(status=OfferStatus.PAUSED), ["status"], replace(CURRENT, status=OfferStatus.PAUSED)),
        (Offer(name="ignored"), [], CURRENT),
    ],
    ids=[
        "set_name",
        "clear_scalars",
        "clear_config",
        "clear_leaf",
        "set_leaf_to_zero_only",
        "set_window_end",
        "clear_custom_field",
        "set_one_custom_field",
        "add_custom_field",
        "replace_custom_fields",
        "clear_absent_custom_field",
        "set_status",
        "no_paths",
    ],
)
def test_apply_update(patch: Offer, paths: list[str], expected: Offer) -> None:
    custom_before = dict(CURRENT.custom_fields)

    assert offer_rules.apply_update(CURRENT, patch, paths) == expected
    assert CURRENT.custom_fields == custom_before  # the current offer is never modified


def test_apply_update_sets_a_leaf_of_an_unset_config() -> None:
    current = replace(CURRENT, budget=None, schedule=None)

    updated = offer_rules.apply_update(
        current,
        Offer(budget=Budget(max_impressions=5), schedule=Schedule(time_window=TimeWindow(start="09:00"))),
        ["budget.max_impressions", "schedule.time_window.start"],
    )

    assert updated.budget == Budget(max_impressions=5)
    assert updated.schedule == Schedule(time_window=TimeWindow(start="09:00"))


def test_apply_update_refuses_an_archived_offer() -> None:
    archived = replace(CURRENT, status=OfferStatus.ARCHIVED)

    with pytest.raises(FailedPrecondition) as info:
        offer_rules.apply_update(archived, Offer(name="x"), ["name"])

    assert info.value.reason == "OFFER_ARCHIVED"


@pytest.mark.parametrize(
    ("paths", "fields"),
    [(["status"], ["status"]), (["priority"], ["priority"]), (["name", "status", "priority"], ["priority", "status"])],
)
def test_apply_update_requires_named_status_and_priority(paths: list[str], fields: list[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        offer_rules.apply_update(CURRENT, Offer(name="x"), paths)

    assert [v.field for v in info.value.violations] == fields


# -- check_transition ---------------------------------------------------------------

ALLOWED = {
    (OfferStatus.DRAFT, OfferStatus.ACTIVE),
    (OfferStatus.ACTIVE, OfferStatus.PAUSED),
    (OfferStatus.PAUSED, OfferStatus.ACTIVE),
    (OfferStatus.DRAFT, OfferStatus.ARCHIVED),
    (OfferStatus.ACTIVE, OfferStatus.ARCHIVED),
    (OfferStatus.PAUSED, OfferStatus.ARCHIVED),
}
ALL_PAIRS = list(itertools.product(OfferStatus, repeat=2))


@pytest.mark.parametrize(("old", "new"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS])
def test_check_transition(old: OfferStatus, new: OfferStatus) -> None:
    if old is new or (old, new) in ALLOWED:
        offer_rules.check_transition(old, new)
        return
    with pytest.raises(FailedPrecondition) as info:
        offer_rules.check_transition(old, new)
    assert info.value.reason == "INVALID_STATUS_TRANSITION"
    assert old.value in info.value.message and new.value in info.value.message
    assert info.value.metadata == {"from": old.value, "to": new.value}


# -- validate_offer rules no message can reach ---------------------------------------


def test_validate_offer_requires_priority_status_and_an_object_of_custom_fields() -> None:
    broken = Offer(name="x", priority=None, status=None, custom_fields=[1, 2])  # type: ignore[arg-type]

    fields = [v.field for v in offer_rules.validate_offer(broken)]

    assert fields == ["priority", "status", "customFields"]


# -- offer codec round trip (hypothesis) -------------------------------------------

# Aware UTC datetimes at microsecond precision, across the whole Timestamp range.
instants = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999), timezones=st.just(UTC)
)
texts = st.text(max_size=20)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | finite_floats | st.integers(-(2**53), 2**53) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))

qualifications = st.builds(
    Qualification,
    propensity_threshold=st.none() | st.floats(0, 1),
    recency=st.none() | st.integers(0, 365),
    required_segments=st.lists(texts.filter(str.strip), max_size=5, unique=True).map(tuple),
    model_reference=texts,
)
budgets = st.builds(
    Budget,
    max_impressions=st.none() | st.integers(0, 2**63 - 1),
    max_daily_budget=st.none() | st.floats(0, 1e12),
    cost_per_action=st.none() | st.floats(0, 1e9),
)
schedules = st.builds(
    Schedule,
    start_date=st.none() | instants,
    end_date=st.none() | instants,
    days_of_week=st.lists(st.integers(0, 6), max_size=7, unique=True).map(tuple),
    time_window=st.none() | st.builds(TimeWindow, hhmm, hhmm),
    timezone=st.sampled_from(["", "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
)
offers = st.builds(
    Offer,
    id=st.just("act_0123456789abcdef"),
    name=st.text(min_size=1, max_size=255).filter(str.strip),
    short_desc=texts,
    category_id=texts,
    sub_category_id=texts,
    priority=st.sampled_from(Priority),
    mandatory=st.booleans(),
    status=st.sampled_from(OfferStatus),
    tags=st.lists(texts.filter(str.strip), max_size=5, unique=True).map(tuple),
    qualification=st.none() | qualifications,
    budget=st.none() | budgets,
    schedule=st.none() | schedules,
    custom_fields=st.dictionaries(texts, json_values, max_size=5),
    created_at=instants,
    updated_at=instants,
)


@given(offers)
def test_offer_codec_round_trips(offer: Offer) -> None:
    assert offer.created_at is not None and offer.updated_at is not None
    created_us, updated_us = to_epoch_micros(offer.created_at), to_epoch_micros(offer.updated_at)

    restored = offer_from_row(offer.id, created_us, updated_us, offer_to_json(offer))

    assert restored == offer
    assert restored.created_at is not None and restored.created_at.utcoffset() == UTC.utcoffset(None)


@given(instants)
def test_epoch_micros_round_trip(moment: datetime) -> None:
    assert from_epoch_micros(to_epoch_micros(moment)) == moment
