"""BatchDecide and StreamDecide: many customers in one call, each answered exactly as its own Decide would be."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.client import Client, InvalidArgumentError, ResourceExhaustedError, decide_request
from arbiter.client._seed import message_to_dict
from arbiter.v1 import decisions_pb2, decisions_pb2_grpc

TENANT = "batch"
DECISION_TIME = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SEGMENTS = ("gold", "silver", "young", "urban")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A tenant whose answers depend on segments, attributes, propensities and a contact policy."""
    with ServerProcess(tmp_path_factory.mktemp("batch") / "arbiter.db", http=True) as process:
        with Client(process.target, tenant=TENANT) as client:
            client.create_category(
                {
                    "name": "Cards",
                    "customFields": [
                        {"key": "rate", "type": "number"},
                        {
                            "key": "personal_rate",
                            "type": "computed",
                            "outputType": "number",
                            "formula": "rate * (1 - coalesce(customer.loyalty, 0) * 0.01)",
                        },
                    ],
                },
                category_id="cat_cards",
            )
            priorities = ("low", "medium", "high", "critical")
            for i in range(12):
                body: dict[str, Any] = {
                    "name": f"Offer {i}",
                    "status": "active",
                    "priority": priorities[i % 4],
                    "categoryId": "cat_cards",
                    "customFields": {"rate": 10 + i},
                    "tags": ["even"] if i % 2 == 0 else ["odd"],
                }
                if i % 3 == 0:
                    body["qualification"] = {"requiredSegments": [SEGMENTS[i % 4]]}
                if i % 4 == 1:
                    body["qualification"] = {"propensityThreshold": 0.4, "modelReference": "m"}
                client.create_offer(body)
            client.create_contact_policy(
                {
                    "name": "no silver for young",
                    "scope": "global",
                    "segmentExclusion": {"segments": ["young"]},
                }
            )
        yield process


def _requests(count: int, seed: int = 7, *, explain: bool = True) -> list[decisions_pb2.DecideRequest]:
    """Varied requests, all pinned to one instant so separate calls see the same clock."""
    chosen = random.Random(seed)
    return [
        decide_request(
            f"customer-{chosen.randrange(40)}",
            segments=chosen.sample(SEGMENTS, chosen.randrange(len(SEGMENTS) + 1)),
            attributes={"loyalty": chosen.randrange(100)} if chosen.random() < 0.7 else None,
            model_propensities={"m": chosen.random()} if chosen.random() < 0.5 else None,
            limit=chosen.choice((0, 1, 3, 10)),
            tags=["even"] if chosen.random() < 0.2 else (),
            decision_time=DECISION_TIME,
            explain=explain and chosen.random() < 0.3,
        )
        for _ in range(count)
    ]


def _comparable(response: decisions_pb2.DecideResponse) -> dict[str, Any]:
    """Everything in an answer but its decision id, which is every decision's own."""
    answer = message_to_dict(response)
    assert answer.pop("decisionId").startswith("dec_")
    return answer


def _alone(server: ServerProcess, requests: list[decisions_pb2.DecideRequest]) -> list[decisions_pb2.DecideResponse]:
    with server.channel() as channel:
        decide = decisions_pb2_grpc.DecisionServiceStub(channel).Decide
        return [decide(request, metadata=(("x-tenant-id", TENANT),), timeout=10) for request in requests]


def test_each_answer_is_the_one_its_own_decide_gives(server: ServerProcess) -> None:
    requests = _requests(120, explain=False)
    alone = _alone(server, requests)
    with Client(server.target, tenant=TENANT) as client:
        batched = client.batch_decide(requests)
    assert len(batched) == len(requests)
    assert [_comparable(r) for r in batched] == [_comparable(r) for r in alone]
    assert any(r.offers for r in batched) and any(not r.offers for r in batched)  # the cases say something
    ids = [r.decision_id for r in (*alone, *batched)]
    assert len(set(ids)) == len(ids)


def test_each_streamed_answer_is_the_one_its_own_decide_gives_explain_included(server: ServerProcess) -> None:
    requests = _requests(120)
    alone = _alone(server, requests)
    with Client(server.target, tenant=TENANT) as client:
        streamed = list(client.stream_decide(requests))
    assert [_comparable(r) for r in streamed] == [_comparable(r) for r in alone]
    assert any(r.candidates for r in streamed)


def test_one_answer_for_many_takes_neither_explain_nor_recorded_impressions(server: ServerProcess) -> None:
    requests = [decide_request("a"), decide_request("b", explain=True), decide_request("c", record_impressions=True)]
    with Client(server.target, tenant=TENANT) as client, pytest.raises(InvalidArgumentError) as refused:
        client.batch_decide(requests)
    assert [v.field for v in refused.value.field_violations] == ["requests[1].explain", "requests[2].recordImpressions"]
    assert "StreamDecide" in refused.value.field_violations[0].description


