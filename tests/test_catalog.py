"""CatalogService over the wire: CRUD, referential rules, custom-field schemas and computed fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import backends
import pytest
from serverproc import ServerProcess
from sqlite_utils import Database

from arbiter.client import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    category_to_dict,
)
from arbiter.server.storage.sqlite.migrations import migrations
from arbiter.v1 import catalog_pb2, decisions_pb2, offers_pb2

NOW = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)

CARDS: dict[str, Any] = {
    "name": "Credit cards",
    "description": "Cards",
    "customFields": [
        {"key": "base_rate", "label": "Base rate", "type": "number", "required": True},
        {"key": "annual_fee", "type": "number", "defaultValue": 0},
        {"key": "tier", "type": "select", "options": ["gold", "silver"]},
        {"key": "launch", "type": "date"},
        {"key": "promo", "type": "boolean"},
        {"key": "blurb", "type": "text"},
        {
            "key": "personalized_rate",
            "type": "computed",
            "outputType": "number",
            "formula": "base_rate * (1 - customer.loyalty_score * 0.01)",
        },
    ],
}


def make_cards(client: Client, category_id: str = "cat_credit_cards") -> catalog_pb2.Category:
    return client.create_category(CARDS, category_id=category_id)


def offer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Gold card",
        "categoryId": "cat_credit_cards",
        "status": "active",
        "customFields": {"base_rate": 19.99},
    }
    body.update(overrides)
    return body


# -- categories ---------------------------------------------------------------


def test_create_get_list_update_delete_category(client: Client) -> None:
    created = make_cards(client)
    assert created.id == "cat_credit_cards"
    assert created.status == catalog_pb2.CATEGORY_STATUS_ACTIVE
    assert created.HasField("created_at")
    assert [f.key for f in created.custom_fields][:2] == ["base_rate", "annual_fee"]
    assert category_to_dict(created)["customFields"][1]["defaultValue"] == 0
    assert client.get_category("cat_credit_cards") == created

    assigned = client.create_category({"name": "Savings"})
    assert assigned.id.startswith("cat_") and len(assigned.id) == 20
    assert [c.id for c in client.list_categories().categories] == ["cat_credit_cards", assigned.id]

    changed = client.update_category({"id": assigned.id, "description": "Rainy days", "displayOrder": 3})
    assert changed.category.description == "Rainy days"
    assert changed.category.display_order == 3
    assert changed.category.name == "Savings"  # not named, not changed

    client.delete_category(assigned.id)
    with pytest.raises(NotFoundError) as caught:
        client.get_category(assigned.id)
    assert caught.value.reason == "CATEGORY_NOT_FOUND"


def test_category_ids_and_names_are_unique_per_tenant(client: Client, server: ServerProcess, tenant: str) -> None:
    make_cards(client)
    with pytest.raises(AlreadyExistsError):
        client.create_category({"name": "Other"}, category_id="cat_credit_cards")
    with pytest.raises(AlreadyExistsError):
        client.create_category({"name": "Credit cards"})
    with Client(server.target, tenant=tenant + "-other") as other:
        assert other.create_category(CARDS, category_id="cat_credit_cards").id == "cat_credit_cards"
        with pytest.raises(NotFoundError) as missing:
            other.get_category("cat_nope")
        assert missing.value.reason == "CATEGORY_NOT_FOUND"


@pytest.mark.parametrize(
    ("category", "category_id", "fields"),
    [
        ({"name": ""}, "", ["name"]),
        ({"name": "x"}, "cat_UPPER", ["categoryId"]),
        ({"name": "x"}, "category_1", ["categoryId"]),
        ({"name": "x", "customFields": [{"key": "Bad Key", "type": "text"}]}, "", ["customFields[0].key"]),
        ({"name": "x", "customFields": [{"key": "a"}]}, "", ["customFields[0].type"]),
        (
            {"name": "x", "customFields": [{"key": "a", "type": "text"}, {"key": "a", "type": "text"}]},
            "",
            ["customFields[1].key"],
        ),
        ({"name": "x", "customFields": [{"key": "a", "type": "select"}]}, "", ["customFields[0].options"]),
        (
            {"name": "x", "customFields": [{"key": "a", "type": "number", "options": ["1"]}]},
            "",
            ["customFields[0].options"],
        ),
        (
            {"name": "x", "customFields": [{"key": "a", "type": "number", "defaultValue": "95"}]},
            "",
            ["customFields[0].defaultValue"],
        ),
        (
            {"name": "x", "customFields": [{"key": "d", "type": "date", "defaultValue": "2026-13-01"}]},
            "",
            ["customFields[0].defaultValue"],
        ),
        (
            {"name": "x", "customFields": [{"key": "c", "type": "computed"}]},
            "",
            ["customFields[0].outputType", "customFields[0].formula"],
        ),
        (
            {
                "name": "x",
                "customFields": [{"key": "c", "type": "computed", "outputType": "number", "formula": "pow(2)"}],
            },
            "",
            ["customFields[0].formula"],
        ),
        (
            {
                "name": "",
                "customFields": [
                    {"key": "a", "type": "computed", "outputType": "number", "formula": "1 +", "required": True}
                ],
            },
            "",
            ["name", "customFields[0].required", "customFields[0].formula"],
        ),
    ],
)
def test_invalid_categories_report_every_field(
    client: Client, category: dict[str, Any], category_id: str, fields: list[str]
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category(category, category_id=category_id)
    assert sorted(caught.value.fields) == sorted(fields)
    assert client.list_categories().categories == []


def test_a_bad_formula_names_its_position(client: Client) -> None:
    category = {
        "name": "x",
        "customFields": [
            {"key": "rate", "type": "number"},
            {"key": "c", "type": "computed", "outputType": "number", "formula": "rate + 1 + pow(2, 3)"},
        ],
    }
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category(category)
    (violation,) = caught.value.field_violations
    assert violation.field == "customFields[1].formula"
    assert violation.description == "unknown function 'pow' at column 12"


def test_unknown_names_and_cycles_in_formulas_are_refused(client: Client) -> None:
    unknown = {
        "name": "x",
        "customFields": [{"key": "c", "type": "computed", "outputType": "number", "formula": "missing * 2"}],
    }
    with pytest.raises(InvalidArgumentError, match="unknown name 'missing'"):
        client.create_category(unknown)
    cycle = {
        "name": "y",
        "customFields": [
            {"key": "a", "type": "computed", "outputType": "number", "formula": "b + 1"},
            {"key": "b", "type": "computed", "outputType": "number", "formula": "a + 1"},
        ],
    }
    with pytest.raises(InvalidArgumentError, match="cycle"):
        client.create_category(cycle)


def test_five_thousand_nested_parentheses_are_invalid_argument(client: Client) -> None:
    formula = "(" * 5000 + "1" + ")" * 5000
    category = {
        "name": "x",
        "customFields": [{"key": "c", "type": "computed", "outputType": "number", "formula": formula}],
    }
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category(category)
    assert caught.value.fields == ["customFields[0].formula"]
    assert client.get_tenant_settings().timezone == "UTC"  # and the server still answers


def test_category_update_mask_rules(client: Client) -> None:
    make_cards(client)
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_category({"id": "cat_credit_cards", "name": "x"}, ["nickname"])
    assert caught.value.fields == ["updateMask"]
    with pytest.raises(InvalidArgumentError):
        client.update_category({"id": "cat_credit_cards"}, ["created_at"])
    cleared = client.update_category({"id": "cat_credit_cards"}, ["description"])
    assert cleared.category.description == ""
    with pytest.raises(NotFoundError) as missing:
        client.update_category({"id": "cat_missing", "name": "x"})
    assert missing.value.reason == "CATEGORY_NOT_FOUND"


def test_schema_change_reports_nonconforming_offers_and_changes_none(client: Client) -> None:
    make_cards(client)
    client.create_offer(offer_body(name="A"))
    b = client.create_offer(offer_body(name="B", customFields={"base_rate": 1.0, "tier": "gold"}))
    fields = [f for f in CARDS["customFields"] if f["key"] != "tier"]  # drop "tier": B no longer conforms
    fields.append({"key": "region", "type": "text", "required": True})  # required: both fail
    result = client.update_category({"id": "cat_credit_cards", "customFields": fields}, ["custom_fields"])
    assert result.nonconforming_offers == 2
    assert client.get_offer(b.id).custom_fields["tier"] == "gold"  # nothing re-validated or changed
    relaxed = [f for f in fields if f["key"] != "region"]
    result = client.update_category({"id": "cat_credit_cards", "customFields": relaxed}, ["custom_fields"])
    assert result.nonconforming_offers == 1


def test_delete_category_in_use_is_refused_with_counts(client: Client) -> None:
    make_cards(client)
    client.create_sub_category({"categoryId": "cat_credit_cards", "name": "Premium"}, sub_category_id="sub_premium")
    client.create_offer(offer_body(name="A", subCategoryId="sub_premium"))
    client.create_offer(offer_body(name="B"))
    with pytest.raises(FailedPreconditionError) as caught:
        client.delete_category("cat_credit_cards")
    assert caught.value.reason == "CATEGORY_HAS_OFFERS"
    assert "2 offers" in caught.value.message
    with pytest.raises(FailedPreconditionError) as caught:
        client.delete_sub_category("sub_premium")
    assert caught.value.reason == "SUB_CATEGORY_HAS_OFFERS"
    assert "1 offer" in caught.value.message
    for offer in client.iter_offers():
        client.delete_offer(offer.id)
    with pytest.raises(FailedPreconditionError, match="1 sub-category"):
        client.delete_category("cat_credit_cards")
    client.delete_sub_category("sub_premium")
    client.delete_category("cat_credit_cards")
    assert client.list_categories().categories == []


# -- sub-categories ------------------------------------------------------------


def test_sub_category_crud_and_rules(client: Client) -> None:
    make_cards(client)
    client.create_category({"name": "Savings"}, category_id="cat_savings")
    sub = client.create_sub_category(
        {"categoryId": "cat_credit_cards", "name": "Premium"}, sub_category_id="sub_premium"
    )
    assert (sub.id, sub.category_id, sub.name) == ("sub_premium", "cat_credit_cards", "Premium")
    assert client.get_sub_category("sub_premium") == sub
    other = client.create_sub_category({"categoryId": "cat_savings", "name": "Premium"})  # unique within a category
    assert other.id.startswith("sub_")
    with pytest.raises(AlreadyExistsError):
        client.create_sub_category({"categoryId": "cat_credit_cards", "name": "Premium"})
    with pytest.raises(AlreadyExistsError):
        client.create_sub_category({"categoryId": "cat_savings", "name": "Other"}, sub_category_id="sub_premium")
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_sub_category({"categoryId": "cat_missing", "name": "X"})
    assert caught.value.fields == ["categoryId"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_sub_category({"categoryId": "cat_savings", "name": "X"}, sub_category_id="premium")
    assert caught.value.fields == ["subCategoryId"]
    assert [s.id for s in client.list_sub_categories(category_id="cat_credit_cards").sub_categories] == ["sub_premium"]
    assert len(client.list_sub_categories().sub_categories) == 2
    renamed = client.update_sub_category({"id": "sub_premium", "name": "Premium cards"})
    assert renamed.name == "Premium cards"
    with pytest.raises(InvalidArgumentError, match="cannot move"):
        client.update_sub_category({"id": "sub_premium", "categoryId": "cat_savings"})
    client.delete_sub_category(other.id)
    with pytest.raises(NotFoundError) as missing:
        client.get_sub_category(other.id)
    assert missing.value.reason == "SUB_CATEGORY_NOT_FOUND"


# -- offers and the hierarchy ----------------------------------------------------


def test_offer_categories_must_exist_and_sub_categories_belong(client: Client) -> None:
    make_cards(client)
    client.create_category({"name": "Savings"}, category_id="cat_savings")
    client.create_sub_category({"categoryId": "cat_savings", "name": "Kids"}, sub_category_id="sub_kids")
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer(offer_body(categoryId="cat_missing", customFields={}))
    assert caught.value.fields == ["categoryId"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer(offer_body(subCategoryId="sub_kids"))
    assert caught.value.fields == ["subCategoryId"]
    assert "belongs to category cat_savings" in caught.value.message
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer(offer_body(subCategoryId="sub_missing"))
    assert caught.value.fields == ["subCategoryId"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer({"name": "No category", "customFields": {"base_rate": 1}})
    assert caught.value.fields == ["customFields"]
    assert client.list_offers().offers == []


def test_custom_fields_are_validated_all_at_once(client: Client) -> None:
    make_cards(client)
    bad = {
        "annual_fee": "95",
        "tier": "bronze",
        "launch": "2026-02-30",
        "promo": "yes",
        "blurb": 5,
        "nickname": "x",
        "personalized_rate": 1,
    }
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer(offer_body(customFields=bad, name=""))
    by_field = {v.field: v.description for v in caught.value.field_violations}
    assert by_field["customFields.annual_fee"] == 'expected number, got "95"'
    assert by_field["customFields.tier"] == 'expected one of gold, silver, got "bronze"'
    assert "expected a date" in by_field["customFields.launch"]
    assert by_field["customFields.promo"] == 'expected boolean, got "yes"'
    assert by_field["customFields.blurb"] == "expected text, got 5"
    assert "unknown field" in by_field["customFields.nickname"]
    assert "offers cannot set it" in by_field["customFields.personalized_rate"]
    assert by_field["customFields.base_rate"] == "is required by the category"
    assert "name" in by_field


def test_defaults_are_stored_at_write(client: Client) -> None:
    make_cards(client)
    offer = client.create_offer(offer_body())
    assert dict(offer.custom_fields) == {"base_rate": 19.99, "annual_fee": 0.0}
    assert dict(client.get_offer(offer.id).custom_fields) == {"base_rate": 19.99, "annual_fee": 0.0}


def test_custom_fields_are_checked_only_when_a_write_touches_them(client: Client) -> None:
    make_cards(client)
    offer = client.create_offer(offer_body(status="draft"))
    tightened = [*CARDS["customFields"], {"key": "region", "type": "text", "required": True}]
    client.update_category({"id": "cat_credit_cards", "customFields": tightened}, ["custom_fields"])
    # A lifecycle move and a rename pass although the offer no longer conforms...
    assert client.set_offer_status(offer.id, "active").status == 2
    assert client.update_offer({"id": offer.id, "name": "Renamed"}).name == "Renamed"
    # ...a write to its custom fields does not.
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_offer({"id": offer.id, "customFields": {"base_rate": 18.0}})
    assert caught.value.fields == ["customFields.region"]
    fixed = client.update_offer({"id": offer.id, "customFields": {"region": "EU"}})
    assert fixed.custom_fields["region"] == "EU"


def test_archived_category_keeps_offers_readable_but_undecided(client: Client) -> None:
    make_cards(client)
    offer = client.create_offer(offer_body())
    client.update_category({"id": "cat_credit_cards", "status": "archived"})
    assert client.get_offer(offer.id).name == "Gold card"
    answer = client.decide("cust-1", decision_time=NOW, explain=True)
    assert list(answer.offers) == []
    (candidate,) = answer.candidates
    assert candidate.reason == decisions_pb2.DROP_REASON_CATEGORY_ARCHIVED
    assert "archived" in candidate.message
    with pytest.raises(InvalidArgumentError, match="archived"):
        client.create_offer(offer_body(name="New"))
    client.update_category({"id": "cat_credit_cards", "status": "active"})
    assert [o.offer_id for o in client.decide("cust-1", decision_time=NOW).offers] == [offer.id]


def test_personalised_rate_from_the_issue(client: Client) -> None:
    make_cards(client)
    offer = client.create_offer(offer_body())
    with_score = client.decide("cust-1", decision_time=NOW, attributes={"loyalty_score": 10})
    (decided,) = with_score.offers
    assert decided.offer_id == offer.id
    assert round(decided.personalization.fields["personalized_rate"].number_value, 2) == 17.99
    without = client.decide("cust-2", decision_time=NOW)
    (decided,) = without.offers
    assert decided.personalization.fields["personalized_rate"].WhichOneof("kind") == "null_value"


def test_computed_fields_use_offer_names_and_are_null_on_problems(client: Client) -> None:
    client.create_category(
        {
            "name": "Greetings",
            "customFields": [
                {"key": "divisor", "type": "number"},
                {
                    "key": "hello",
                    "type": "computed",
                    "outputType": "text",
                    "formula": 'concat("Hi ", coalesce(customer.first_name, "there"), " from ", offer.name)',
                },
                {"key": "ratio", "type": "computed", "outputType": "number", "formula": "offer.priority / divisor"},
            ],
        },
        category_id="cat_greetings",
    )
    client.create_offer(
        {
            "name": "Welcome",
            "categoryId": "cat_greetings",
            "status": "active",
            "priority": "high",
            "customFields": {"divisor": 0},
        }
    )
    (decided,) = client.decide("c", decision_time=NOW, attributes={"first_name": "Ada"}).offers
    assert decided.personalization["hello"] == "Hi Ada from Welcome"
    assert decided.personalization.fields["ratio"].WhichOneof("kind") == "null_value"  # division by zero


def test_decide_filters_by_category_and_sub_category(client: Client) -> None:
    make_cards(client)
    client.create_category({"name": "Savings"}, category_id="cat_savings")
    client.create_sub_category({"categoryId": "cat_credit_cards", "name": "Premium"}, sub_category_id="sub_premium")
    premium = client.create_offer(offer_body(name="Premium", subCategoryId="sub_premium"))
    plain = client.create_offer(offer_body(name="Plain"))
    saver = client.create_offer({"name": "Saver", "categoryId": "cat_savings", "status": "active"})

    def ids(**filters: Any) -> set[str]:
        return {o.offer_id for o in client.decide("c", decision_time=NOW, limit=50, **filters).offers}

    assert ids(category_ids=["cat_credit_cards"]) == {premium.id, plain.id}
    assert ids(category_ids=["cat_credit_cards", "cat_savings"]) == {premium.id, plain.id, saver.id}
    assert ids(sub_category_ids=["sub_premium"]) == {premium.id}
    assert ids(category_ids=["cat_savings"], sub_category_ids=["sub_premium"]) == set()


@pytest.mark.sqlite_only
def test_old_free_category_ids_become_real_categories(db_path: Path) -> None:
    # A database from before categories were resources: offers name free category ids.
    db = Database(db_path)
    migrations.apply(db, stop_before="m003_catalog")
    body = {
        "name": "Old offer",
        "short_desc": "",
        "category_id": "Cards",
        "sub_category_id": "premium",
        "priority": "high",
        "mandatory": False,
        "status": "active",
        "tags": [],
        "custom_fields": {},
    }
    db.execute(
        "INSERT INTO offers (tenant, id, name, status, category_id, created_us, updated_us, body) "
        "VALUES ('default', 'act_0000000000000001', 'Old offer', 'active', 'Cards', 1, 1, ?)",
        [json.dumps(body)],
    )
    db.conn.commit()
    db.conn.close()
    with ServerProcess(db_path) as server, Client(server.target) as client:
        category = client.get_category("Cards")
        assert category.name == "Cards"
        assert client.get_sub_category("premium").category_id == "Cards"
        with pytest.raises(FailedPreconditionError):
            client.delete_category("Cards")
        renamed = client.update_offer({"id": "act_0000000000000001", "name": "Still valid"})
        assert renamed.category_id == "Cards"
    backends.assert_sound(db_path)


def test_undecodable_custom_fields_are_reported_with_the_schema_problems(client: Client) -> None:
    client.create_category(
        {
            "name": "Strict",
            "customFields": [{"key": "base_rate", "type": "number", "required": True}, {"key": "n", "type": "text"}],
        },
        category_id="cat_strict",
    )
    offer = offers_pb2.Offer(name="Bad values", category_id="cat_strict")
    offer.custom_fields.update({"base_rate": float("nan"), "n": 5, "bogus": "x"})
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer(offer)
    by_field = {v.field: v.description for v in caught.value.field_violations}
    assert by_field == {
        "customFields.base_rate": "must be a finite number",
        "customFields.n": "expected text, got 5",
        "customFields.bogus": by_field["customFields.bogus"],
    }
    assert "unknown field" in by_field["customFields.bogus"]


def test_unknown_category_and_sub_category_are_both_reported(client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer({"name": "Lost", "categoryId": "cat_nope", "subCategoryId": "sub_nope"})
    assert sorted(caught.value.fields) == ["categoryId", "subCategoryId"]
