"""Outcome types, the adaptive propensity model and outcome validation (domain layer)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import ViolationCollector

MAX_CUSTOMER_ID_LENGTH = 256
MAX_IDEMPOTENCY_KEY_LENGTH = 256
MAX_CHANNEL_LENGTH = 64
MAX_DECISION_ID_LENGTH = 128
MAX_BULK_OUTCOMES = 1_000


class OutcomeType(enum.IntEnum):
    """What happened after an offer was decided; the numbers are what SQLite stores."""

    IMPRESSION = 1
    CLICK = 2
    CONVERSION = 3
    DISMISS = 4
    NOT_INTERESTED = 5
    COMPLAINT = 6

    @property
    def is_positive(self) -> bool:
        return self in (OutcomeType.CLICK, OutcomeType.CONVERSION)


@dataclass(frozen=True, slots=True)
class OutcomeInput:
    """One outcome as a caller reported it (occurred_us already defaulted to now)."""

    customer_id: str
    offer_id: str
    type: OutcomeType | None
    decision_id: str
    channel: str
    occurred_us: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """The stored result of an outcome: its id, when it was recorded, and whether it was new."""

    outcome_id: str
    recorded_us: int
    duplicate: bool


def validate_outcome(v: ViolationCollector, outcome: OutcomeInput) -> None:
    """Field violations of one outcome (offer existence is checked by the caller)."""
    _required_text(v, "customerId", outcome.customer_id, MAX_CUSTOMER_ID_LENGTH)
    _required_text(v, "offerId", outcome.offer_id, 128)
    _required_text(v, "idempotencyKey", outcome.idempotency_key, MAX_IDEMPOTENCY_KEY_LENGTH)
    if outcome.type is None:
        v.add("type", "is required: impression, click, conversion, dismiss, not_interested or complaint")
    if len(outcome.channel) > MAX_CHANNEL_LENGTH:
        v.add("channel", f"must be at most {MAX_CHANNEL_LENGTH} characters")
    if len(outcome.decision_id) > MAX_DECISION_ID_LENGTH:
        v.add("decisionId", f"must be at most {MAX_DECISION_ID_LENGTH} characters")


def _required_text(v: ViolationCollector, path: str, value: str, limit: int) -> None:
    if not value.strip():
        v.add(path, "is required")
    elif len(value) > limit:
        v.add(path, f"must be at most {limit} characters, got {len(value)}")


def adaptive_estimate(trials: int, positives: int) -> float:
    """The adaptive model's propensity: the mean of a Beta(1 + positives, 1 + failures) posterior.

    With no data this is 0.5; positives never exceed trials (they are
    impressions followed by a click or conversion), so it stays in (0, 1).
    Deterministic: no sampling.
    """
    positives = min(positives, trials)
    return (positives + 1.0) / (trials + 2.0)
