"""Domain errors to gRPC statuses with google.rpc details (transport layer).

One table maps each domain error class to a status code. Details travel in the
`grpc-status-details-bin` trailer: an ErrorInfo with the reason constant, and a
BadRequest with every field violation for INVALID_ARGUMENT. Anything
unexpected is logged with a request id and answered INTERNAL without internals.
"""

from __future__ import annotations

import collections
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..domain.access import Permission, PermissionDenied, Unauthenticated
from ..domain.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from .access import CURRENT_PRINCIPAL

log = logging.getLogger("arbiter.server.rpc")
ERROR_DOMAIN = "arbiter"

STATUS_BY_ERROR: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}


def status_code_of(error: DomainError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        code = STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.UNKNOWN


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_grpc_status(error: DomainError) -> grpc.Status:
    """The status, message and detail trailers that report `error`."""
    code = status_code_of(error)
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata))]
    if isinstance(error, ResourceExhausted) and "retryAfterMs" in error.metadata:
        delay_ms = int(error.metadata["retryAfterMs"])
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(delay_ms)
        details.append(_pack(retry))
    if isinstance(error, InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in error.violations
                    ]
                )
            )
        )
    proto = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return rpc_status.to_status(proto)


def _internal_status(request_id: str) -> grpc.Status:
    proto = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; the server log has the details under request id {request_id}",
        details=[_pack(error_details_pb2.RequestInfo(request_id=request_id))],
    )
    return rpc_status.to_status(proto)


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])

# Answers per method and status code since start-up; load tests read them to
# confirm every call succeeded (HTTP/2 load tools only see HTTP 200).
CALL_COUNTS: collections.Counter[tuple[str, str]] = collections.Counter()


def rpc(permission: Permission) -> Callable[[Handler], Handler]:
    """Wrap a servicer method: authenticate and authorise the call, then map errors to statuses.

    The servicer must have an `access` attribute (transport.access.AccessControl).
    Domain errors become their status; anything else is logged with a request
    id and answered INTERNAL. A call whose deadline has already passed is not
    started.
    """

    def decorate(method: Handler) -> Handler:
        name = method.__name__

        @functools.wraps(method)
        async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = None
            try:
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    CALL_COUNTS[name, "DEADLINE_EXCEEDED"] += 1
                    await context.abort(
                        grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call started"
                    )
                token = CURRENT_PRINCIPAL.set(self.access.authorize(context, permission))
                response = await method(self, request, context)
                CALL_COUNTS[name, "OK"] += 1
                return response
            except DomainError as error:
                status = to_grpc_status(error)
            except grpc.aio.AbortError:
                raise
            except Exception:
                request_id = uuid.uuid4().hex[:16]
                log.exception("unexpected error in %s (request id %s)", method.__qualname__, request_id)
                status = _internal_status(request_id)
            finally:
                if token is not None:
                    CURRENT_PRINCIPAL.reset(token)
            CALL_COUNTS[name, status.code.name] += 1
            await context.abort(status.code, status.details, status.trailing_metadata)

        return wrapper  # type: ignore[return-value]

    return decorate
