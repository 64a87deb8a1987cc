"""The one error table: every domain error has a gRPC and an HTTP status; none is ever answered UNKNOWN."""

from __future__ import annotations

import importlib
import pkgutil

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

import arbiter.server
from arbiter.server.domain.errors import DomainError, InvalidArgument, NotFound, ResourceExhausted
from arbiter.server.transport.errors import ERROR_TABLE, grpc_status, wire_status

# The HTTP status of each gRPC code (docs/rules.md "REST API and Studio").
HTTP_OF_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}


def _every_domain_error() -> set[type[DomainError]]:
    # Import every server module first, so that an error class defined anywhere is found.
    for module in pkgutil.walk_packages(arbiter.server.__path__, "arbiter.server."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type[DomainError]] = set()
    pending = [DomainError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_every_domain_error_has_a_row() -> None:
    errors = {cls for cls in _every_domain_error() if cls.__module__.startswith("arbiter.server.")}
    assert errors, "no domain errors found: the search is broken"
    missing = sorted(cls.__qualname__ for cls in errors if cls not in ERROR_TABLE)
    assert missing == []


ERRORS = sorted(ERROR_TABLE, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("error", ERRORS, ids=[cls.__name__ for cls in ERRORS])
def test_each_row_maps_to_the_documented_http_status(error: type[DomainError]) -> None:
    status = ERROR_TABLE[error]
    assert status.grpc in HTTP_OF_GRPC
    assert status.http == HTTP_OF_GRPC[status.grpc]


def test_an_error_without_a_row_is_internal_not_unknown() -> None:
    class Unmapped(DomainError):
        pass

    assert wire_status(Unmapped("x")) is None
    status = grpc_status(Unmapped("secret internals"), "req-1")
    assert status.code is grpc.StatusCode.INTERNAL
    assert "secret internals" not in status.details and "req-1" in status.details


def test_details_carry_the_reason_the_field_violations_and_the_retry_delay() -> None:
    status = grpc_status(InvalidArgument.single("limit", "must be between 1 and 50"), "r")
    proto = _status_proto(status)
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert proto.details[0].Unpack(info) and info.reason == "INVALID_ARGUMENT" and info.domain == "arbiter"
    assert proto.details[1].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("limit", "must be between 1 and 50")]

    limited = _status_proto(grpc_status(ResourceExhausted("slow down", metadata={"retryAfterMs": "250"}), "r"))
    retry = error_details_pb2.RetryInfo()
    assert limited.details[1].Unpack(retry) and retry.retry_delay.ToMilliseconds() == 250

    missing = _status_proto(grpc_status(NotFound("offer 'x' not found", reason="OFFER_NOT_FOUND"), "r"))
    assert missing.message == "offer 'x' not found"


def _status_proto(status: grpc.Status) -> status_pb2.Status:
    """The google.rpc.Status that travels in the status's detail trailer."""
    ((_, raw),) = [(k, v) for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    return status_pb2.Status.FromString(raw)
