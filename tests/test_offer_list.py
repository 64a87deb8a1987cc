"""ListOffers: page sizes, page tokens, order, and filters across pages."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from offer_builders import create_in_status, ensure_hierarchy, other_client, valid_offer

from arbiter.client import Client, InvalidArgumentError
from arbiter.server.domain import pagination
from arbiter.v1 import offers_pb2


@pytest.fixture(autouse=True)
def _hierarchy(client: Client) -> None:
    """The categories the list filters select on."""
    ensure_hierarchy(client, "cat_a", "cat_b")


def _order_key(offer: offers_pb2.Offer) -> tuple[int, str]:
    return (offer.created_at.ToMicroseconds(), offer.id)


def _create_many(client: Client, count: int) -> list[offers_pb2.Offer]:
    return [client.create_offer(valid_offer(name=f"offer {i:04d}")) for i in range(count)]


def _pages(client: Client, **query: Any) -> list[list[offers_pb2.Offer]]:
    """Every page of a query, following next_page_token by hand."""
    pages, token = [], ""
    while True:
        page = client.list_offers(page_token=token, **query)
        pages.append(list(page.offers))
        token = page.next_page_token
        if not token:
            return pages
        assert len(pages) < 1000, "the page tokens never ran out"


def _ids(offers: list[offers_pb2.Offer]) -> list[str]:
    return [o.id for o in offers]


def test_pages_return_every_offer_exactly_once_in_creation_order(client: Client) -> None:
    created = _create_many(client, 120)

    pages = _pages(client, page_size=50)

    assert [len(p) for p in pages] == [50, 50, 20]
    listed = [o for page in pages for o in page]
    assert _ids(listed) == _ids(sorted(created, key=_order_key))
    assert len(set(_ids(listed))) == 120
    assert listed == [client.get_offer(o.id) for o in listed]


def test_default_page_size_is_50(client: Client) -> None:
    created = _create_many(client, 120)

    pages = _pages(client)

    assert [len(p) for p in pages] == [50, 50, 20]
    assert _ids([o for page in pages for o in page]) == _ids(sorted(created, key=_order_key))


def test_the_client_iterator_follows_every_page(client: Client) -> None:
    created = _create_many(client, 23)

    assert _ids(list(client.iter_offers(page_size=5))) == _ids(sorted(created, key=_order_key))


@pytest.mark.parametrize("page_size", [1000, 1001, 5000, 2**31 - 1])
def test_page_size_above_the_maximum_is_coerced_not_refused(client: Client, page_size: int) -> None:
    created = _create_many(client, 3)

    page = client.list_offers(page_size=page_size)

    assert _ids(list(page.offers)) == _ids(created)
    assert page.next_page_token == ""


@pytest.mark.parametrize(("requested", "size"), [(0, 50), (1, 1), (999, 999), (1000, 1000), (1001, 1000), (5000, 1000)])
def test_page_size_rule(requested: int, size: int) -> None:
    assert pagination.page_size(requested) == size


@pytest.mark.parametrize("page_size", [-1, -50, -(2**31)])
def test_negative_page_size_is_invalid(client: Client, page_size: int) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.list_offers(page_size=page_size)

    assert info.value.fields == ["pageSize"]


def test_an_exact_multiple_of_the_page_size_ends_without_an_empty_page(client: Client) -> None:
    created = _create_many(client, 10)

    pages = _pages(client, page_size=5)

    assert [len(p) for p in pages] == [5, 5]
    assert _ids([o for page in pages for o in page]) == _ids(created)


def test_an_empty_tenant_lists_nothing(client: Client) -> None:
    page = client.list_offers()

    assert list(page.offers) == [] and page.next_page_token == ""


def test_updates_and_deletes_keep_the_order_of_the_rest(client: Client) -> None:
    created = _create_many(client, 6)
    client.update_offer({"id": created[1].id, "name": "renamed, listed in the same place"})
    client.set_offer_status(created[2].id, "archived")
    client.delete_offer(created[4].id)

    listed = [o for page in _pages(client, page_size=2) for o in page]

    assert _ids(listed) == _ids([c for i, c in enumerate(created) if i != 4])
    assert listed[1].name == "renamed, listed in the same place"


def test_paging_continues_correctly_across_writes(client: Client) -> None:
    created = _create_many(client, 5)
    first = client.list_offers(page_size=2)
    client.delete_offer(created[2].id)
    client.delete_offer(created[1].id)  # the cursor's own offer
    late = client.create_offer(valid_offer())

    rest = [o for page in _pages_from(client, first.next_page_token, page_size=2) for o in page]

    assert _ids(list(first.offers)) == _ids(created[:2])
    assert _ids(rest) == _ids([created[3], created[4], late])


def _pages_from(client: Client, token: str, **query: Any) -> list[list[offers_pb2.Offer]]:
    pages = []
    while token:
        page = client.list_offers(page_token=token, **query)
        pages.append(list(page.offers))
        token = page.next_page_token
    return pages


# -- filters --------------------------------------------------------------------

STATUS_CYCLE = ("draft", "active", "paused", "archived")
CATEGORY_CYCLE = ("cat_a", "cat_b", "")
TAG_SETS = ((), ("x",), ("y",), ("x", "y"), ("x", "y", "z"), ("z", "x"))


def _catalogue(client: Client) -> list[tuple[offers_pb2.Offer, dict[str, Any]]]:
    """36 offers covering every mix of status, category and tag set, with their seed-shape facts."""
    made = []
    for i in range(36):
        facts: dict[str, Any] = {
            "status": STATUS_CYCLE[i % 4],
            "categoryId": CATEGORY_CYCLE[i % 3],
            "tags": list(TAG_SETS[i % 6]),
        }
        body = valid_offer(name=f"catalogue {i:02d}", categoryId=facts["categoryId"], tags=facts["tags"])
        made.append((create_in_status(client, facts["status"], body), facts))
    return made


FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("no_filter", {}),
    ("status_active", {"status": "active"}),
    ("status_archived", {"status": "archived"}),
    ("status_draft", {"status": "draft"}),
    ("one_category", {"category_ids": ["cat_a"]}),
    ("any_of_two_categories", {"category_ids": ["cat_a", "cat_b"]}),
    ("unknown_category", {"category_ids": ["cat_missing"]}),
    ("one_tag", {"tags": ["x"]}),
    ("all_of_two_tags", {"tags": ["x", "y"]}),
    ("all_of_three_tags", {"tags": ["z", "y", "x"]}),
    ("repeated_tag", {"tags": ["y", "y"]}),
    ("unknown_tag", {"tags": ["nope"]}),
    ("status_and_category", {"status": "paused", "category_ids": ["cat_b", "cat_a"]}),
    ("status_category_and_tags", {"status": "active", "category_ids": ["cat_b"], "tags": ["x"]}),
    ("category_and_tags", {"category_ids": ["cat_a"], "tags": ["y"]}),
]


def _matches(facts: dict[str, Any], query: dict[str, Any]) -> bool:
    if "status" in query and facts["status"] != query["status"]:
        return False
    if query.get("category_ids") and facts["categoryId"] not in query["category_ids"]:
        return False
    return set(query.get("tags", ())) <= set(facts["tags"])


@pytest.mark.parametrize("query", [pytest.param(q, id=i) for i, q in FILTERS])
def test_filters_select_the_right_offers_across_pages(client: Client, query: dict[str, Any]) -> None:
    catalogue = _catalogue(client)
    expected = [offer.id for offer, facts in catalogue if _matches(facts, query)]

    pages = _pages(client, page_size=4, **query)

    assert _ids([o for page in pages for o in page]) == expected
    assert all(len(page) == 4 for page in pages[:-1])
    if query:
        assert len(expected) < len(catalogue)


def test_filters_follow_updates(client: Client) -> None:
    offer = client.create_offer(valid_offer(categoryId="cat_a", tags=["old", "kept"]))
    client.create_offer(valid_offer(categoryId="cat_a", tags=["old"]))

    client.update_offer({"id": offer.id, "categoryId": "cat_b", "tags": ["new", "kept"], "status": "active"})

    assert _ids(list(client.iter_offers(tags=["new"]))) == [offer.id]
    assert offer.id not in _ids(list(client.iter_offers(tags=["old"])))
    assert _ids(list(client.iter_offers(tags=["kept", "new"]))) == [offer.id]
    assert _ids(list(client.iter_offers(category_ids=["cat_b"]))) == [offer.id]
    assert offer.id not in _ids(list(client.iter_offers(category_ids=["cat_a"])))
    assert _ids(list(client.iter_offers(status="active"))) == [offer.id]
    assert _ids(list(client.iter_offers(status="draft"))) != []
    client.delete_offer(offer.id)
    assert list(client.iter_offers(tags=["kept"])) == []


def test_the_filter_expectations_are_not_all_trivial() -> None:
    # Guard against a catalogue whose filters would pass vacuously.
    facts = [
        {"status": STATUS_CYCLE[i % 4], "categoryId": CATEGORY_CYCLE[i % 3], "tags": list(TAG_SETS[i % 6])}
        for i in range(36)
    ]
    counts = {name: sum(_matches(f, q) for f in facts) for name, q in FILTERS}
    assert counts["no_filter"] == 36
    assert counts["unknown_tag"] == counts["unknown_category"] == 0
    nontrivial = {name for name, n in counts.items() if 0 < n < 36}
    assert nontrivial >= {n for n, _ in FILTERS} - {"no_filter", "unknown_tag", "unknown_category"}


def test_an_unknown_status_filter_is_invalid(client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.list_offers(status=99)

    assert info.value.fields == ["status"]


@pytest.mark.parametrize(("filter_name", "path"), [("category_ids", "categoryIds"), ("tags", "tags")])
def test_too_many_filter_values_are_invalid(client: Client, filter_name: str, path: str) -> None:
    query: dict[str, Any] = {filter_name: [f"v{i}" for i in range(101)]}

    with pytest.raises(InvalidArgumentError) as info:
        client.list_offers(**query)

    assert info.value.fields == [path]


# -- page tokens ----------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!not base64!!!",
        "a",
        _b64("not json"),
        _b64(json.dumps({"x": 1})),
        _b64(json.dumps([1, 2, 3])),
        _b64(json.dumps({"q": "0" * 16, "c": 0, "i": "act_0000000000000000"})),
        _b64(json.dumps({"q": None, "c": "soon", "i": None})),
    ],
)
def test_a_garbage_page_token_is_invalid(client: Client, token: str) -> None:
    _create_many(client, 3)

    with pytest.raises(InvalidArgumentError) as info:
        client.list_offers(page_size=1, page_token=token)

    assert info.value.fields == ["pageToken"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"status": "active"}, {"status": "draft"}),
        ({"status": "active"}, {}),
        ({}, {"tags": ["x"]}),
        ({"tags": ["x"]}, {"tags": ["x", "y"]}),
        ({"category_ids": ["cat_a"]}, {"category_ids": ["cat_b"]}),
    ],
)
def test_a_token_used_with_different_filters_is_invalid(
    client: Client, first: dict[str, Any], second: dict[str, Any]
) -> None:
    for _ in range(3):
        client.create_offer(valid_offer(status="active", tags=["x", "y"], categoryId="cat_a"))
    token = client.list_offers(page_size=1, **first).next_page_token
    assert token

    with pytest.raises(InvalidArgumentError) as info:
        client.list_offers(page_size=1, page_token=token, **second)

    assert info.value.fields == ["pageToken"]


def test_a_token_with_the_same_filters_in_another_order_continues(client: Client) -> None:
    created = [client.create_offer(valid_offer(tags=["x", "y"], categoryId="cat_a")) for _ in range(3)]
    first = client.list_offers(page_size=2, tags=["x", "y"], category_ids=["cat_a", "cat_b"])

    rest = client.list_offers(
        page_size=2, tags=["y", "x"], category_ids=["cat_b", "cat_a"], page_token=first.next_page_token
    )

    assert _ids([*first.offers, *rest.offers]) == _ids(created)


def test_a_token_from_another_tenant_is_invalid(client: Client) -> None:
    _create_many(client, 3)
    with other_client(client) as other:
        _create_many(other, 3)
        foreign = other.list_offers(page_size=1).next_page_token
        assert foreign

        with pytest.raises(InvalidArgumentError) as info:
            client.list_offers(page_size=1, page_token=foreign)

    assert info.value.fields == ["pageToken"]
