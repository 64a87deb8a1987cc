"""Tenant isolation: two tenants with identical ids and names each see, change and learn from only their own data.

docs/rules.md "Security and limits": every resource belongs to one tenant; no call ever sees another tenant's
data, and a foreign id is simply NOT_FOUND. Both tenants authenticate with their own admin key (made with
the keys CLI), on a server WITH authentication.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from decide_helpers import DECISION_TIME
from serverproc import ServerProcess

from arbiter.client import (
    Client,
    InvalidArgumentError,
    NotFoundError,
    category_to_dict,
    message_to_dict,
    offer_to_dict,
    outcome,
    policy_to_dict,
)
from arbiter.v1 import decisions_pb2

pytest.register_assert_rewrite("auth_helpers")  # before its import: it is also loaded as a plugin below
from auth_helpers import cli_create_keys, client_for, key_id_of, mint, new_tenant  # noqa: E402

pytest_plugins = ["auth_helpers"]

EARLIER = DECISION_TIME - timedelta(hours=1)

# The same catalogue in both tenants: same caller-chosen category and sub-category ids, same offer and
# policy names, same model reference. Only the descriptions say whose it is.
SHARED_CATEGORIES = ("cat_cards", "cat_doomed")
SHARED_SUB_CATEGORIES = {"sub_gold": "cat_cards", "sub_bronze": "cat_cards"}
OFFERS: dict[str, dict[str, Any]] = {
    "Gold card": {
        "categoryId": "cat_cards",
        "subCategoryId": "sub_gold",
        "priority": "high",
        "tags": ["card", "gold"],
        "qualification": {"recency": 30},
    },
    "Silver card": {
        "categoryId": "cat_cards",
        "subCategoryId": "sub_gold",
        "priority": "medium",
        "tags": ["card"],
        "budget": {"maxImpressions": 2},
    },
    "Bronze card": {"categoryId": "cat_cards", "subCategoryId": "sub_bronze", "priority": "medium", "tags": ["card"]},
    "Model card": {"categoryId": "cat_cards", "priority": "low", "qualification": {"modelReference": "model_shared"}},
}
POLICY_NAME = "Bronze once a day"
PAUSED_POLICY_NAME = "Paused cooldown"


@dataclass
class World:
    """One tenant's identical catalogue, and an admin client of it."""

    letter: str
    tenant: str
    admin: Client
    offers: dict[str, str] = field(default_factory=dict)  # name -> id
    policy_id: str = ""
    paused_policy_id: str = ""
    key_ids: set[str] = field(default_factory=set)

    @property
    def private_category(self) -> str:
        """A category only this tenant has."""
        return f"cat_private_{self.letter}"

    @property
    def private_sub_category(self) -> str:
        return f"sub_private_{self.letter}"

    def whose(self) -> str:
        return f"of {self.tenant}"


def _build(world: World) -> None:
    admin = world.admin
    admin.update_tenant_settings(timezone="Europe/Paris" if world.letter == "a" else "Asia/Tokyo")
    for category_id in (*SHARED_CATEGORIES, world.private_category):
        admin.create_category({"name": category_id, "description": world.whose()}, category_id=category_id)
    subs = {**SHARED_SUB_CATEGORIES, world.private_sub_category: world.private_category}
    for sub_id, category_id in subs.items():
        body = {"categoryId": category_id, "name": sub_id, "description": world.whose()}
        admin.create_sub_category(body, sub_category_id=sub_id)
    for name, body in OFFERS.items():
        world.offers[name] = admin.create_offer(
            {"name": name, "status": "active", "shortDesc": world.whose(), **body}
        ).id
    world.policy_id = admin.create_contact_policy(
        {
            "name": POLICY_NAME,
            "description": world.whose(),
            "scope": "sub_category",
            "scopeId": "sub_bronze",
            "frequencyCap": {"maxPerDay": 1},
        }
    ).id
    world.paused_policy_id = admin.create_contact_policy(
        {
            "name": PAUSED_POLICY_NAME,
            "description": world.whose(),
            "status": "paused",
            "scope": "global",
            "cooldown": {"minHours": 1},
        }
    ).id
    world.key_ids.add(key_id_of(mint(admin, "decide", name="backend")))


