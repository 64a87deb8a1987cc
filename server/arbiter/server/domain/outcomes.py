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
OUTCOME_PREFIX = "out_"
# An instant field left to the server: "now", read from the server's clock by the use case.
SERVER_TIME = -(2**63)


def bulk_size_problem(count: int) -> str | None:
    """Why a bulk call of `count` outcomes is refused (None when it is not): checked before any item is read."""
    if 1 <= count <= MAX_BULK_OUTCOMES:
        return None
    return f"must hold 1 to {MAX_BULK_OUTCOMES} outcomes, got {count}"


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
    """One outcome as a caller reported it (`occurred_us` SERVER_TIME: when the server receives it)."""

    customer_id: str
    offer_id: str
    type: OutcomeType | None
    decision_id: str = ""
    channel: str = ""
    occurred_us: int = SERVER_TIME
    idempotency_key: str = ""


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


def matched_positives(events: list[tuple[int, int]], skip: int | None = None) -> int:
    """How many impressions a click or conversion is matched to, in event order (the adaptive model's positives).

    `events` are one customer's impressions, clicks and conversions of one
    offer as (identity, type) in event time (an impression at the same
    instant first); each positive is matched to one earlier impression not yet
    matched. `skip` leaves one event out, so the growth an outcome causes is
    matched_positives(events) - matched_positives(events, skip=it).
    """
    waiting = matched = 0
    for identity, event_type in events:
        if identity == skip:
            continue
        if event_type == OutcomeType.IMPRESSION:
            waiting += 1
        elif waiting:
            waiting -= 1
            matched += 1
    return matched


# Where an event sits in event time: (occurred_us, type, seq); an impression
# (type 1) sorts before a click or conversion at the same instant.
EventKey = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class MatchState:
    """One customer's matching of one offer's positives, as of the latest event in event time.

    `waiting` impressions are not matched yet; `matched` is what
    matched_positives counts over the same events.
    """

    last: EventKey
    waiting: int
    matched: int


def advance(state: MatchState | None, key: EventKey) -> MatchState | None:
    """The state after one more event, or None when it is not the latest in event time (recount then).

    A positive arriving last is matched to a waiting impression if there is
    one; any later impression waits for a later positive. Same as the greedy
    match in event order, at O(1) for the common in-order arrival.
    """
    if state is not None and key <= state.last:
        return None
    waiting, matched = (state.waiting, state.matched) if state is not None else (0, 0)
    if key[1] == OutcomeType.IMPRESSION:
        return MatchState(key, waiting + 1, matched)
    if waiting:
        return MatchState(key, waiting - 1, matched + 1)
    return MatchState(key, 0, matched)


def recount(keys: list[EventKey]) -> MatchState:
    """The state over all of one customer's events of one offer (any order; at least one).

    Unmatched positives are the highest excess of positives over impressions
    in any prefix of the event-time order (0 at least); the rest are matched.
    """
    keys = sorted(keys)
    excess = highest = positives = 0
    for key in keys:
        step = -1 if key[1] == OutcomeType.IMPRESSION else 1
        positives += step > 0
        excess += step
        highest = max(highest, excess)
    matched = positives - highest
    impressions = len(keys) - positives
    return MatchState(keys[-1], impressions - matched, matched)


def adaptive_estimate(trials: int, positives: int) -> float:
    """The adaptive model's propensity: the mean of a Beta(1 + positives, 1 + failures) posterior.

    With no data this is 0.5; positives never exceed trials (they are
    impressions followed by a click or conversion), so it stays in (0, 1).
    Deterministic: no sampling.
    """
    positives = min(positives, trials)
    return (positives + 1.0) / (trials + 2.0)
