"""UpdateOffer: partial updates with and without a field mask, timestamps, archived offers."""

from __future__ import annotations

from typing import Any

import pytest
from offer_builders import (
    DELETED,
    body_of,
    create_in_status,
    ensure_hierarchy,
    full_offer,
    valid_offer,
    with_changes,
)

from arbiter.client import (
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    offer_from_dict,
)
from arbiter.v1 import offers_pb2


@pytest.fixture(autouse=True)
def _hierarchy(client: Client) -> None:
    """The seed's cat_credit_cards (full offers), and the categories updates move offers to."""
    ensure_hierarchy(client, "cat_credit_cards", "cat_other", "cat_loans")


def _micros(ts: Any) -> int:
    return int(ts.ToMicroseconds())


# Without a mask every field set in the request changes (configs merge field by
# field, custom fields key by key) and nothing else does.
# (case id, request body without id, expected changes to the offer's seed-shape dict)
UNMASKED_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("name", {"name": "Renamed"}, {"name": "Renamed"}),
    ("short_desc", {"shortDesc": "new text"}, {"shortDesc": "new text"}),
    ("priority", {"priority": "critical"}, {"priority": "critical"}),
    # A sub-category belongs to its category, so moving an offer that has one names the new one too.
    (
        "category_id",
        {"categoryId": "cat_other", "subCategoryId": "sub_other"},
        {"categoryId": "cat_other", "subCategoryId": "sub_other"},
    ),
    ("tags_replace_as_a_whole", {"tags": ["new", "rewards"]}, {"tags": ["new", "rewards"]}),
    ("qualification.recency", {"qualification": {"recency": 7}}, {"qualification.recency": 7}),
    (
        "qualification.required_segments",
        {"qualification": {"requiredSegments": ["vip"]}},
        {"qualification.requiredSegments": ["vip"]},
    ),
    (
        "qualification.model_reference",
        {"qualification": {"modelReference": "model_v4"}},
        {"qualification.modelReference": "model_v4"},
    ),
    ("budget.cost_per_action", {"budget": {"costPerAction": 2.25}}, {"budget.costPerAction": 2.25}),
    # Zero is a value of an optional field, not "unset": 0 is a cap of zero.
    ("budget.max_impressions_zero", {"budget": {"maxImpressions": 0}}, {"budget.maxImpressions": 0}),
    ("budget.max_daily_budget_zero", {"budget": {"maxDailyBudget": 0}}, {"budget.maxDailyBudget": 0}),
    (
        "qualification.propensity_threshold_zero",
        {"qualification": {"propensityThreshold": 0}},
        {"qualification.propensityThreshold": 0},
    ),
    ("qualification.recency_zero", {"qualification": {"recency": 0}}, {"qualification.recency": 0}),
    (
        "schedule.time_window.start",
        {"schedule": {"timeWindow": {"start": "09:30"}}},
        {"schedule.timeWindow.start": "09:30"},
    ),
    (
        "schedule.start_date",
        {"schedule": {"startDate": "2026-04-01T12:00:00Z"}},
        {"schedule.startDate": "2026-04-01T12:00:00Z"},
    ),
    ("schedule.days_of_week", {"schedule": {"daysOfWeek": [0, 6]}}, {"schedule.daysOfWeek": [0, 6]}),
    (
        "schedule.timezone",
        {"schedule": {"timezone": "America/New_York"}},
        {"schedule.timezone": "America/New_York"},
    ),
    (
        "custom_fields_merge_by_key",
        {"customFields": {"annual_fee": 120, "note": "x"}},
        {"customFields.annual_fee": 120, "customFields.note": "x"},
    ),
    (
        "custom_fields_falsy_values",
        {"customFields": {"annual_fee": 0, "flag": False, "note": ""}},
        {"customFields.annual_fee": 0, "customFields.flag": False, "customFields.note": ""},
    ),
    (
        "several_at_once",
        {"name": "N", "budget": {"maxImpressions": 10}, "schedule": {"daysOfWeek": [1]}},
        {"name": "N", "budget.maxImpressions": 10, "schedule.daysOfWeek": [1]},
    ),
]


