"""Issue 16's formula and validation cases over a real server, gRPC and REST.

Computed fields that grow text or cost are refused when written or answered
within bounds; bad "HH:MM", non-IANA zones and names of NUL characters are
INVALID_ARGUMENT (400) naming the field, with nothing written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.client import Client, InvalidArgumentError
from arbiter.server.domain.formulas import MAX_COMPUTED_FIELDS, MAX_TEXT_LENGTH, MAX_TOKENS

NOW = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)
CLIENT_RECEIVE_LIMIT = 4 * 1024 * 1024
NUL = "\x00\x00\x00\x00"


@pytest.fixture
def rest(server: ServerProcess, tenant: str) -> RestClient:
    return RestClient(server.http_url, tenant=tenant)


def computed(key: str, formula: str, output: str = "text") -> dict[str, Any]:
    return {"key": key, "type": "computed", "outputType": output, "formula": formula}


def chained_concat() -> dict[str, Any]:
    """The issue's shape: each field repeats the one before it (62 tokens in all, well within the budget)."""
    eight = ", ".join
    return {
        "name": "Chained",
        "customFields": [
            computed("a", f"concat({eight(['customer.x'] * 6)})"),
            computed("b", f"concat({eight(['a'] * 8)})"),
            computed("c", f"concat({eight(['b'] * 8)})"),
        ],
    }


def test_chained_concat_is_answered_with_capped_text(client: Client) -> None:
    client.create_category(chained_concat(), category_id="cat_chained")
    for i in range(10):
        client.create_offer({"name": f"Offer {i}", "categoryId": "cat_chained", "status": "active"})

    # Without the cap: a, b, c = 6,000, 48,000, 384,000 characters of 2 bytes per offer, 8.8 MB for ten.
    big = client.decide("cust-1", decision_time=NOW, limit=10, attributes={"x": "é" * 1_000})
    assert len(big.offers) == 10
    for offer in big.offers:
        assert {key: value.WhichOneof("kind") for key, value in offer.personalization.fields.items()} == {
            "a": "null_value",
            "b": "null_value",
            "c": "null_value",
        }
    assert big.ByteSize() < 100_000

    small = client.decide("cust-1", decision_time=NOW, limit=10, attributes={"x": "abc"})
    for offer in small.offers:
        assert offer.personalization["a"] == "abc" * 6
        assert offer.personalization["b"] == "abc" * 48
        assert offer.personalization.fields["c"].WhichOneof("kind") == "null_value"  # 1,152 > 1,000 characters


def test_ninety_nine_long_formulas_are_refused_and_nothing_is_written(client: Client) -> None:
    long = " + ".join(["rate * 2"] * 80)  # 319 tokens: within the old per-formula limit of 500
    category = {
        "name": "Expensive",
        "customFields": [{"key": "rate", "type": "number"}] + [computed(f"c{i}", long, "number") for i in range(99)],
    }
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category(category)
    assert caught.value.fields[0] == "customFields"
    assert f"at most {MAX_COMPUTED_FIELDS} computed fields, got 99" in caught.value.field_violations[0].description
    assert "customFields[1].formula" in caught.value.fields
    assert client.list_categories().categories == []


def test_the_token_budget_names_the_field_that_passes_it(client: Client, rest: RestClient) -> None:
    thirty_one = " + ".join(["rate"] * 16)
    n = MAX_TOKENS // 31 + 1  # the n-th formula of 31 tokens passes the budget
    fields = [{"key": "rate", "type": "number"}] + [computed(f"c{i}", thirty_one, "number") for i in range(n)]
    category = {"name": "Budget", "customFields": fields}
    expected = (
        f"has 31 tokens, which brings the category's formulas to {31 * n}; "
        f"all the formulas of a category may have at most {MAX_TOKENS} tokens together"
    )
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category(category)
    assert [(v.field, v.description) for v in caught.value.field_violations] == [
        (f"customFields[{n}].formula", expected)
    ]
    answer = rest.post("/api/v1/categories", category)
    assert answer.status == 400
    assert answer.violations() == {f"customFields[{n}].formula": expected}
    assert client.list_categories().categories == []
    client.create_category({"name": "Budget", "customFields": fields[:-1]})  # one fewer fits


