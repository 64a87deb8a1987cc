"""Hostile bytes on the wire: request bodies that are not the message they claim to be."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from serverproc import ServerProcess

METHOD = "/arbiter.v1.OfferService/CreateOffer"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db: Path = tmp_path_factory.mktemp("wire") / "wire.db"
    with ServerProcess(db) as proc:
        yield proc


def _raw_call(server: ServerProcess, body: bytes) -> grpc.RpcError:
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as raised:
            call(body, timeout=10, metadata=(("x-tenant-id", "default"),))
    return raised.value


def test_bytes_that_are_not_protobuf_answer_invalid_argument(server: ServerProcess) -> None:
    error = _raw_call(server, b"\xff\xff\xff\xff")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the request is not a valid arbiter.v1.CreateOfferRequest" in error.details()
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert bad.field_violations[0].field == "request"


def test_invalid_utf8_answers_invalid_argument(server: ServerProcess) -> None:
    # field 1 of the offer (a nested message) with field 1 inside it as a string holding 0xff
    inner = b"\x0a\x02\xff\xfe"
    body = b"\x0a" + bytes([len(inner)]) + inner
    error = _raw_call(server, body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "arbiter.v1.CreateOfferRequest" in error.details()
