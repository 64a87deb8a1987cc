"""Well-formed requests carrying one hostile value where the server stores or computes with it.

test_fuzz.py sends hostile values in otherwise empty messages, which most
validation refuses early; these requests are valid but for the one value,
so they reach the code that used to fail with INTERNAL: a decision or
outcome at the edge of Timestamp's range in a time zone far from UTC, a
page token forged with the right fingerprint, a NaN field default.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.client import Client
from arbiter.server.domain.pagination import query_fingerprint
from arbiter.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    contact_policies_pb2,
    contact_policies_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    offers_pb2,
    offers_pb2_grpc,
)

TENANT = "edges"
METADATA = (("x-tenant-id", TENANT),)
FIRST_SECOND = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())  # Timestamp's first representable second
LAST_SECOND = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())  # and its last
DAY = 86_400
# The zones furthest ahead of and behind UTC: their local day at Timestamp's edges is outside the calendar.
ZONES = ("Pacific/Kiritimati", "Etc/GMT+12", "UTC")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("edges") / "arbiter.db", http=True) as process:
        with Client(process.target, tenant=TENANT) as client:
            client.create_offer({"name": "Edge offer", "status": "active", "qualification": {"modelReference": "m"}})
        yield process


def _offer_id(server: ServerProcess) -> str:
    with Client(server.target, tenant=TENANT) as client:
        return client.list_offers().offers[0].id


def _set_zone(server: ServerProcess, zone: str) -> None:
    with Client(server.target, tenant=TENANT) as client:
        client.update_tenant_settings(timezone=zone)


def _answer(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    """The status `call(*args, **kwargs)` ends with, and its message."""
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("seconds", [FIRST_SECOND, LAST_SECOND])
def test_a_decision_or_outcome_at_timestamps_edge_is_refused_naming_the_field(
    server: ServerProcess, zone: str, seconds: int
) -> None:
    _set_zone(server, zone)
    moment = timestamp_pb2.Timestamp(seconds=seconds)
    offer_id = _offer_id(server)
    with server.channel() as channel:
        decisions = decisions_pb2_grpc.DecisionServiceStub(channel)
        for record in (False, True):
            code, details = _answer(
                decisions.Decide,
                decisions_pb2.DecideRequest(customer_id="c", decision_time=moment, record_impressions=record),
                metadata=METADATA,
                timeout=10,
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT, details
            assert "decisionTime" in details and "0001-01-02T00:00:00Z" in details
        code, details = _answer(
            lambda: decisions.WhyNot(
                decisions_pb2.WhyNotRequest(customer_id="c", offer_id=offer_id, decision_time=moment),
                metadata=METADATA,
                timeout=10,
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "decisionTime" in details, details
        outcome = decisions_pb2.Outcome(
            customer_id="c",
            offer_id=offer_id,
            type=decisions_pb2.OUTCOME_TYPE_IMPRESSION,
            idempotency_key=f"edge-{zone}-{seconds}",
            occurred_at=moment,
        )
        code, details = _answer(
            lambda: decisions.RecordOutcome(
                decisions_pb2.RecordOutcomeRequest(outcome=outcome), metadata=METADATA, timeout=10
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "occurredAt" in details, details


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("seconds", [FIRST_SECOND + DAY, LAST_SECOND - DAY])
def test_the_first_and_last_accepted_days_are_decided_and_recorded(
    server: ServerProcess, zone: str, seconds: int
) -> None:
    _set_zone(server, zone)
    moment = timestamp_pb2.Timestamp(seconds=seconds)
    offer_id = _offer_id(server)
    with server.channel() as channel:
        decisions = decisions_pb2_grpc.DecisionServiceStub(channel)
        answer = decisions.Decide(
            decisions_pb2.DecideRequest(customer_id=f"c-{zone}", decision_time=moment, record_impressions=True),
            metadata=METADATA,
            timeout=10,
        )
        assert [offer.offer_id for offer in answer.offers] == [offer_id]
        click = decisions_pb2.Outcome(
            customer_id=f"c-{zone}",
            offer_id=offer_id,
            type=decisions_pb2.OUTCOME_TYPE_CLICK,
            idempotency_key=f"click-{zone}-{seconds}",
            occurred_at=moment,
        )
        recorded = decisions.RecordOutcome(
            decisions_pb2.RecordOutcomeRequest(outcome=click), metadata=METADATA, timeout=10
        )
        assert recorded.result.outcome_id


def test_edge_instants_over_rest_are_400_naming_the_field(server: ServerProcess) -> None:
    rest = RestClient(server.http_url, tenant=TENANT)
    answer = rest.post("/api/v1/decide", {"customerId": "c", "decisionTime": "9999-12-31T23:59:59Z"})
    assert answer.status == 400 and "decisionTime" in answer.violations()
    answer = rest.post(
        "/api/v1/outcomes",
        {
            "customerId": "c",
            "offerId": _offer_id(server),
            "type": "impression",
            "idempotencyKey": "rest-edge",
            "occurredAt": "0001-01-01T00:00:00Z",
        },
    )
    assert answer.status == 400 and "occurredAt" in answer.violations()


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _forged_tokens(fingerprint: str) -> list[str]:
    """Tokens with the right fingerprint (it is no secret) and a cursor this server never writes."""
    cursors: list[tuple[object, object]] = [
        (10**30, "x"),
        (-(10**30), "x"),
        (2**63, "x"),
        (1e300, "x"),
        (1.5, "x"),
        ("12", "x"),
        (None, "x"),
        (True, "x"),
        (5, 12),
        (5, "\ud800"),
        (5, "x" * 5_000),
    ]
    return [_token({"q": fingerprint, "c": c, "i": i}) for c, i in cursors] + [
        base64.urlsafe_b64encode(b'{"q": "%s", "c": Infinity, "i": "x"}' % fingerprint.encode()).decode(),
        base64.urlsafe_b64encode(b'{"q": "%s", "c": NaN, "i": "x"}' % fingerprint.encode()).decode(),
    ]


# Far longer than any token the server writes (gRPC only: an HTTP request line that long is refused by the
# HTTP parser before any route is reached).
OVERLONG_TOKEN = "A" * 100_000


LISTS: list[tuple[str, Callable[[grpc.Channel, str], Any], list[object]]] = [
    (
        "offers",
        lambda channel, token: offers_pb2_grpc.OfferServiceStub(channel).ListOffers(
            offers_pb2.ListOffersRequest(page_token=token), metadata=METADATA, timeout=10
        ),
        [None, [], []],
    ),
    (
        "categories",
        lambda channel, token: catalog_pb2_grpc.CatalogServiceStub(channel).ListCategories(
            catalog_pb2.ListCategoriesRequest(page_token=token), metadata=METADATA, timeout=10
        ),
        [None],
    ),
    (
        "contact_policies",
        lambda channel, token: contact_policies_pb2_grpc.ContactPolicyServiceStub(channel).ListContactPolicies(
            contact_policies_pb2.ListContactPoliciesRequest(page_token=token), metadata=METADATA, timeout=10
        ),
        [None],
    ),
]


@pytest.mark.parametrize(("resource", "call", "filters"), LISTS, ids=[name for name, _, _ in LISTS])
def test_a_forged_page_token_with_the_right_fingerprint_is_invalid_argument(
    server: ServerProcess, resource: str, call: Callable[[grpc.Channel, str], Any], filters: list[object]
) -> None:
    fingerprint = query_fingerprint(TENANT, resource, *filters)
    with server.channel() as channel:
        genuine = _token({"q": fingerprint, "c": 0, "i": "x"})
        call(channel, genuine)  # the fingerprint is right: a well-formed cursor is accepted
        for token in [*_forged_tokens(fingerprint), OVERLONG_TOKEN]:
            code, details = _answer(call, channel, token)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (token[:40], code, details)
            assert details.startswith("pageToken:"), details


def test_a_forged_cursor_over_rest_is_400_naming_cursor(server: ServerProcess) -> None:
    rest = RestClient(server.http_url, tenant=TENANT)
    for token in _forged_tokens(query_fingerprint(TENANT, "offers", None, [], [])):
        answer = rest.get(f"/api/v1/actions?cursor={quote(token, safe='')}")
        assert answer.status == 400, answer.raw[:200]
        assert "cursor" in answer.violations(), answer.raw[:200]


def test_a_non_finite_field_default_is_invalid_argument_naming_it(server: ServerProcess) -> None:
    with server.channel() as channel:
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        for number in (float("nan"), float("inf"), float("-inf")):
            nested = struct_pb2.Value()
            nested.list_value.values.add().number_value = number
            for default in (struct_pb2.Value(number_value=number), nested):
                field = catalog_pb2.FieldDefinition(
                    key="fee", label="Fee", type=catalog_pb2.FIELD_TYPE_NUMBER, default_value=default
                )
                code, details = _answer(
                    catalog.CreateCategory,
                    catalog_pb2.CreateCategoryRequest(
                        category=catalog_pb2.Category(name="Non-finite", custom_fields=[field])
                    ),
                    metadata=METADATA,
                    timeout=10,
                )
                assert code == grpc.StatusCode.INVALID_ARGUMENT, details
                assert "customFields[0].defaultValue" in details and "finite" in details, details
        listed = catalog.ListCategories(catalog_pb2.ListCategoriesRequest(), metadata=METADATA, timeout=10)
        assert [category.name for category in listed.categories] == []
