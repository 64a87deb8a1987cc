"""Offer create, get and delete end to end, tenancy, and unique names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from offer_builders import all_offers, body_of, ensure_hierarchy, other_client, project, seed_body, valid_offer

from arbiter.client import AlreadyExistsError, Client, NotFoundError, offer_to_dict
from arbiter.v1 import offers_pb2

OFFER_ID = re.compile(r"act_[0-9a-f]{16}")


@pytest.fixture(autouse=True)
def _hierarchy(client: Client) -> None:
    """The seed's cat_credit_cards and sub_premium, which the seed's body refers to."""
    ensure_hierarchy(client, "cat_credit_cards")


def test_seed_create_body_is_stored_as_sent(client: Client) -> None:
    sent = seed_body()
    before = datetime.now(UTC)

    offer = client.create_offer(sent)

    assert OFFER_ID.fullmatch(offer.id), offer.id
    assert offer.HasField("created_at") and offer.HasField("updated_at")
    assert offer.created_at == offer.updated_at
    created = offer.created_at.ToDatetime(tzinfo=UTC)
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)
    assert offer.status == offers_pb2.OFFER_STATUS_DRAFT
    got = offer_to_dict(offer)
    assert got["status"] == "draft"
    # Field by field what was sent (customFields numbers come back as floats: 95 == 95.0).
    for key, value in sent.items():
        assert project(got[key], value) == value, key
    # Whatever the seed body did not send is empty, not invented.
    assert got["schedule"]["timezone"] == ""
    assert set(got) == {*sent, "id", "createdAt", "updatedAt"}


def test_get_returns_the_created_offer(client: Client) -> None:
    created = client.create_offer(seed_body())

    assert client.get_offer(created.id) == created


def test_create_ignores_output_only_fields_in_the_request(client: Client) -> None:
    offer = client.create_offer(
        valid_offer(id="act_0123456789abcdef", createdAt="2000-01-01T00:00:00Z", updatedAt="2000-01-01T00:00:00Z")
    )

    assert offer.id != "act_0123456789abcdef" and OFFER_ID.fullmatch(offer.id)
    assert offer.created_at.ToDatetime(tzinfo=UTC).year >= 2025
    assert offer.updated_at == offer.created_at
    with pytest.raises(NotFoundError) as missing:
        client.get_offer("act_0123456789abcdef")
    assert missing.value.reason == "OFFER_NOT_FOUND"


def test_ids_are_unique(client: Client) -> None:
    ids = {client.create_offer(valid_offer()).id for _ in range(20)}

    assert len(ids) == 20


@pytest.mark.parametrize("offer_id", ["act_0000000000000000", "act_ffffffffffffffff"])
def test_get_unknown_id_is_not_found(client: Client, offer_id: str) -> None:
    client.create_offer(valid_offer())

    with pytest.raises(NotFoundError) as info:
        client.get_offer(offer_id)

    assert info.value.reason == "OFFER_NOT_FOUND"


def test_another_tenants_offer_is_not_found_for_get_update_and_delete(client: Client) -> None:
    with other_client(client) as other:
        foreign = other.create_offer(valid_offer())

        with pytest.raises(NotFoundError) as got:
            client.get_offer(foreign.id)
        with pytest.raises(NotFoundError) as updated:
            client.update_offer({"id": foreign.id, "name": "hijacked"})
        with pytest.raises(NotFoundError) as deleted:
            client.delete_offer(foreign.id)

        assert got.value.reason == updated.value.reason == deleted.value.reason == "OFFER_NOT_FOUND"
        assert other.get_offer(foreign.id) == foreign
        assert foreign.id not in {o.id for o in all_offers(client)}


def test_delete_then_get_is_not_found(client: Client) -> None:
    keep = client.create_offer(valid_offer())
    doomed = client.create_offer(valid_offer())

    client.delete_offer(doomed.id)

    with pytest.raises(NotFoundError) as info:
        client.get_offer(doomed.id)
    assert info.value.reason == "OFFER_NOT_FOUND"
    assert [o.id for o in all_offers(client)] == [keep.id]
    with pytest.raises(NotFoundError) as missing:
        client.delete_offer(doomed.id)
    assert missing.value.reason == "OFFER_NOT_FOUND"


def test_delete_unknown_id_is_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError) as info:
        client.delete_offer("act_0000000000000000")

    assert info.value.reason == "OFFER_NOT_FOUND"


def test_two_tenants_can_use_the_same_name(client: Client) -> None:
    with other_client(client) as other:
        ensure_hierarchy(other, "cat_credit_cards")
        mine = client.create_offer(seed_body())
        theirs = other.create_offer(seed_body())

        assert mine.id != theirs.id
        assert mine.name == theirs.name == seed_body()["name"]
        assert client.get_offer(mine.id).name == other.get_offer(theirs.id).name


def test_names_are_unique_per_tenant(client: Client) -> None:
    first = client.create_offer(valid_offer(name="Gold card"))

    with pytest.raises(AlreadyExistsError) as info:
        client.create_offer(valid_offer(name="Gold card", shortDesc="a different offer"))

    assert info.value.reason == "OFFER_NAME_TAKEN"
    assert all_offers(client) == [first]


def test_names_compare_by_exact_match(client: Client) -> None:
    names = ["Gold card", "gold card", "GOLD CARD", "Gold card ", " Gold card", "Gold  card", "Göld card"]

    created = [client.create_offer(valid_offer(name=name)) for name in names]

    assert [o.name for o in created] == names
    assert [o.name for o in all_offers(client)] == names


def test_archived_offers_keep_their_name_taken(client: Client) -> None:
    archived = client.create_offer(valid_offer(name="Retired offer"))
    client.set_offer_status(archived.id, "archived")

    with pytest.raises(AlreadyExistsError):
        client.create_offer(valid_offer(name="Retired offer"))
    assert [o.id for o in all_offers(client)] == [archived.id]


def test_a_deleted_offers_name_is_free_again(client: Client) -> None:
    first = client.create_offer(valid_offer(name="Recycled"))
    client.delete_offer(first.id)

    second = client.create_offer(valid_offer(name="Recycled"))

    assert second.id != first.id and second.name == "Recycled"


@pytest.mark.parametrize("taken_status", ["draft", "archived"])
def test_renaming_onto_a_taken_name_is_already_exists(client: Client, taken_status: str) -> None:
    taken = client.create_offer(valid_offer(name="Taken"))
    if taken_status != "draft":
        client.set_offer_status(taken.id, taken_status)
    offer = client.create_offer(valid_offer(name="Mine"))

    with pytest.raises(AlreadyExistsError):
        client.update_offer({"id": offer.id, "name": "Taken"})
    with pytest.raises(AlreadyExistsError):
        client.update_offer({"id": offer.id, "name": "Taken"}, ["name"])

    assert client.get_offer(offer.id) == offer


def test_renaming_to_its_own_name_or_a_free_one_succeeds(client: Client) -> None:
    offer = client.create_offer(valid_offer(name="Mine"))

    same = client.update_offer({"id": offer.id, "name": "Mine"})
    renamed = client.update_offer({"id": offer.id, "name": "Yours"})

    assert same.name == "Mine"
    assert renamed.name == "Yours"
    assert body_of(renamed) == {**body_of(offer), "name": "Yours"}
    # The old name is free once the offer no longer uses it.
    assert client.create_offer(valid_offer(name="Mine")).name == "Mine"
