"""Offer validation end to end: every rule, its exact camelCase path, all at once, and no half-writes.

Each rule of `validate_offer` (server/arbiter/server/domain/offer_rules.py) and
of the message conversion (transport/offer_messages.py, transport/messages.py)
is one case, checked on create and on update. A rejected write must leave the
tenant's offers exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from offer_builders import (
    LONGEST_CATEGORY_ID,
    LONGEST_SUB_CATEGORY_ID,
    all_offers,
    body_of,
    ensure_hierarchy,
    full_offer,
    merged,
    project,
    valid_offer,
)
from serverproc import ServerProcess

from arbiter.client import Client, InvalidArgumentError, offer_from_dict, offer_to_dict
from arbiter.v1 import offers_pb2

NAN, INF = "NaN", "Infinity"  # proto3 JSON spellings of non-finite doubles


@pytest.fixture(autouse=True)
def _hierarchy(client: Client) -> None:
    """The seed's cat_credit_cards (full offers), and the categories the cases name."""
    ensure_hierarchy(client, "cat_credit_cards", "cat_x", LONGEST_CATEGORY_ID)


def _nested_struct(depth: int) -> dict[str, Any]:
    """A customFields value whose Struct nesting is `depth` levels, the top one included."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# (case id, fields merged onto a valid offer, the violation paths expected)
DICT_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("name_empty", {"name": ""}, ["name"]),
    ("name_whitespace_only", {"name": " \t\n "}, ["name"]),
    ("name_256_chars", {"name": "x" * 256}, ["name"]),
    ("name_256_non_ascii", {"name": "é" * 256}, ["name"]),
    ("name_256_astral", {"name": "🎉" * 256}, ["name"]),
    ("short_desc_1001", {"shortDesc": "d" * 1001}, ["shortDesc"]),
    # An id too long to be valid is reported once, for its length (it is not looked up).
    ("category_id_129", {"categoryId": "c" * 129}, ["categoryId"]),
    ("sub_category_id_129", {"categoryId": "cat_x", "subCategoryId": "s" * 129}, ["subCategoryId"]),
    ("sub_category_without_category", {"subCategoryId": "sub_premium"}, ["subCategoryId"]),
    # Decoding accepts 16 levels of nesting (17 are a violation, see MESSAGE_CASES); the schema has no
    # field type for an object, so the value is then rejected by the category's schema, and only there.
    (
        "custom_fields_nest_16_levels",
        {"categoryId": "cat_credit_cards", "customFields": {"note": _nested_struct(15)}},
        ["customFields.note"],
    ),
    ("tags_51", {"tags": [f"t{i}" for i in range(51)]}, ["tags"]),
    ("tag_empty", {"tags": ["ok", ""]}, ["tags[1]"]),
    ("tag_whitespace", {"tags": ["ok", "   "]}, ["tags[1]"]),
    ("tag_65_chars", {"tags": ["t" * 65]}, ["tags[0]"]),
    ("tag_duplicate", {"tags": ["a", "b", "a"]}, ["tags[2]"]),
    ("threshold_negative", {"qualification": {"propensityThreshold": -0.01}}, ["qualification.propensityThreshold"]),
    ("threshold_above_1", {"qualification": {"propensityThreshold": 1.01}}, ["qualification.propensityThreshold"]),
    ("threshold_nan", {"qualification": {"propensityThreshold": NAN}}, ["qualification.propensityThreshold"]),
    ("threshold_inf", {"qualification": {"propensityThreshold": INF}}, ["qualification.propensityThreshold"]),
    ("recency_negative", {"qualification": {"recency": -1}}, ["qualification.recency"]),
    ("recency_366", {"qualification": {"recency": 366}}, ["qualification.recency"]),
    ("segment_empty", {"qualification": {"requiredSegments": [""]}}, ["qualification.requiredSegments[0]"]),
    (
        "segment_129_chars",
        {"qualification": {"requiredSegments": ["ok", "s" * 129]}},
        ["qualification.requiredSegments[1]"],
    ),
    (
        "segment_duplicate",
        {"qualification": {"requiredSegments": ["vip", "vip"]}},
        ["qualification.requiredSegments[1]"],
    ),
    (
        "segments_51",
        {"qualification": {"requiredSegments": [f"s{i}" for i in range(51)]}},
        ["qualification.requiredSegments"],
    ),
    ("model_reference_129", {"qualification": {"modelReference": "m" * 129}}, ["qualification.modelReference"]),
    ("max_impressions_negative", {"budget": {"maxImpressions": -1}}, ["budget.maxImpressions"]),
    (
        "daily_budget_negative",
        {"budget": {"maxDailyBudget": -1, "costPerAction": 1}},
        ["budget.maxDailyBudget"],
    ),
    (
        "daily_budget_above_1e12",
        {"budget": {"maxDailyBudget": 1.000001e12, "costPerAction": 1}},
        ["budget.maxDailyBudget"],
    ),
    ("daily_budget_nan", {"budget": {"maxDailyBudget": NAN, "costPerAction": 1}}, ["budget.maxDailyBudget"]),
    ("daily_budget_inf", {"budget": {"maxDailyBudget": INF, "costPerAction": 1}}, ["budget.maxDailyBudget"]),
    ("cost_negative", {"budget": {"costPerAction": -0.5}}, ["budget.costPerAction"]),
    ("cost_above_1e9", {"budget": {"costPerAction": 1.000001e9}}, ["budget.costPerAction"]),
    ("cost_nan", {"budget": {"costPerAction": NAN}}, ["budget.costPerAction"]),
    ("daily_budget_without_cost", {"budget": {"maxDailyBudget": 10}}, ["budget.costPerAction"]),
    ("daily_budget_with_zero_cost", {"budget": {"maxDailyBudget": 10, "costPerAction": 0}}, ["budget.costPerAction"]),
    (
        "daily_budget_with_cost_below_a_micro_unit",
        {"budget": {"maxDailyBudget": 10, "costPerAction": 0.0000004}},
        ["budget.costPerAction"],
    ),
    (
        "end_before_start",
        {"schedule": {"startDate": "2026-06-15T00:00:00Z", "endDate": "2026-06-14T23:59:59.999999Z"}},
        ["schedule.endDate"],
    ),
    ("day_7", {"schedule": {"daysOfWeek": [7]}}, ["schedule.daysOfWeek[0]"]),
    ("day_negative", {"schedule": {"daysOfWeek": [-1]}}, ["schedule.daysOfWeek[0]"]),
    ("day_duplicate", {"schedule": {"daysOfWeek": [1, 1]}}, ["schedule.daysOfWeek[1]"]),
    ("day_9_third", {"schedule": {"daysOfWeek": [1, 2, 9]}}, ["schedule.daysOfWeek[2]"]),
    (
        "window_start_24h",
        {"schedule": {"timeWindow": {"start": "24:00", "end": "10:00"}}},
        ["schedule.timeWindow.start"],
    ),
    (
        "window_start_one_digit_hour",
        {"schedule": {"timeWindow": {"start": "8:00", "end": "10:00"}}},
        ["schedule.timeWindow.start"],
    ),
    (
        "window_start_60_minutes",
        {"schedule": {"timeWindow": {"start": "08:60", "end": "10:00"}}},
        ["schedule.timeWindow.start"],
    ),
    (
        "window_start_with_seconds",
        {"schedule": {"timeWindow": {"start": "08:00:00", "end": "10:00"}}},
        ["schedule.timeWindow.start"],
    ),
    (
        "window_start_empty",
        {"schedule": {"timeWindow": {"start": "", "end": "10:00"}}},
        ["schedule.timeWindow.start"],
    ),
    (
        "window_end_25h",
        {"schedule": {"timeWindow": {"start": "08:00", "end": "25:00"}}},
        ["schedule.timeWindow.end"],
    ),
    ("window_end_empty", {"schedule": {"timeWindow": {"start": "08:00"}}}, ["schedule.timeWindow.end"]),
    (
        "window_both_bad",
        {"schedule": {"timeWindow": {"start": "noon", "end": "late"}}},
        ["schedule.timeWindow.start", "schedule.timeWindow.end"],
    ),
    (
        "window_start_equals_end",
        {"schedule": {"timeWindow": {"start": "10:00", "end": "10:00"}}},
        ["schedule.timeWindow"],
    ),
    ("timezone_unknown", {"schedule": {"timezone": "Mars/Olympus_Mons"}}, ["schedule.timezone"]),
    ("timezone_padded", {"schedule": {"timezone": " Europe/Paris"}}, ["schedule.timezone"]),
    ("timezone_path", {"schedule": {"timezone": "../../etc/passwd"}}, ["schedule.timezone"]),
]


def _set_priority(value: int) -> Callable[[offers_pb2.Offer], None]:
    def mutate(msg: offers_pb2.Offer) -> None:
        msg.priority = value  # type: ignore[assignment]

    return mutate


def _set_status(value: int) -> Callable[[offers_pb2.Offer], None]:
    def mutate(msg: offers_pb2.Offer) -> None:
        msg.status = value  # type: ignore[assignment]

    return mutate


def _set_start_date(seconds: int, nanos: int) -> Callable[[offers_pb2.Offer], None]:
    def mutate(msg: offers_pb2.Offer) -> None:
        msg.schedule.start_date.seconds = seconds
        msg.schedule.start_date.nanos = nanos

    return mutate


def _set_end_date(seconds: int, nanos: int) -> Callable[[offers_pb2.Offer], None]:
    def mutate(msg: offers_pb2.Offer) -> None:
        msg.schedule.end_date.seconds = seconds
        msg.schedule.end_date.nanos = nanos

    return mutate


def _set_custom_fields(values: dict[str, Any]) -> Callable[[offers_pb2.Offer], None]:
    def mutate(msg: offers_pb2.Offer) -> None:
        msg.custom_fields.update(values)

    return mutate


YEAR_10000 = 253_402_300_800  # 10000-01-01T00:00:00Z, one second past the last valid Timestamp
BEFORE_YEAR_1 = -62_135_596_801  # one second before 0001-01-01T00:00:00Z

# Problems only a message (not the seed's JSON) can carry: (case id, change to a valid message, paths).
MESSAGE_CASES: list[tuple[str, Callable[[offers_pb2.Offer], None], list[str]]] = [
    ("priority_unknown_number", _set_priority(99), ["priority"]),
    ("priority_negative_number", _set_priority(-1), ["priority"]),
    ("status_unknown_number", _set_status(99), ["status"]),
    ("start_date_negative_nanos", _set_start_date(1_800_000_000, -1), ["schedule.startDate"]),
    ("start_date_nanos_overflow", _set_start_date(1_800_000_000, 1_000_000_000), ["schedule.startDate"]),
    ("start_date_after_9999", _set_start_date(YEAR_10000, 0), ["schedule.startDate"]),
    ("end_date_before_year_1", _set_end_date(BEFORE_YEAR_1, 0), ["schedule.endDate"]),
    ("custom_field_nan", _set_custom_fields({"fee": float("nan")}), ["customFields.fee"]),
    ("custom_field_infinity", _set_custom_fields({"fee": float("-inf")}), ["customFields.fee"]),
    (
        "custom_field_nan_nested_in_list",
        _set_custom_fields({"a": {"b": [1, float("nan")]}}),
        ["customFields.a.b[1]"],
    ),
    ("custom_fields_nest_17_levels", _set_custom_fields({"a": _nested_struct(16)}), ["customFields" + ".a" * 16]),
]


def _invalid(call: Callable[[], object]) -> list[str]:
    """The violation paths of a call that must fail with INVALID_ARGUMENT."""
    with pytest.raises(InvalidArgumentError) as info:
        call()
    return info.value.fields


def _message(body: dict[str, Any], mutate: Callable[[offers_pb2.Offer], None]) -> offers_pb2.Offer:
    msg = offer_from_dict(body)
    mutate(msg)
    return msg


# -- one rule at a time ---------------------------------------------------------


@pytest.mark.parametrize(("fields", "paths"), [pytest.param(f, p, id=i) for i, f, p in DICT_CASES])
def test_create_reports_the_bad_field(client: Client, fields: dict[str, Any], paths: list[str]) -> None:
    existing = client.create_offer(valid_offer())

    assert _invalid(lambda: client.create_offer(merged(valid_offer(), fields))) == paths
    assert all_offers(client) == [existing]


@pytest.mark.parametrize(("fields", "paths"), [pytest.param(f, p, id=i) for i, f, p in DICT_CASES])
def test_update_reports_the_bad_field(client: Client, fields: dict[str, Any], paths: list[str]) -> None:
    offer = client.create_offer(valid_offer(tags=["keep"], budget={"maxImpressions": 9}))
    mask = list(fields)

    assert _invalid(lambda: client.update_offer({"id": offer.id, **fields}, mask)) == paths
    assert client.get_offer(offer.id) == offer


@pytest.mark.parametrize(("mutate", "paths"), [pytest.param(m, p, id=i) for i, m, p in MESSAGE_CASES])
def test_create_reports_a_bad_message_field(
    client: Client, mutate: Callable[[offers_pb2.Offer], None], paths: list[str]
) -> None:
    existing = client.create_offer(valid_offer())

    assert _invalid(lambda: client.create_offer(_message(valid_offer(), mutate))) == paths
    assert all_offers(client) == [existing]


@pytest.mark.parametrize(("mutate", "paths"), [pytest.param(m, p, id=i) for i, m, p in MESSAGE_CASES])
def test_update_reports_a_bad_message_field(
    client: Client, mutate: Callable[[offers_pb2.Offer], None], paths: list[str]
) -> None:
    offer = client.create_offer(full_offer())

    assert _invalid(lambda: client.update_offer(_message({"id": offer.id}, mutate))) == paths
    assert client.get_offer(offer.id) == offer


@pytest.mark.parametrize(
    ("patch", "paths"),
    [
        pytest.param(
            {"qualification": {"propensityThreshold": 2}}, ["qualification.propensityThreshold"], id="threshold"
        ),
        pytest.param({"budget": {"maxImpressions": -5}}, ["budget.maxImpressions"], id="max_impressions"),
        pytest.param({"schedule": {"daysOfWeek": [3, 3]}}, ["schedule.daysOfWeek[1]"], id="days"),
        pytest.param({"schedule": {"timeWindow": {"end": "08:00"}}}, ["schedule.timeWindow"], id="window_merge"),
        pytest.param({"tags": ["x", "x"]}, ["tags[1]"], id="tags"),
        pytest.param({"name": "n" * 256}, ["name"], id="name"),
    ],
)
def test_update_without_mask_validates_the_merged_offer(
    client: Client, patch: dict[str, Any], paths: list[str]
) -> None:
    offer = client.create_offer(full_offer())  # its window is 08:00-20:00

    assert _invalid(lambda: client.update_offer({"id": offer.id, **patch})) == paths
    assert client.get_offer(offer.id) == offer


@pytest.mark.parametrize(
    ("mask", "paths"),
    [
        pytest.param(["budget.cost_per_action"], ["budget.costPerAction"], id="daily_budget_needs_cost"),
        pytest.param(["category_id", "custom_fields"], ["subCategoryId"], id="sub_category_needs_category"),
        pytest.param(["category_id", "sub_category_id"], ["customFields"], id="custom_fields_need_category"),
        pytest.param(["name"], ["name"], id="name_required"),
        pytest.param(["schedule.time_window.start"], ["schedule.timeWindow.start"], id="window_start"),
    ],
)
def test_clearing_a_field_that_another_needs_is_invalid(client: Client, mask: list[str], paths: list[str]) -> None:
    offer = client.create_offer(full_offer())

    assert _invalid(lambda: client.update_offer({"id": offer.id}, mask)) == paths
    assert client.get_offer(offer.id) == offer


def test_a_malformed_tenant_id_is_invalid(server: ServerProcess) -> None:
    with Client(server.target, tenant="Not A Tenant") as bad:
        assert _invalid(lambda: bad.create_offer(valid_offer())) == ["x-tenant-id"]


# -- many at once -------------------------------------------------------------------

MANY_BAD_FIELDS: dict[str, Any] = {
    "name": "   ",
    "shortDesc": "d" * 1001,
    "subCategoryId": "sub_orphan",
    "tags": ["", "a", "a"],
    "qualification": {"propensityThreshold": 1.5, "recency": 400, "requiredSegments": ["s", "s"]},
    "budget": {"maxImpressions": -1, "maxDailyBudget": 5},
    "schedule": {
        "startDate": "2026-02-01T00:00:00Z",
        "endDate": "2026-01-01T00:00:00Z",
        "daysOfWeek": [8],
        "timeWindow": {"start": "09:00", "end": "09:00"},
        "timezone": "Nowhere/Special",
    },
}
MANY_BAD_PATHS = [
    "name",
    "shortDesc",
    "subCategoryId",
    "tags[0]",
    "tags[2]",
    "qualification.propensityThreshold",
    "qualification.recency",
    "qualification.requiredSegments[1]",
    "budget.maxImpressions",
    "budget.costPerAction",
    "schedule.endDate",
    "schedule.daysOfWeek[0]",
    "schedule.timeWindow",
    "schedule.timezone",
]


def test_create_reports_every_bad_field_in_one_answer(client: Client) -> None:
    assert sorted(_invalid(lambda: client.create_offer(MANY_BAD_FIELDS))) == sorted(MANY_BAD_PATHS)
    assert all_offers(client) == []


def test_update_reports_every_bad_field_in_one_answer(client: Client) -> None:
    offer = client.create_offer(full_offer())

    # Naming categoryId (unset in the request) clears it, which orphans the sub-category and the custom fields.
    mask = [*MANY_BAD_FIELDS, "categoryId"]

    paths = _invalid(lambda: client.update_offer({"id": offer.id, **MANY_BAD_FIELDS}, mask))

    assert sorted(paths) == sorted([*MANY_BAD_PATHS, "customFields"])
    assert client.get_offer(offer.id) == offer


def test_create_reports_a_bad_start_status_with_the_other_bad_fields(client: Client) -> None:
    body = {"name": "", "status": "paused", "qualification": {"recency": -1}}

    assert sorted(_invalid(lambda: client.create_offer(body))) == ["name", "qualification.recency", "status"]


def test_every_bad_message_field_is_reported_in_one_answer(client: Client) -> None:
    msg = offer_from_dict(valid_offer())
    for case_id, mutate, _ in MESSAGE_CASES:
        if case_id in ("priority_unknown_number", "status_unknown_number", "custom_field_nan"):
            mutate(msg)
    _set_start_date(0, -5)(msg)

    paths = _invalid(lambda: client.create_offer(msg))

    assert sorted(paths) == sorted(["priority", "status", "customFields.fee", "schedule.startDate"])


def test_message_and_rule_violations_are_reported_together(client: Client) -> None:
    # One answer names every bad field, whichever layer finds it.
    msg = offer_from_dict({"name": "", "qualification": {"propensityThreshold": 2}})
    msg.priority = 99  # type: ignore[assignment]

    paths = _invalid(lambda: client.create_offer(msg))

    assert sorted(paths) == ["name", "priority", "qualification.propensityThreshold"]
    assert all_offers(client) == []


# -- boundaries that are accepted ---------------------------------------------------

ACCEPTED_CASES: list[tuple[str, dict[str, Any]]] = [
    ("threshold_0", {"qualification": {"propensityThreshold": 0}}),
    ("threshold_1", {"qualification": {"propensityThreshold": 1}}),
    ("recency_0", {"qualification": {"recency": 0}}),
    ("recency_365", {"qualification": {"recency": 365}}),
    ("name_255_chars", {"name": "x" * 255}),
    ("name_255_non_ascii", {"name": "é" * 255}),
    ("name_255_astral", {"name": "🎉" * 255}),
    ("name_with_inner_spaces", {"name": "  padded  name  "}),
    ("short_desc_1000", {"shortDesc": "d" * 1000}),
    # The 128 characters an offer's ids may hold exceed what a category id can be ("cat_" and 64).
    ("category_ids_longest", {"categoryId": LONGEST_CATEGORY_ID, "subCategoryId": LONGEST_SUB_CATEGORY_ID}),
    ("tags_50_of_64_chars", {"tags": [f"{i:02d}" + "t" * 62 for i in range(50)]}),
    ("segments_50_of_128_chars", {"qualification": {"requiredSegments": [f"{i:02d}" + "s" * 126 for i in range(50)]}}),
    ("model_reference_128", {"qualification": {"modelReference": "m" * 128}}),
    ("max_impressions_0", {"budget": {"maxImpressions": 0}}),
    ("max_impressions_2_pow_62", {"budget": {"maxImpressions": 2**62}}),
    ("money_maxima", {"budget": {"maxDailyBudget": 1e12, "costPerAction": 1e9}}),
    ("daily_budget_0_with_one_micro_cost", {"budget": {"maxDailyBudget": 0, "costPerAction": 0.000001}}),
    ("cost_0_without_daily_budget", {"budget": {"costPerAction": 0}}),
    ("window_wraps_midnight", {"schedule": {"timeWindow": {"start": "22:00", "end": "02:00"}}}),
    ("window_whole_day", {"schedule": {"timeWindow": {"start": "00:00", "end": "23:59"}}}),
    ("window_last_minute_wraps", {"schedule": {"timeWindow": {"start": "23:59", "end": "00:00"}}}),
    ("every_day", {"schedule": {"daysOfWeek": [6, 5, 4, 3, 2, 1, 0]}}),
    ("start_equals_end", {"schedule": {"startDate": "2026-05-01T10:00:00Z", "endDate": "2026-05-01T10:00:00Z"}}),
    (
        "timestamp_extremes",
        {"schedule": {"startDate": "0001-01-01T00:00:00Z", "endDate": "9999-12-31T23:59:59.999999Z"}},
    ),
    ("timezone_paris", {"schedule": {"timezone": "Europe/Paris"}}),
    ("timezone_utc", {"schedule": {"timezone": "UTC"}}),
    (
        "custom_fields_of_every_type",
        {
            "categoryId": "cat_credit_cards",
            "customFields": {"note": "x", "annual_fee": -1.5, "flag": True, "tier": "gold", "launch": "2026-02-28"},
        },
    ),
]


@pytest.mark.parametrize("fields", [pytest.param(f, id=i) for i, f in ACCEPTED_CASES])
def test_boundary_values_are_accepted_and_kept(client: Client, fields: dict[str, Any]) -> None:
    body = merged(valid_offer(), fields)

    created = client.create_offer(body)

    assert project(offer_to_dict(created), body) == body
    assert client.get_offer(created.id) == created

    client.delete_offer(created.id)  # frees its name for the update below
    target = client.create_offer(full_offer())
    updated = client.update_offer({"id": target.id, **fields}, list(fields))
    assert project(body_of(updated), fields) == fields
