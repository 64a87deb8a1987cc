"""What one request may cost: Decide's attribute limits and the per-method request size, on both doors."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.client import Client
from arbiter.server.domain.decisions import (
    MAX_ATTRIBUTE_TEXT,
    MAX_ATTRIBUTE_VALUES,
    MAX_ATTRIBUTES_BYTES,
    DecisionRequest,
    validate_decision_request,
)
from arbiter.server.domain.errors import InvalidArgument
from arbiter.server.domain.outcomes import MAX_BULK_OUTCOMES
from arbiter.server.transport.grpc import decision_servicer
from arbiter.server.transport.grpc.decision_servicer import DecisionServicer, decision_request_from_proto
from arbiter.server.transport.grpc.request_limits import (
    ITEM_SCAN_ABOVE_BYTES,
    REQUEST_BYTE_LIMITS,
    oversized_request,
    raw_check,
)
from arbiter.v1 import decisions_pb2

DECIDE = "/arbiter.v1.DecisionService/Decide"
MB_OF_ATTRIBUTES = {f"key{i}": f"value number {i}" for i in range(120_000)}  # about 3 MB


def _decide_request(attributes: dict[str, Any]) -> decisions_pb2.DecideRequest:
    request = decisions_pb2.DecideRequest(customer_id="c-1")
    request.attributes.update(attributes)
    return request


def _violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    for detail in status.details:
        if detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
    return {v.field: v.description for v in bad.field_violations}


def _decide_error(client: Client, request: decisions_pb2.DecideRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        client.decisions.Decide(request, metadata=(("x-tenant-id", "limits"),), timeout=30)
    return raised.value


# -- over gRPC ------------------------------------------------------------------


def test_a_decide_with_megabytes_of_attributes_is_invalid_argument_naming_them(server: ServerProcess) -> None:
    request = _decide_request(MB_OF_ATTRIBUTES)
    assert request.ByteSize() > 2 * 1024 * 1024
    with Client(server.target) as client:
        error = _decide_error(client, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = _violations(error)
    assert list(violations) == ["attributes"]
    assert f"{REQUEST_BYTE_LIMITS[DECIDE]:,}" in violations["attributes"]


@pytest.mark.parametrize(
    ("attributes", "says"),
    [
        ({f"k{i}": "x" * 1_000 for i in range(100)}, f"{MAX_ATTRIBUTES_BYTES:,} bytes"),  # ~100 KB: too large
        ({"many": list(range(MAX_ATTRIBUTE_VALUES))}, f"{MAX_ATTRIBUTE_VALUES:,} values"),  # 1,001 with "many"
        ({"long": "x" * (MAX_ATTRIBUTE_TEXT + 1)}, f"{MAX_ATTRIBUTE_TEXT:,} characters"),
    ],
    ids=["too-large", "too-many-values", "text-too-long"],
)
def test_attributes_over_a_limit_within_the_request_size_are_refused(
    server: ServerProcess, attributes: dict[str, Any], says: str
) -> None:
    request = _decide_request(attributes)
    assert request.ByteSize() < REQUEST_BYTE_LIMITS[DECIDE]
    with Client(server.target) as client:
        error = _decide_error(client, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = _violations(error)
    assert list(violations) == ["attributes"]
    assert says in violations["attributes"]


def test_attributes_at_the_limits_are_accepted(server: ServerProcess) -> None:
    # 1,000 values in all and close to 64 KiB as JSON.
    attributes: dict[str, Any] = {f"{i:04d}" + "k" * 40: i for i in range(MAX_ATTRIBUTE_VALUES - 2)}
    attributes["text"] = ["t" * MAX_ATTRIBUTE_TEXT]
    with Client(server.target, tenant="limits") as client:
        decided = client.decide("c-1", attributes=attributes, timeout=30)
    assert decided.decision_id.startswith("dec_")


def test_an_oversized_request_names_the_field_holding_most_of_it() -> None:
    descriptor = decisions_pb2.DecideRequest.DESCRIPTOR
    big = _decide_request({"blob": "x" * 300_000})
    big.segments.extend(["a", "b"])
    error = oversized_request(descriptor, big.SerializeToString(), 1_000)
    assert [v.field for v in error.violations] == ["attributes"]
    # Many small fields, none the bulk of it: the request as a whole.
    spread = decisions_pb2.DecideRequest(segments=[f"s{i}" for i in range(500)])
    error = oversized_request(descriptor, spread.SerializeToString(), 1_000)
    assert [v.field for v in error.violations] == ["request"]
    # Bytes that are not protobuf at all still get an answer.
    error = oversized_request(descriptor, b"\xff" * 5_000, 1_000)
    assert [v.field for v in error.violations] == ["request"]


@pytest.mark.parametrize(
    "attributes",
    [
        {f"{i:04d}" + "k" * 54: 7 for i in range(MAX_ATTRIBUTE_VALUES)},  # numbers: 8 bytes each in protobuf
        {"n": [1] * (MAX_ATTRIBUTE_VALUES - 1)},
        {"t": ["x" * 60] * (MAX_ATTRIBUTE_VALUES - 1)},
        {f"k{i}": [[], {}] for i in range(MAX_ATTRIBUTE_VALUES // 3)},
    ],
    ids=["keyed-numbers", "listed-numbers", "listed-text", "empty-containers"],
)
def test_the_cheap_check_before_decoding_never_refuses_attributes_the_rules_accept(attributes: dict[str, Any]) -> None:
    assert validate_decision_request(DecisionRequest("c-1", attributes=attributes)) == []
    decoded = decision_request_from_proto(_decide_request(attributes))
    assert decoded.violations == ()
    assert decoded.value.attributes == attributes


def _bulk(count: int) -> decisions_pb2.RecordOutcomesRequest:
    request = decisions_pb2.RecordOutcomesRequest()
    for i in range(count):
        request.outcomes.add(
            customer_id="c", offer_id="o", type=decisions_pb2.OUTCOME_TYPE_CLICK, idempotency_key=str(i)
        )
    return request


def test_an_oversized_bulk_of_outcomes_is_refused_naming_the_count(server: ServerProcess) -> None:
    with Client(server.target) as client, pytest.raises(grpc.RpcError) as raised:
        client.decisions.RecordOutcomes(_bulk(5_000), metadata=(("x-tenant-id", "limits"),), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(raised.value) == {"outcomes": f"must hold 1 to {MAX_BULK_OUTCOMES} outcomes, got 5000"}


def test_an_oversized_bulk_is_refused_before_any_item_is_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object) -> None:
        raise AssertionError("an item of an oversized bulk was converted")

    monkeypatch.setattr(decision_servicer, "_outcome_input", never)
    servicer = DecisionServicer(None, None)  # type: ignore[arg-type]  # neither is reached
    with pytest.raises(InvalidArgument) as refused:
        asyncio.run(servicer.RecordOutcomes(_bulk(MAX_BULK_OUTCOMES + 1), None))
    assert [v.field for v in refused.value.violations] == ["outcomes"]


def test_a_bulk_of_megabytes_is_refused_from_its_raw_item_count(server: ServerProcess) -> None:
    request = _bulk(150_000)
    assert request.ByteSize() > ITEM_SCAN_ABOVE_BYTES
    with Client(server.target) as client, pytest.raises(grpc.RpcError) as raised:
        client.decisions.RecordOutcomes(request, metadata=(("x-tenant-id", "limits"),), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(raised.value) == {
        "outcomes": f"must hold 1 to {MAX_BULK_OUTCOMES} outcomes, got more than {MAX_BULK_OUTCOMES}"
    }


def test_the_raw_item_count_lets_a_full_bulk_of_long_ids_through() -> None:
    check = raw_check("/arbiter.v1.DecisionService/RecordOutcomes", decisions_pb2.RecordOutcomesRequest.DESCRIPTOR)
    assert check is not None
    full = decisions_pb2.RecordOutcomesRequest()
    for i in range(MAX_BULK_OUTCOMES):
        full.outcomes.add(customer_id="c" * 200, offer_id="o" * 100, idempotency_key=f"{i:0200d}")
    data = full.SerializeToString()
    assert len(data) > ITEM_SCAN_ABOVE_BYTES  # so it is counted, and found within the limit
    assert check(data) is None
    one_more = data + decisions_pb2.RecordOutcomesRequest(outcomes=[decisions_pb2.Outcome()]).SerializeToString()
    refused = check(one_more)
    assert refused is not None and [v.field for v in refused.violations] == ["outcomes"]


# -- over REST --------------------------------------------------------------------


def test_a_rest_decide_of_megabytes_is_400_before_its_json_is_read(server: ServerProcess) -> None:
    rest = RestClient(server.http_url, tenant="limits")
    answer = rest.post("/api/v1/decide", {"customerId": "c-1", "attributes": MB_OF_ATTRIBUTES})
    assert answer.status == 400
    assert list(answer.violations()) == ["body"]
    assert f"at most {REQUEST_BYTE_LIMITS[DECIDE]:,}" in answer.violations()["body"]


def test_a_rest_decide_with_attributes_over_the_size_limit_is_400_naming_them(server: ServerProcess) -> None:
    rest = RestClient(server.http_url, tenant="limits")
    attributes = {f"k{i}": "x" * 1_000 for i in range(100)}  # ~100 KB: within the body limit, over 64 KiB
    answer = rest.post("/api/v1/decide", {"customerId": "c-1", "attributes": attributes})
    assert answer.status == 400
    assert list(answer.violations()) == ["attributes"]
    assert f"{MAX_ATTRIBUTES_BYTES:,} bytes" in answer.violations()["attributes"]


def test_a_rest_decide_with_too_many_attribute_values_is_400(server: ServerProcess) -> None:
    rest = RestClient(server.http_url, tenant="limits")
    answer = rest.post("/api/v1/decide", {"customerId": "c-1", "attributes": {"many": [0] * 5_000}})
    assert answer.status == 400
    assert f"{MAX_ATTRIBUTE_VALUES:,} values" in answer.violations()["attributes"]