@pytest.mark.parametrize(("patch", "changes"), [pytest.param(p, c, id=i) for i, p, c in UNMASKED_CASES])
def test_update_without_mask_changes_only_the_fields_set(
    client: Client, patch: dict[str, Any], changes: dict[str, Any]
) -> None:
    offer = client.create_offer(full_offer())

    updated = client.update_offer({"id": offer.id, **patch})

    assert body_of(updated) == with_changes(body_of(offer), changes)
    assert client.get_offer(offer.id) == updated


def test_update_without_mask_merges_into_an_unset_config(client: Client) -> None:
    offer = client.create_offer(valid_offer())

    updated = client.update_offer(
        {
            "id": offer.id,
            "mandatory": True,
            "qualification": {"recency": 3},
            "budget": {"maxImpressions": 5},
            "schedule": {"timeWindow": {"start": "22:00", "end": "02:00"}},
        }
    )

    assert body_of(updated) == with_changes(
        body_of(offer),
        {
            "mandatory": True,
            "qualification": {"recency": 3, "requiredSegments": [], "modelReference": ""},
            "budget": {"maxImpressions": 5},
            "schedule": {"daysOfWeek": [], "timeWindow": {"start": "22:00", "end": "02:00"}, "timezone": ""},
        },
    )


def test_update_without_mask_never_clears(client: Client) -> None:
    offer = client.create_offer(full_offer())
    empties = {
        "shortDesc": "",
        "categoryId": "",
        "subCategoryId": "",
        "mandatory": False,
        "tags": [],
        "qualification": {"requiredSegments": [], "modelReference": ""},
        "budget": {},
        "schedule": {"daysOfWeek": [], "timezone": "", "timeWindow": {}},
        "customFields": {},
    }

    updated = client.update_offer({"id": offer.id, **empties})

    assert body_of(updated) == body_of(offer)
    assert body_of(client.get_offer(offer.id)) == body_of(offer)


# With a mask exactly the named paths change; a named path unset in the request is cleared.
# (case id, mask, request body without id, expected changes)
MASKED_CASES: list[tuple[str, list[str], dict[str, Any], dict[str, Any]]] = [
    ("clear_leaf", ["budget.max_impressions"], {}, {"budget.maxImpressions": DELETED}),
    (
        "camel_case_path_sets_only_that_leaf",
        ["budget.maxImpressions"],
        {"budget": {"maxImpressions": 7, "costPerAction": 9}},
        {"budget.maxImpressions": 7},
    ),
    ("clear_config", ["qualification"], {}, {"qualification": DELETED}),
    (
        "replace_config",
        ["qualification"],
        {"qualification": {"recency": 3}},
        {"qualification": {"recency": 3, "requiredSegments": [], "modelReference": ""}},
    ),
    ("clear_custom_field", ["custom_fields.annual_fee"], {}, {"customFields.annual_fee": DELETED}),
    (
        "set_one_custom_field",
        ["customFields.annual_fee"],
        {"customFields": {"annual_fee": 120, "base_rate": 1}},
        {"customFields.annual_fee": 120},
    ),
    (
        "add_custom_field",
        ["custom_fields.note"],
        {"customFields": {"note": "two"}},
        {"customFields.note": "two"},
    ),
    (
        "replace_all_custom_fields",
        ["custom_fields"],
        {"customFields": {"flag": True}},
        {"customFields": {"flag": True}},
    ),
    ("clear_all_custom_fields", ["custom_fields"], {}, {"customFields": DELETED}),
    (
        "only_named_top_level_field",
        ["name"],
        {"name": "Only name", "shortDesc": "ignored", "priority": "low"},
        {"name": "Only name"},
    ),
    (
        "clear_scalars",
        ["short_desc", "mandatory", "tags"],
        {},
        {"shortDesc": "", "mandatory": False, "tags": []},
    ),
    # An offer without a category has no schema, so clearing the category clears the custom fields with it.
    (
        "clear_category",
        ["category_id", "sub_category_id", "custom_fields"],
        {},
        {"categoryId": "", "subCategoryId": "", "customFields": DELETED},
    ),
    ("clear_time_window", ["schedule.time_window"], {}, {"schedule.timeWindow": DELETED}),
    (
        "set_time_window_end",
        ["schedule.time_window.end"],
        {"schedule": {"timeWindow": {"start": "00:00", "end": "21:00"}}},
        {"schedule.timeWindow.end": "21:00"},
    ),
    (
        "clear_schedule_leaves",
        ["schedule.days_of_week", "schedule.timezone", "schedule.startDate"],
        {},
        {"schedule.daysOfWeek": [], "schedule.timezone": "", "schedule.startDate": DELETED},
    ),
    ("clear_configs", ["budget", "schedule"], {}, {"budget": DELETED, "schedule": DELETED}),
    ("priority", ["priority"], {"priority": "low"}, {"priority": "low"}),
    (
        "zero_threshold",
        ["qualification.propensity_threshold"],
        {"qualification": {"propensityThreshold": 0}},
        {"qualification.propensityThreshold": 0},
    ),
    ("repeated_path", ["name", "name"], {"name": "Twice"}, {"name": "Twice"}),
]


