"""The client's exception tree: one class per gRPC status, with the server's details."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad field the server named: a camelCase path and what is wrong with it."""

    field: str
    description: str


class ArbiterError(Exception):
    """Base of every error the client raises for a failed call.

    `code` is the gRPC status code, `reason` the server's reason constant
    (e.g. "OFFER_NOT_FOUND"; empty if the server sent none), `metadata` the
    reason's key/value details and `field_violations` every bad field of an
    INVALID_ARGUMENT answer. The original grpc.RpcError is the `__cause__`.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}
        self.field_violations = field_violations

    @property
    def fields(self) -> list[str]:
        """The paths of every field violation, in the server's order."""
        return [v.field for v in self.field_violations]


class InvalidArgumentError(ArbiterError):
    """The request is wrong; see `field_violations`."""


class NotFoundError(ArbiterError):
    """The named resource does not exist for this tenant."""


class AlreadyExistsError(ArbiterError):
    """A resource with that unique name or id exists already."""


class FailedPreconditionError(ArbiterError):
    """The resource is not in a state that allows the call (e.g. an illegal status move)."""


class UnauthenticatedError(ArbiterError):
    """No valid credentials were presented."""


class PermissionDeniedError(ArbiterError):
    """The credentials do not allow this call."""


class ResourceExhaustedError(ArbiterError):
    """A limit was hit; retry later."""


class UnavailableError(ArbiterError):
    """The server cannot be reached or is shutting down; retry later."""


class DeadlineExceededError(ArbiterError):
    """The call did not finish within its deadline."""


class InternalError(ArbiterError):
    """The server failed unexpectedly; its log has the details under the request id in the message."""


_BY_CODE: dict[grpc.StatusCode, type[ArbiterError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.INTERNAL: InternalError,
}


def error_from_rpc(error: grpc.RpcError) -> ArbiterError:
    """The ArbiterError subclass describing a failed call, with its google.rpc details."""
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message: str = (error.details() if hasattr(error, "details") else None) or str(error)
    reason, metadata = "", {}
    violations: list[FieldViolation] = []
    status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    cls = _BY_CODE.get(code, ArbiterError)
    return cls(code, message, reason=reason, metadata=metadata, field_violations=tuple(violations))
