"""Domain errors to wire statuses: the one table every front door answers from (transport layer).

Each domain error class has exactly one gRPC status code and one HTTP status
here. Details are the same on every door: an ErrorInfo with the reason
constant, a BadRequest with the (first 20) field violations for INVALID_ARGUMENT, a
RetryInfo when a rate limit says when to come back. A domain error missing
from the table is a bug (tests/test_error_table.py finds it); at run time it
is logged and answered INTERNAL, never UNKNOWN.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("arbiter.server.errors")
ERROR_DOMAIN = "arbiter"
# What one error lists in its BadRequest, and how long each text may be, so that the status trailers
# (base64-encoded) stay well inside the 16 KiB of metadata gRPC clients accept by default.
LISTED_VIOLATIONS = 20
VIOLATION_TEXT = 200


@dataclass(frozen=True, slots=True)
class WireStatus:
    """How one kind of error travels: its gRPC status code and its HTTP status."""

    grpc: grpc.StatusCode
    http: int


ERROR_TABLE: dict[type[DomainError], WireStatus] = {
    InvalidArgument: WireStatus(grpc.StatusCode.INVALID_ARGUMENT, 400),
    Unauthenticated: WireStatus(grpc.StatusCode.UNAUTHENTICATED, 401),
    PermissionDenied: WireStatus(grpc.StatusCode.PERMISSION_DENIED, 403),
    NotFound: WireStatus(grpc.StatusCode.NOT_FOUND, 404),
    AlreadyExists: WireStatus(grpc.StatusCode.ALREADY_EXISTS, 409),
    FailedPrecondition: WireStatus(grpc.StatusCode.FAILED_PRECONDITION, 409),
    ResourceExhausted: WireStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    Unavailable: WireStatus(grpc.StatusCode.UNAVAILABLE, 503),
}
INTERNAL = WireStatus(grpc.StatusCode.INTERNAL, 500)


def wire_status(error: DomainError) -> WireStatus | None:
    """The table's entry for the error's class (exactly that class: a subclass needs a row of its own)."""
    return ERROR_TABLE.get(type(error))


def error_details(error: DomainError) -> list[Message]:
    """The google.rpc details that go with the error, on every door."""
    details: list[Message] = [
        error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
    ]
    if isinstance(error, ResourceExhausted) and "retryAfterMs" in error.metadata:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(int(error.metadata["retryAfterMs"]))
        details.append(retry)
    if isinstance(error, InvalidArgument):
        listed = [
            error_details_pb2.BadRequest.FieldViolation(field=_clip(v.field), description=_clip(v.description))
            for v in error.violations[:LISTED_VIOLATIONS]
        ]
        if len(error.violations) > LISTED_VIOLATIONS:
            more = len(error.violations) - LISTED_VIOLATIONS
            listed.append(
                error_details_pb2.BadRequest.FieldViolation(
                    field="", description=f"and {more} more violations; fix these and send again"
                )
            )
        details.append(error_details_pb2.BadRequest(field_violations=listed))
    return details


def _clip(text: str) -> str:
    return text if len(text) <= VIOLATION_TEXT else text[: VIOLATION_TEXT - 1] + "…"


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def grpc_status(error: DomainError, request_id: str) -> grpc.Status:
    """The status, message and detail trailers that report `error` over gRPC."""
    status = wire_status(error)
    if status is None:
        log.error("domain error %s has no row in the error table (request id %s)", type(error).__name__, request_id)
        return internal_grpc_status(request_id)
    proto = status_pb2.Status(
        code=status.grpc.value[0], message=error.message, details=[_pack(d) for d in error_details(error)]
    )
    return rpc_status.to_status(proto)


def internal_grpc_status(request_id: str) -> grpc.Status:
    """INTERNAL without internals: the request id points to the logged traceback."""
    proto = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; the server log has the details under request id {request_id}",
        details=[_pack(error_details_pb2.RequestInfo(request_id=request_id))],
    )
    return rpc_status.to_status(proto)


@dataclass(frozen=True, slots=True)
class HttpError:
    """An error as the REST door answers it: status, AIP-193 body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def _detail_json(message: Message) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{message.DESCRIPTOR.full_name}", **json_format.MessageToDict(message)}


def http_error(error: DomainError, request_id: str) -> HttpError:
    """The AIP-193 answer for `error`: the same code, message and details as over gRPC."""
    status = wire_status(error)
    if status is None:
        log.error("domain error %s has no row in the error table (request id %s)", type(error).__name__, request_id)
        return internal_http_error(request_id)
    headers = {}
    retry_ms = error.metadata.get("retryAfterMs") if isinstance(error, ResourceExhausted) else None
    if retry_ms is not None:
        headers["Retry-After"] = str(max(1, math.ceil(int(retry_ms) / 1000)))
    return HttpError(status.http, error_body(status.http, status.grpc, error.message, error_details(error)), headers)


def error_body(http: int, code: grpc.StatusCode, message: str, details: list[Message]) -> dict[str, Any]:
    """{"error": {"code", "status", "message", "details"}} as AIP-193 writes it."""
    return {
        "error": {
            "code": http,
            "status": code.name,
            "message": message,
            "details": [_detail_json(d) for d in details],
        }
    }


def internal_http_error(request_id: str) -> HttpError:
    """500 without internals: the request id points to the logged traceback."""
    message = f"internal error; the server log has the details under request id {request_id}"
    details: list[Message] = [error_details_pb2.RequestInfo(request_id=request_id)]
    return HttpError(INTERNAL.http, error_body(INTERNAL.http, INTERNAL.grpc, message, details), {})