@pytest.fixture(scope="module")
def worlds(auth_server: ServerProcess) -> Iterator[tuple[World, World]]:
    tenants = (new_tenant("iso-a"), new_tenant("iso-b"))
    secrets_ = cli_create_keys(auth_server.db, [(tenant, "admin") for tenant in tenants])
    built = []
    for letter, tenant, secret in zip("ab", tenants, secrets_, strict=True):
        world = World(letter, tenant, client_for(auth_server, secret), key_ids={key_id_of(secret)})
        _build(world)
        built.append(world)
    a, b = built
    try:
        yield a, b
    finally:
        a.admin.close()
        b.admin.close()


@pytest.fixture(params=["a-to-b", "b-to-a"])
def pair(request: pytest.FixtureRequest, worlds: tuple[World, World]) -> tuple[World, World]:
    """(acting tenant, the other tenant), both ways round."""
    a, b = worlds
    return (a, b) if request.param == "a-to-b" else (b, a)


def _snapshot(world: World) -> dict[str, Any]:
    """Everything a tenant has, as its own admin reads it."""
    admin = world.admin
    return {
        "offers": [offer_to_dict(o) for o in admin.iter_offers()],
        "categories": [category_to_dict(c) for c in admin.list_categories(page_size=1000).categories],
        "sub_categories": [message_to_dict(s) for s in admin.list_sub_categories(page_size=1000).sub_categories],
        "policies": [policy_to_dict(p) for p in admin.list_contact_policies(page_size=1000).contact_policies],
        "keys": [message_to_dict(k) for k in admin.list_api_keys(page_size=1000).api_keys],
        "settings": message_to_dict(admin.get_tenant_settings()),
        "stats": {name: message_to_dict(admin.get_offer_stats(oid)) for name, oid in world.offers.items()},
    }


def _decide(client: Client, customer: str = "cust-1", **kwargs: Any) -> decisions_pb2.DecideResponse:
    """Decide at the pinned instant, recording nothing, with every candidate's fate."""
    kwargs.setdefault("dry_run", True)
    return client.decide(customer, decision_time=DECISION_TIME, explain=True, limit=50, **kwargs)


def _fates(response: decisions_pb2.DecideResponse) -> dict[str, str]:
    return {
        c.offer_id: "SELECTED" if c.selected else decisions_pb2.DropReason.Name(c.reason).removeprefix("DROP_REASON_")
        for c in response.candidates
    }


# --------------------------------------------------------------------------
# Reads: each tenant sees only its own data
# --------------------------------------------------------------------------


def test_each_tenant_lists_and_gets_only_its_own_offers(worlds: tuple[World, World]) -> None:
    a, b = worlds
    assert set(a.offers.values()).isdisjoint(b.offers.values())
    for world in worlds:
        listed = list(world.admin.iter_offers())
        assert {o.id for o in listed} == set(world.offers.values())
        assert sorted(o.name for o in listed) == sorted(OFFERS)
        assert {o.short_desc for o in listed} == {world.whose()}
        filtered = world.admin.list_offers(category_ids=["cat_cards"], tags=["card"]).offers
        assert {o.id for o in filtered} == {world.offers[n] for n in ("Gold card", "Silver card", "Bronze card")}
        for name, offer_id in world.offers.items():
            offer = world.admin.get_offer(offer_id)
            assert (offer.name, offer.short_desc) == (name, world.whose())


def test_each_tenant_reads_only_its_own_categories_and_sub_categories(worlds: tuple[World, World]) -> None:
    for world in worlds:
        admin = world.admin
        categories = admin.list_categories(page_size=1000).categories
        assert {c.id for c in categories} <= {*SHARED_CATEGORIES, world.private_category}
        assert {"cat_cards", world.private_category} <= {c.id for c in categories}
        assert all(world.tenant in c.description for c in categories)
        assert world.tenant in admin.get_category("cat_cards").description

        subs = admin.list_sub_categories(page_size=1000).sub_categories
        assert {s.id for s in subs} == {*SHARED_SUB_CATEGORIES, world.private_sub_category}
        assert {s.description for s in subs} == {world.whose()}
        in_cards = admin.list_sub_categories(category_id="cat_cards", page_size=1000).sub_categories
        assert {s.id for s in in_cards} == set(SHARED_SUB_CATEGORIES)
        assert admin.get_sub_category("sub_gold").description == world.whose()


