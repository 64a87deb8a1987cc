"""Arbiter's Python client: `Client`, the error tree and seed-shape helpers."""

from ._client import Client, decide_request, outcome
from ._errors import (
    AlreadyExistsError,
    ArbiterError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    error_from_rpc,
)
from ._seed import (
    category_from_dict,
    category_to_dict,
    message_to_dict,
    offer_from_dict,
    offer_to_dict,
    policy_from_dict,
    policy_to_dict,
)

__all__ = [
    "AlreadyExistsError",
    "ArbiterError",
    "Client",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "category_from_dict",
    "category_to_dict",
    "decide_request",
    "error_from_rpc",
    "message_to_dict",
    "offer_from_dict",
    "offer_to_dict",
    "outcome",
    "policy_from_dict",
    "policy_to_dict",
]
