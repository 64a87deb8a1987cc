"""Offers are durable: they survive a graceful restart and a kill -9 of the server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2
from offer_builders import all_offers, create_in_status, ensure_hierarchy, full_offer, valid_offer
from serverproc import ServerProcess

from arbiter.client import AlreadyExistsError, Client, NotFoundError
from arbiter.v1 import offers_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
OFFER_SERVICE = "arbiter.v1.OfferService"


def _tenant() -> str:
    return "t-" + uuid.uuid4().hex[:16]


def _assert_serving(process: ServerProcess) -> None:
    assert process.health() == SERVING
    assert process.health(OFFER_SERVICE) == SERVING


def _populate(client: Client) -> tuple[list[offers_pb2.Offer], offers_pb2.Offer]:
    """Offers in every status with every field set, some edited; and one deleted offer."""
    ensure_hierarchy(client, "cat_credit_cards", "cat_loans")
    offers = [create_in_status(client, status, full_offer()) for status in ("draft", "active", "paused", "archived")]
    # Custom fields of every type the schema knows, unicode text included.
    custom_fields = {"note": "ünïcode ✓ 🎉", "apr": 0.1, "flag": False, "tier": "silver", "launch": "2026-02-28"}
    offers.append(
        client.create_offer(valid_offer(name="ünïcode ✓ 🎉", categoryId="cat_loans", customFields=custom_fields))
    )
    offers[0] = client.update_offer(
        {"id": offers[0].id, "budget": {"maxImpressions": 0}, "schedule": {"startDate": "2026-03-15T00:00:00.123456Z"}}
    )
    offers[1] = client.update_offer({"id": offers[1].id}, ["qualification", "custom_fields.annual_fee"])
    deleted = client.create_offer(valid_offer())
    client.delete_offer(deleted.id)
    return offers, deleted


def test_offers_survive_a_graceful_restart(db_path: Path) -> None:
    tenant, other_tenant = _tenant(), _tenant()
    with ServerProcess(db_path) as first:
        _assert_serving(first)
        with Client(first.target, tenant=tenant) as client, Client(first.target, tenant=other_tenant) as other:
            offers, deleted = _populate(client)
            theirs = other.create_offer(valid_offer())
            before = all_offers(client)
        assert first.stop() == 0

    with ServerProcess(db_path) as second:
        _assert_serving(second)
        with Client(second.target, tenant=tenant) as client, Client(second.target, tenant=other_tenant) as other:
            assert all_offers(client) == before
            assert [o.id for o in before] == [o.id for o in offers]
            for offer in offers:
                assert client.get_offer(offer.id) == offer
            assert [o.status for o in before] == [
                offers_pb2.OFFER_STATUS_DRAFT,
                offers_pb2.OFFER_STATUS_ACTIVE,
                offers_pb2.OFFER_STATUS_PAUSED,
                offers_pb2.OFFER_STATUS_ARCHIVED,
                offers_pb2.OFFER_STATUS_DRAFT,
            ]
            with pytest.raises(NotFoundError) as missing:
                client.get_offer(deleted.id)
            assert missing.value.reason == "OFFER_NOT_FOUND"
            assert all_offers(other) == [theirs]
            # The columns and tables that List filters on were restored with the offers.
            assert list(client.iter_offers(status="paused")) == [offers[2]]
            assert list(client.iter_offers(tags=["rewards", "q1-campaign"])) == offers[:4]
            assert list(client.iter_offers(category_ids=["cat_credit_cards"])) == offers[:4]
            with pytest.raises(NotFoundError) as missing:
                client.get_offer(theirs.id)
            assert missing.value.reason == "OFFER_NOT_FOUND"

            # The restarted server keeps enforcing what the data implies.
            with pytest.raises(AlreadyExistsError):
                client.create_offer(valid_offer(name=offers[3].name))
            edited = client.set_offer_status(offers[1].id, "paused")
            assert edited.created_at == offers[1].created_at
            assert edited.updated_at.ToMicroseconds() > offers[1].updated_at.ToMicroseconds()
            assert all_offers(client)[-1].id == offers[-1].id


def test_acknowledged_writes_survive_kill_9(db_path: Path) -> None:
    tenant = _tenant()
    with ServerProcess(db_path) as first, Client(first.target, tenant=tenant) as client:
        offers, deleted = _populate(client)
        before = all_offers(client)
        first.kill()

    with ServerProcess(db_path) as second, Client(second.target, tenant=tenant) as client:
        _assert_serving(second)
        assert all_offers(client) == before
        assert [client.get_offer(o.id) for o in offers] == offers
        with pytest.raises(NotFoundError) as missing:
            client.get_offer(deleted.id)
        assert missing.value.reason == "OFFER_NOT_FOUND"