@pytest.mark.parametrize(("mask", "patch", "changes"), [pytest.param(m, p, c, id=i) for i, m, p, c in MASKED_CASES])
def test_update_with_mask_changes_exactly_the_named_paths(
    client: Client, mask: list[str], patch: dict[str, Any], changes: dict[str, Any]
) -> None:
    offer = client.create_offer(full_offer())

    updated = client.update_offer({"id": offer.id, **patch}, mask)

    assert body_of(updated) == with_changes(body_of(offer), changes)
    assert client.get_offer(offer.id) == updated


def test_star_mask_replaces_everything(client: Client) -> None:
    offer = client.create_offer(full_offer())
    replacement: dict[str, Any] = {
        "name": "Replaced",
        "shortDesc": "all new",
        "categoryId": "cat_loans",
        "priority": "low",
        "status": "active",
        "tags": ["fresh"],
        "qualification": {"recency": 1},
        "budget": {"costPerAction": 0.25},
        "schedule": {"daysOfWeek": [6]},
        "customFields": {"apr": 4.5},
    }

    updated = client.update_offer({"id": offer.id, **replacement}, ["*"])

    assert body_of(updated) == body_of(offer_from_dict(replacement))
    assert updated.mandatory is False
    assert not updated.schedule.HasField("time_window")
    assert client.get_offer(offer.id) == updated


def test_star_mask_with_a_bare_offer_clears_everything_else(client: Client) -> None:
    offer = client.create_offer(full_offer())
    bare = {"name": "Bare", "priority": "medium", "status": "draft"}

    updated = client.update_offer({"id": offer.id, **bare}, ["*"])

    assert body_of(updated) == body_of(offer_from_dict(bare))
    for config in ("qualification", "budget", "schedule", "custom_fields"):
        assert not updated.HasField(config), config


@pytest.mark.parametrize(
    "mask",
    [
        ["nope"],
        ["budget.nope"],
        ["qualification.recency.days"],
        ["schedule.time_window.start.hour"],
        ["qualification."],
        [""],
        ["id"],
        ["created_at"],
        ["createdAt"],
        ["updated_at"],
        ["updatedAt"],
        ["custom_fields."],
        ["customFields."],
        ["name", "bogus"],
        ["*", "id"],
    ],
)
def test_unknown_and_output_only_paths_are_invalid(client: Client, mask: list[str]) -> None:
    offer = client.create_offer(full_offer())

    with pytest.raises(InvalidArgumentError) as info:
        client.update_offer({"id": offer.id, "name": "Changed", "priority": "low", "status": "draft"}, mask)

    assert info.value.fields == ["updateMask"]
    assert client.get_offer(offer.id) == offer