def test_a_batch_whose_answers_would_not_fit_one_message_is_refused(tmp_path: Any) -> None:
    """Each answer carries 1,000 characters of personalisation per offer: 1,000 of them are far over 4 MiB."""
    with ServerProcess(tmp_path / "big.db") as process, Client(process.target, tenant="big") as client:
        client.create_category(
            {
                "name": "Long",
                "customFields": [
                    {"key": "note", "type": "computed", "outputType": "text", "formula": "concat(customer.note)"}
                ],
            },
            category_id="cat_long",
        )
        for i in range(5):
            client.create_offer({"name": f"Long {i}", "status": "active", "categoryId": "cat_long"})
        note = {"note": "x" * 1_000}
        small = client.batch_decide([decide_request(f"c{i}", attributes=note) for i in range(100)])
        assert all(len(r.offers) == 5 for r in small)
        with pytest.raises(ResourceExhaustedError) as refused:
            client.batch_decide([decide_request(f"c{i}", attributes=note) for i in range(1_000)])
        assert refused.value.reason == "ANSWER_TOO_LARGE" and "StreamDecide" in str(refused.value)
        assert (
            len(list(client.stream_decide([decide_request(f"c{i}", attributes=note) for i in range(1_000)]))) == 1_000
        )


def test_a_stream_takes_more_than_a_batch_may(server: ServerProcess) -> None:
    requests = _requests(1_001, seed=11)
    with Client(server.target, tenant=TENANT) as client:
        with pytest.raises(InvalidArgumentError) as refused:
            client.batch_decide(requests)
        assert [v.field for v in refused.value.field_violations] == ["requests"]
        assert "1 to 1,000" in refused.value.field_violations[0].description
        streamed = list(client.stream_decide(requests))
        assert len(streamed) == len(requests)
        with pytest.raises(InvalidArgumentError) as empty:
            client.batch_decide([])
        assert [v.field for v in empty.value.field_violations] == ["requests"]


def test_a_bad_request_refuses_the_whole_batch_naming_it_and_records_nothing(server: ServerProcess) -> None:
    with Client(server.target, tenant=TENANT) as client:
        offer = client.create_offer({"name": "Recorded once", "status": "active", "priority": "critical"})
        for call, record in (
            (client.batch_decide, False),
            (lambda requests: list(client.stream_decide(requests)), True),
        ):
            good = decide_request("someone", record_impressions=record, limit=50)
            bad = [good, decide_request(""), good, decide_request("x", limit=99)]
            with pytest.raises(InvalidArgumentError) as refused:
                call(bad)
            assert sorted(v.field for v in refused.value.field_violations) == [
                "requests[1].customerId",
                "requests[3].limit",
            ]
        assert client.get_offer_stats(offer.id).lifetime_impressions == 0
        client.delete_offer(offer.id, force=True)


def test_recorded_impressions_count_in_order_so_a_cap_holds(server: ServerProcess) -> None:
    with Client(server.target, tenant="capped") as client:
        offer = client.create_offer({"name": "Three only", "status": "active", "budget": {"maxImpressions": 3}})
        requests = [decide_request(f"c{i}", record_impressions=True) for i in range(5)]
        answers = list(client.stream_decide(requests))
        assert [[o.offer_id for o in a.offers] for a in answers] == [[offer.id]] * 3 + [[]] * 2
        assert client.get_offer_stats(offer.id).lifetime_impressions == 3


def test_the_rest_route_answers_as_grpc(server: ServerProcess) -> None:
    requests = _requests(20, seed=3, explain=False)
    with Client(server.target, tenant=TENANT) as client:
        expected = [
            [(o.offer_id, o.rank, o.score, dict(o.personalization)) for o in answer.offers]
            for answer in client.batch_decide(requests)
        ]
    rest = RestClient(server.http_url, tenant=TENANT)
    answer = rest.post("/api/v1/decide:batch", {"requests": [message_to_dict(r) for r in requests]})
    assert answer.status == 200, answer.raw[:300]
    got = [
        [(o["offerId"], o["rank"], o["score"], o.get("personalization", {})) for o in response["offers"]]
        for response in answer.body["responses"]
    ]
    assert got == expected
    refused = rest.post("/api/v1/decide:batch", {"requests": [{"customerId": ""}]})
    assert refused.status == 400 and "requests[0].customerId" in refused.violations()


def test_a_caller_without_the_role_hears_so_before_anything_is_decided(tmp_path: Any) -> None:
    """Authorisation is checked for the stream too (the interceptor wraps streaming methods)."""
    with ServerProcess(tmp_path / "auth.db", auth=True) as process, grpc.insecure_channel(process.target) as channel:
        stream = channel.unary_stream(
            "/arbiter.v1.DecisionService/StreamDecide",
            request_serializer=decisions_pb2.StreamDecideRequest.SerializeToString,
            response_deserializer=decisions_pb2.DecideResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as refused:
            list(stream(decisions_pb2.StreamDecideRequest(requests=[decide_request("c")]), timeout=10))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_request_with_maps_converts_to_json_for_the_rest_door() -> None:
    """message_to_dict walked map entries as messages and failed on any request with propensities."""
    request = decide_request("c", offer_propensities={"act_1": 0.25}, model_propensities={"m": 0.5}, limit=3)
    assert message_to_dict(request)["offerPropensities"] == {"act_1": 0.25}
    assert message_to_dict(request)["modelPropensities"] == {"m": 0.5}