def test_each_tenant_reads_only_its_own_policies_keys_and_settings(worlds: tuple[World, World]) -> None:
    a, b = worlds
    assert a.policy_id != b.policy_id
    for world in worlds:
        admin = world.admin
        policies = admin.list_contact_policies(page_size=1000).contact_policies
        assert [(p.id, p.name, p.description) for p in policies] == [
            (world.policy_id, POLICY_NAME, world.whose()),
            (world.paused_policy_id, PAUSED_POLICY_NAME, world.whose()),
        ]
        assert admin.get_contact_policy(world.policy_id).description == world.whose()

        assert {k.id for k in admin.list_api_keys(page_size=1000).api_keys} == world.key_ids

        settings = admin.get_tenant_settings()
        assert settings.tenant_id == world.tenant
        assert settings.timezone == ("Europe/Paris" if world.letter == "a" else "Asia/Tokyo")


def test_each_tenant_gets_only_its_own_offer_stats(worlds: tuple[World, World]) -> None:
    for world in worlds:
        for offer_id in world.offers.values():
            stats = world.admin.get_offer_stats(offer_id)
            assert stats.offer_id == offer_id
            assert stats.timezone == world.admin.get_tenant_settings().timezone


def test_decide_returns_and_explains_only_own_offers(worlds: tuple[World, World]) -> None:
    for world in worlds:
        for kwargs in ({}, {"category_ids": ["cat_cards"]}, {"tags": ["card"]}, {"sub_category_ids": ["sub_gold"]}):
            response = _decide(world.admin, "cust-reader", **kwargs)
            assert response.offers, kwargs
            assert {o.offer_id for o in response.offers} <= set(world.offers.values())
            assert {c.offer_id for c in response.candidates} <= set(world.offers.values())
        everything = _decide(world.admin, "cust-reader")
        assert {c.offer_id for c in everything.candidates} == set(world.offers.values())
        assert sorted(c.name for c in everything.candidates) == sorted(OFFERS)


# --------------------------------------------------------------------------
# A foreign id is NOT_FOUND everywhere, and changes nothing
# --------------------------------------------------------------------------

ForeignCall = Callable[[Client, World], object]

FOREIGN_CALLS: dict[str, ForeignCall] = {
    "get-offer": lambda c, w: c.get_offer(w.offers["Gold card"]),
    "update-offer": lambda c, w: c.update_offer({"id": w.offers["Gold card"], "shortDesc": "hijacked"}),
    "archive-offer": lambda c, w: c.set_offer_status(w.offers["Gold card"], "archived"),
    "delete-offer": lambda c, w: c.delete_offer(w.offers["Silver card"]),
    "force-delete-offer": lambda c, w: c.delete_offer(w.offers["Bronze card"], force=True),
    "offer-stats": lambda c, w: c.get_offer_stats(w.offers["Gold card"]),
    "record-outcome": lambda c, w: c.record_outcome("cust-1", w.offers["Silver card"], "impression", uuid.uuid4().hex),
    "get-policy": lambda c, w: c.get_contact_policy(w.policy_id),
    "update-policy": lambda c, w: c.update_contact_policy({"id": w.policy_id, "description": "hijacked"}),
    "pause-policy": lambda c, w: c.update_contact_policy({"id": w.policy_id, "status": "paused"}, ["status"]),
    "delete-policy": lambda c, w: c.delete_contact_policy(w.policy_id),
    "get-category": lambda c, w: c.get_category(w.private_category),
    "update-category": lambda c, w: c.update_category({"id": w.private_category, "description": "hijacked"}),
    "delete-category": lambda c, w: c.delete_category(w.private_category),
    "get-sub-category": lambda c, w: c.get_sub_category(w.private_sub_category),
    "update-sub-category": lambda c, w: c.update_sub_category(
        {"id": w.private_sub_category, "description": "hijacked"}
    ),
    "delete-sub-category": lambda c, w: c.delete_sub_category(w.private_sub_category),
    "get-key": lambda c, w: c.get_api_key(sorted(w.key_ids)[0]),
    "revoke-key": lambda c, w: c.revoke_api_key(sorted(w.key_ids)[0]),
}


@pytest.mark.parametrize("name", FOREIGN_CALLS)
def test_a_foreign_id_is_not_found_and_changes_nothing(pair: tuple[World, World], name: str) -> None:
    actor, victim = pair
    before = _snapshot(victim)

    with pytest.raises(NotFoundError) as missing:
        FOREIGN_CALLS[name](actor.admin, victim)

    nouns = {"sub-category": "SUB_CATEGORY", "category": "CATEGORY", "policy": "POLICY", "key": "KEY"}
    noun = next((reason for word, reason in nouns.items() if word in name), "OFFER")  # the rest name offers
    assert missing.value.reason == f"{noun}_NOT_FOUND"
    assert _snapshot(victim) == before


