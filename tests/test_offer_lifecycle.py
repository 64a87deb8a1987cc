"""Offer lifecycle: every status move, legal and illegal, and create-time defaults."""

from __future__ import annotations

import itertools

import pytest
from offer_builders import create_in_status, ensure_hierarchy, full_offer, valid_offer

from arbiter.client import Client, FailedPreconditionError, InvalidArgumentError, offer_to_dict
from arbiter.v1 import offers_pb2

STATUSES = ("draft", "active", "paused", "archived")
LEGAL_MOVES = [
    ("draft", "active"),
    ("active", "paused"),
    ("paused", "active"),
    ("draft", "archived"),
    ("active", "archived"),
    ("paused", "archived"),
]
# Every move between two different states that is not legal.
ILLEGAL_MOVES = [(old, new) for old, new in itertools.permutations(STATUSES, 2) if (old, new) not in LEGAL_MOVES]

ILLEGAL_FROM_EDITABLE = [(old, new) for old, new in ILLEGAL_MOVES if old != "archived"]


@pytest.fixture(autouse=True)
def _hierarchy(client: Client) -> None:
    """The seed's cat_credit_cards and sub_premium, which full offers refer to."""
    ensure_hierarchy(client, "cat_credit_cards")


def _ids(moves: list[tuple[str, str]]) -> list[str]:
    return [f"{old}->{new}" for old, new in moves]


def test_the_move_tables_cover_every_pair() -> None:
    assert len(LEGAL_MOVES) + len(ILLEGAL_MOVES) == len(STATUSES) * (len(STATUSES) - 1)
    assert ("archived", "active") in ILLEGAL_MOVES and ("draft", "paused") in ILLEGAL_MOVES


@pytest.mark.parametrize(("old", "new"), LEGAL_MOVES, ids=_ids(LEGAL_MOVES))
def test_legal_moves_succeed(client: Client, old: str, new: str) -> None:
    offer = create_in_status(client, old, full_offer())
    assert offer_to_dict(offer)["status"] == old

    moved = client.set_offer_status(offer.id, new)

    assert offer_to_dict(moved)["status"] == new
    assert client.get_offer(offer.id) == moved
    # A lifecycle move changes the status and nothing else.
    expected = offer_to_dict(offer) | {"status": new, "updatedAt": offer_to_dict(moved)["updatedAt"]}
    assert offer_to_dict(moved) == expected


@pytest.mark.parametrize(("old", "new"), ILLEGAL_MOVES, ids=_ids(ILLEGAL_MOVES))
def test_illegal_moves_are_failed_precondition_naming_both_states(client: Client, old: str, new: str) -> None:
    offer = create_in_status(client, old)

    with pytest.raises(FailedPreconditionError) as info:
        client.set_offer_status(offer.id, new)

    assert info.value.reason == "INVALID_STATUS_TRANSITION"
    assert old in info.value.message and new in info.value.message
    assert client.get_offer(offer.id) == offer


@pytest.mark.parametrize(("old", "new"), ILLEGAL_FROM_EDITABLE, ids=_ids(ILLEGAL_FROM_EDITABLE))
def test_illegal_moves_are_refused_in_an_update_without_a_mask_too(client: Client, old: str, new: str) -> None:
    offer = create_in_status(client, old)

    with pytest.raises(FailedPreconditionError) as info:
        client.update_offer({"id": offer.id, "status": new, "shortDesc": "not applied either"})

    assert info.value.reason == "INVALID_STATUS_TRANSITION"
    assert client.get_offer(offer.id) == offer


@pytest.mark.parametrize("status", ["draft", "active", "paused"])
def test_staying_in_the_same_state_is_allowed(client: Client, status: str) -> None:
    offer = create_in_status(client, status)

    same = client.set_offer_status(offer.id, status)

    assert same.status == offer.status
    assert client.get_offer(offer.id).status == offer.status


def test_a_move_can_travel_with_other_changes_in_one_update(client: Client) -> None:
    offer = client.create_offer(valid_offer())

    moved = client.update_offer({"id": offer.id, "status": "active", "shortDesc": "live now"})

    assert moved.status == offers_pb2.OFFER_STATUS_ACTIVE
    assert moved.short_desc == "live now"


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_create_may_not_start_paused_or_archived(client: Client, status: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.create_offer(valid_offer(status=status))

    assert info.value.fields == ["status"]
    assert list(client.iter_offers()) == []


@pytest.mark.parametrize("status", ["draft", "active"])
def test_create_may_start_draft_or_active(client: Client, status: str) -> None:
    offer = client.create_offer(valid_offer(status=status))

    assert offer_to_dict(offer)["status"] == status


def test_unset_status_means_draft_and_unset_priority_means_medium(client: Client) -> None:
    offer = client.create_offer({"name": "Defaults"})

    assert offer.status == offers_pb2.OFFER_STATUS_DRAFT
    assert offer.priority == offers_pb2.PRIORITY_MEDIUM
    assert client.get_offer(offer.id) == offer


@pytest.mark.parametrize("priority", ["low", "medium", "high", "critical"])
def test_every_priority_is_kept(client: Client, priority: str) -> None:
    offer = client.create_offer(valid_offer(priority=priority))

    assert offer_to_dict(offer)["priority"] == priority
