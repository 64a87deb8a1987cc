"""Domain errors: one exception tree, each carrying a reason constant (domain layer).

The transport layer's one error table maps each class to a gRPC and an HTTP
status; the domain never names status codes itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: a camelCase path ("budget.maxImpressions") and what is wrong."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a caller is meant to see."""

    default_reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = metadata or {}


# How many violations an error's message spells out; the rest are counted (the details list more).
MESSAGE_VIOLATIONS = 5


class InvalidArgument(DomainError):
    """The request itself is wrong; `violations` names every bad field."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[FieldViolation],
        *,
        message: str | None = None,
        reason: str | None = None,
    ):
        self.violations = tuple(violations)
        if message is None:
            shown = self.violations[:MESSAGE_VIOLATIONS]
            message = "; ".join(f"{v.field}: {v.description}" for v in shown) or "invalid argument"
            if len(self.violations) > len(shown):
                message += f"; and {len(self.violations) - len(shown)} more (see the field violations)"
        super().__init__(message, reason=reason)

    @classmethod
    def single(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        return cls([FieldViolation(field, description)], reason=reason)


class NotFound(DomainError):
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    default_reason = "FAILED_PRECONDITION"


class ResourceExhausted(DomainError):
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    default_reason = "UNAVAILABLE"


class Unauthenticated(DomainError):
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    default_reason = "PERMISSION_DENIED"


class ViolationCollector:
    """Collects field violations so a request reports all of them at once."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(self._prefix + field, description))

    def nested(self, prefix: str) -> ViolationCollector:
        """A collector that writes into this one with `prefix` before every path."""
        child = ViolationCollector(self._prefix + prefix)
        child.violations = self.violations
        return child

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)


def merge_violations(decoded: Iterable[FieldViolation], checked: Iterable[FieldViolation]) -> list[FieldViolation]:
    """Decoding problems first, then rule violations of fields that decoded.

    A field the request could not decode is reported once, as decoded: rule
    checks of it (or of the object containing it) would only repeat the
    problem in other words ("is required" for a value that was sent).
    """
    decoded = list(decoded)
    covered = [d.field for d in decoded]

    def repeats(field: str) -> bool:
        return any(c == field or c.startswith((field + ".", field + "[")) for c in covered)

    return [*decoded, *(v for v in checked if not repeats(v.field))]


def raise_if_invalid(decoded: Iterable[FieldViolation], checked: Iterable[FieldViolation] = ()) -> None:
    """Raise InvalidArgument with every problem: decoding ones first, then the rule checks (merge_violations)."""
    problems = merge_violations(decoded, checked)
    if problems:
        raise InvalidArgument(problems)


def violations_of(*checks: Callable[[], object]) -> list[FieldViolation]:
    """Run checks that raise InvalidArgument, and collect every violation they report."""
    found: list[FieldViolation] = []
    for check in checks:
        try:
            check()
        except InvalidArgument as exc:
            found.extend(exc.violations)
    return found


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T]):
    """What a front door decoded from a request, and the problems it met doing so.

    Front doors never raise for bad input: they hand the value (with the bad
    parts left unset) and its violations to the use case, which authorises
    first and then reports them together with its own rule checks, so every
    door answers the same call with the same error.
    """

    value: T
    violations: tuple[FieldViolation, ...] = ()