@pytest.mark.parametrize("name", ["get-category", "update-category", "delete-category", "update-sub-category"])
def test_a_shared_category_id_acts_on_the_callers_own(worlds: tuple[World, World], name: str) -> None:
    """`cat_cards` and `sub_gold` exist in both tenants: a call naming one reaches the caller's, never the other's."""
    a, b = worlds
    before = _snapshot(b)
    if name == "get-category":
        assert a.admin.get_category("cat_cards").description == a.whose()
    elif name == "update-category":
        updated = a.admin.update_category({"id": "cat_cards", "description": f"renamed {a.whose()}"})
        assert updated.category.description == f"renamed {a.whose()}"
        a.admin.update_category({"id": "cat_cards", "description": a.whose()})
    elif name == "update-sub-category":
        updated_sub = a.admin.update_sub_category({"id": "sub_gold", "description": f"renamed {a.whose()}"})
        assert updated_sub.description == f"renamed {a.whose()}"
        a.admin.update_sub_category({"id": "sub_gold", "description": a.whose()})
    else:
        a.admin.delete_category("cat_doomed")
        with pytest.raises(NotFoundError) as missing:
            a.admin.get_category("cat_doomed")
        assert missing.value.reason == "CATEGORY_NOT_FOUND"
    assert _snapshot(b) == before
    assert b.admin.get_category("cat_cards").description == b.whose()


def test_another_tenants_ids_are_free_to_take(worlds: tuple[World, World]) -> None:
    a, b = worlds
    before = _snapshot(b)
    taken = a.admin.create_category({"name": "borrowed id", "description": a.whose()}, category_id=b.private_category)
    try:
        assert taken.id == b.private_category
        assert a.admin.get_category(b.private_category).description == a.whose()
        assert _snapshot(b) == before
    finally:
        a.admin.delete_category(b.private_category)
    assert b.admin.get_category(b.private_category).description == b.whose()


def test_references_to_foreign_resources_are_invalid(pair: tuple[World, World]) -> None:
    actor, victim = pair
    before = _snapshot(victim)
    foreign_offer = victim.offers["Gold card"]

    with pytest.raises(InvalidArgumentError) as bad_category:
        actor.admin.create_offer({"name": f"stray {uuid.uuid4().hex}", "categoryId": victim.private_category})
    assert bad_category.value.fields == ["categoryId"]

    with pytest.raises(InvalidArgumentError) as bad_move:
        actor.admin.update_offer({"id": actor.offers["Model card"], "categoryId": victim.private_category})
    assert bad_move.value.fields == ["categoryId"]

    with pytest.raises(InvalidArgumentError) as bad_parent:
        actor.admin.create_sub_category({"categoryId": victim.private_category, "name": f"stray {uuid.uuid4().hex}"})
    assert bad_parent.value.fields == ["categoryId"]

    with pytest.raises(InvalidArgumentError) as bad_scope:
        actor.admin.create_contact_policy(
            {
                "name": f"stray {uuid.uuid4().hex}",
                "scope": "offer",
                "scopeId": foreign_offer,
                "cooldown": {"minHours": 1},
            }
        )
    assert bad_scope.value.fields == ["scopeId"]

    with pytest.raises(InvalidArgumentError) as bad_batch:
        actor.admin.record_outcomes([outcome("cust-1", foreign_offer, "impression", uuid.uuid4().hex)])
    assert bad_batch.value.fields == ["outcomes[0].offerId"]

    assert _snapshot(victim) == before


LISTS: dict[str, Callable[[Client, str], tuple[list[str], str]]] = {
    "offers": lambda c, t: _page(c.list_offers(page_size=1, page_token=t), "offers"),
    "categories": lambda c, t: _page(c.list_categories(page_size=1, page_token=t), "categories"),
    "sub-categories": lambda c, t: _page(c.list_sub_categories(page_size=1, page_token=t), "sub_categories"),
    "policies": lambda c, t: _page(c.list_contact_policies(page_size=1, page_token=t), "contact_policies"),
    "keys": lambda c, t: _page(c.list_api_keys(page_size=1, page_token=t), "api_keys"),
}


def _page(response: Any, field_name: str) -> tuple[list[str], str]:
    return [item.id for item in getattr(response, field_name)], response.next_page_token