def test_non_ascii_digits_in_a_formula_are_refused(client: Client) -> None:
    category = {"name": "Digits", "customFields": [computed("n", "١٢ + 1", "number")]}
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category(category)
    assert [(v.field, v.description) for v in caught.value.field_violations] == [
        ("customFields[0].formula", "unexpected character '١' at column 1")
    ]


def test_a_long_string_literal_is_refused(client: Client) -> None:
    category = {"name": "Long", "customFields": [computed("t", '"' + "x" * (MAX_TEXT_LENGTH + 1) + '"')]}
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category(category)
    assert caught.value.fields == ["customFields[0].formula"]


# -- "HH:MM", time zones and names --------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["1٢:00", "12:00\n", "０８:00"])
def test_bad_hhmm_is_refused_in_offers_and_policies(client: Client, rest: RestClient, bad: str) -> None:
    offer = {"name": "Window", "schedule": {"timeWindow": {"start": bad, "end": "18:00"}}}
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer(offer)
    assert caught.value.fields == ["schedule.timeWindow.start"]
    answer = rest.post("/api/v1/actions", offer)
    assert answer.status == 400 and list(answer.violations()) == ["schedule.timeWindow.start"]
    assert client.list_offers().offers == []

    policy = {"name": "Hours", "scope": "global", "timeWindow": {"start": "08:00", "end": bad}}
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_contact_policy(policy)
    assert caught.value.fields == ["timeWindow.end"]
    answer = rest.post("/api/v1/contact-policies", policy)
    assert answer.status == 400 and list(answer.violations()) == ["timeWindow.end"]
    assert client.list_contact_policies().contact_policies == []


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Europe/London\n"])
def test_zones_outside_the_iana_list_are_refused(client: Client, rest: RestClient, zone: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_tenant_settings(timezone=zone)
    assert caught.value.fields == ["timezone"]
    answer = rest.put("/api/v1/tenant/settings", {"timezone": zone})
    assert answer.status == 400 and list(answer.violations()) == ["timezone"]
    assert client.get_tenant_settings().timezone == "UTC"

    offer = {"name": "Zoned", "schedule": {"timezone": zone}}
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer(offer)
    assert caught.value.fields == ["schedule.timezone"]
    assert rest.post("/api/v1/actions", offer).status == 400
    assert client.list_offers().offers == []
    client.update_tenant_settings(timezone="Europe/London")  # a real zone still works


def test_names_of_nul_characters_are_refused_everywhere(client: Client, rest: RestClient) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_offer({"name": NUL})
    assert caught.value.fields == ["name"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_category({"name": NUL})
    assert caught.value.fields == ["name"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_contact_policy({"name": NUL, "scope": "global", "budgetExhausted": {}})
    assert caught.value.fields == ["name"]
    client.create_category({"name": "Parent"}, category_id="cat_parent")
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_sub_category({"categoryId": "cat_parent", "name": NUL})
    assert caught.value.fields == ["name"]

    for path, body in [
        ("/api/v1/actions", {"name": NUL}),
        ("/api/v1/categories", {"name": NUL}),
        ("/api/v1/contact-policies", {"name": NUL, "scope": "global", "budgetExhausted": {}}),
        ("/api/v1/categories/cat_parent/sub-categories", {"name": NUL}),
    ]:
        answer = rest.post(path, body)
        assert answer.status == 400, (path, answer.body)
        assert list(answer.violations()) == ["name"], path

    assert client.list_offers().offers == []
    assert [c.id for c in client.list_categories().categories] == ["cat_parent"]
    assert client.list_sub_categories(category_id="cat_parent").sub_categories == []
    assert client.list_contact_policies().contact_policies == []