def test_every_bad_mask_path_is_reported(client: Client) -> None:
    offer = client.create_offer(valid_offer())

    with pytest.raises(InvalidArgumentError) as info:
        client.update_offer({"id": offer.id}, ["nope", "id", "name", "created_at"])

    assert info.value.fields == ["updateMask"] * 3
    for violation, bad_path in zip(info.value.field_violations, ["nope", "id", "created_at"], strict=True):
        assert bad_path in violation.description


@pytest.mark.parametrize(
    ("mask", "patch", "fields"),
    [
        (["status"], {}, ["status"]),
        (["priority"], {}, ["priority"]),
        (["status", "priority"], {"name": "x"}, ["priority", "status"]),
        (["*"], {"name": "x", "priority": "low"}, ["status"]),
        (["*"], {"name": "x", "status": "draft"}, ["priority"]),
        (["*"], {"name": "x"}, ["priority", "status"]),
    ],
)
def test_naming_status_or_priority_while_unset_is_invalid(
    client: Client, mask: list[str], patch: dict[str, Any], fields: list[str]
) -> None:
    offer = client.create_offer(full_offer())

    with pytest.raises(InvalidArgumentError) as info:
        client.update_offer({"id": offer.id, **patch}, mask)

    assert sorted(info.value.fields) == fields
    assert client.get_offer(offer.id) == offer


def test_updated_at_moves_and_created_at_does_not(client: Client) -> None:
    offer = client.create_offer(full_offer())

    first = client.update_offer({"id": offer.id, "shortDesc": "first change"})
    second = client.update_offer({"id": offer.id}, ["tags"])

    assert first.created_at == second.created_at == offer.created_at
    assert _micros(offer.updated_at) < _micros(first.updated_at) < _micros(second.updated_at)
    assert client.get_offer(offer.id) == second


@pytest.mark.parametrize("mask", [None, ["name"]])
def test_update_of_a_missing_offer_is_not_found(client: Client, mask: list[str] | None) -> None:
    client.create_offer(valid_offer())

    with pytest.raises(NotFoundError) as info:
        client.update_offer({"id": "act_0000000000000000", "name": "x"}, mask)

    assert info.value.reason == "OFFER_NOT_FOUND"


def test_update_without_an_id_is_invalid(client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.update_offer({"name": "x"})

    assert info.value.fields == ["id"]


@pytest.mark.parametrize("status", ["draft", "active", "paused"])
def test_offers_that_are_not_archived_can_be_edited(client: Client, status: str) -> None:
    offer = create_in_status(client, status, full_offer())

    updated = client.update_offer({"id": offer.id, "shortDesc": "edited"})

    assert updated.short_desc == "edited"
    assert updated.status == offer.status


@pytest.mark.parametrize(
    ("patch", "mask"),
    [
        pytest.param({"name": "x"}, None, id="name"),
        pytest.param({"shortDesc": "x"}, ["short_desc"], id="short_desc_masked"),
        pytest.param({}, ["qualification"], id="clear_config"),
        pytest.param({"customFields": {"annual_fee": 1}}, None, id="custom_field"),
        pytest.param({"priority": "low"}, ["priority"], id="priority"),
        pytest.param({"name": "x", "priority": "low", "status": "archived"}, ["*"], id="star"),
    ],
)
def test_archived_offers_are_read_only_but_can_be_deleted(
    client: Client, patch: dict[str, Any], mask: list[str] | None
) -> None:
    offer = create_in_status(client, "archived", full_offer())
    assert offer.status == offers_pb2.OFFER_STATUS_ARCHIVED

    with pytest.raises(FailedPreconditionError) as info:
        client.update_offer({"id": offer.id, **patch}, mask)

    assert info.value.reason == "OFFER_ARCHIVED"
    assert client.get_offer(offer.id) == offer
    client.delete_offer(offer.id)
    with pytest.raises(NotFoundError) as missing:
        client.get_offer(offer.id)
    assert missing.value.reason == "OFFER_NOT_FOUND"