@pytest.mark.parametrize("listing", LISTS)
def test_a_foreign_page_token_is_invalid(pair: tuple[World, World], listing: str) -> None:
    actor, victim = pair
    ids, token = LISTS[listing](victim.admin, "")
    assert ids and token
    with pytest.raises(InvalidArgumentError):
        LISTS[listing](actor.admin, token)
    # The token still pages through its own tenant's list.
    assert LISTS[listing](victim.admin, token)[0]


def test_listing_sub_categories_of_a_foreign_category_shows_none(pair: tuple[World, World]) -> None:
    actor, victim = pair
    assert list(actor.admin.list_sub_categories(category_id=victim.private_category).sub_categories) == []


# --------------------------------------------------------------------------
# Outcomes: idempotency keys and learning are per tenant
# --------------------------------------------------------------------------


def test_idempotency_keys_are_per_tenant(worlds: tuple[World, World]) -> None:
    a, b = worlds
    key = f"shared-{uuid.uuid4().hex}"
    customer = "cust-idem"

    first_a = a.admin.record_outcome(customer, a.offers["Gold card"], "click", key)
    first_b = b.admin.record_outcome(customer, b.offers["Gold card"], "click", key)

    recorded = decisions_pb2.OUTCOME_STATUS_RECORDED
    duplicate = decisions_pb2.OUTCOME_STATUS_DUPLICATE
    assert (first_a.status, first_b.status) == (recorded, recorded)
    assert first_a.outcome_id != first_b.outcome_id
    again_a = a.admin.record_outcome(customer, a.offers["Gold card"], "click", key)
    again_b = b.admin.record_outcome(customer, b.offers["Gold card"], "click", key)
    assert (again_a.status, again_a.outcome_id) == (duplicate, first_a.outcome_id)
    assert (again_b.status, again_b.outcome_id) == (duplicate, first_b.outcome_id)

    bulk_key = f"shared-bulk-{uuid.uuid4().hex}"
    for world in worlds:
        (result,) = world.admin.record_outcomes([outcome(customer, world.offers["Gold card"], "dismiss", bulk_key)])
        assert result.status == recorded, world.tenant


def test_outcomes_of_one_tenant_never_change_the_others_decide(pair: tuple[World, World]) -> None:
    actor, victim = pair
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    victim_before = _decide(victim.admin, customer)
    victim_stats = {oid: message_to_dict(victim.admin.get_offer_stats(oid)) for oid in victim.offers.values()}
    actor_before = _fates(_decide(actor.admin, customer))
    assert set(actor_before.values()) == {"SELECTED"}

    gold, silver, bronze, model = (actor.offers[n] for n in ("Gold card", "Silver card", "Bronze card", "Model card"))
    events = [
        outcome(customer, gold, "impression", uuid.uuid4().hex, occurred_at=EARLIER),  # recency
        outcome(customer, bronze, "impression", uuid.uuid4().hex, occurred_at=EARLIER),  # the daily cap policy
        *(
            outcome(f"{customer}-{n}", silver, "impression", uuid.uuid4().hex, occurred_at=EARLIER)  # the budget
            for n in range(2)
        ),
    ]
    for n in range(3):  # the adaptive model: 3 impressions, each followed by a click
        events.append(outcome(f"{customer}-m{n}", model, "impression", uuid.uuid4().hex, occurred_at=EARLIER))
        events.append(
            outcome(f"{customer}-m{n}", model, "click", uuid.uuid4().hex, occurred_at=EARLIER + timedelta(minutes=1))
        )
    actor.admin.record_outcomes(events)
    _decide(actor.admin, f"{customer}-shown", dry_run=False, record_impressions=True)

    # The actor's own Decide changed …
    after = _decide(actor.admin, customer)
    assert _fates(after) == {
        gold: "RECENCY",
        silver: "MAX_IMPRESSIONS_REACHED",
        bronze: "CONTACT_POLICY",
        model: "SELECTED",
    }
    (learned,) = [o for o in after.offers if o.offer_id == model]
    assert learned.propensity > 0.5
    assert actor.admin.get_offer_stats(model).model_trials >= 3

    # … the other tenant's, with the same names, ids of categories, customer and model reference, did not.
    victim_after = _decide(victim.admin, customer)
    assert list(victim_after.offers) == list(victim_before.offers)
    assert list(victim_after.candidates) == list(victim_before.candidates)
    assert {oid: message_to_dict(victim.admin.get_offer_stats(oid)) for oid in victim.offers.values()} == victim_stats
