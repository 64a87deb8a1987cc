"""Kept decisions and WhyNot answers: sampling, the stored shape, where a candidate left the funnel (domain layer)."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from .decisions import DecisionRequest, DecisionResult, DropReason

US_PER_DAY = 86_400 * 1_000_000
DEFAULT_RETENTION_DAYS = 7


def sampled(decision_id: str, rate: float) -> bool:
    """Whether the decision is kept: a hash of its id, as a fraction in [0, 1), below the rate.

    Deterministic per decision (the same id always gives the same answer), so
    1.0 keeps every decision and 0.0 none.
    """
    digest = hashlib.blake2b(decision_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


@dataclass(frozen=True, slots=True)
class LoggedOffer:
    """One returned offer as it was answered (offers change later; the log keeps what was said)."""

    rank: int
    offer_id: str
    name: str
    short_desc: str
    score: float
    propensity: float
    source: int
    priority_score: int
    mandatory: bool
    category_id: str
    sub_category_id: str
    tags: tuple[str, ...]
    personalization: dict[str, object]


@dataclass(frozen=True, slots=True)
class LoggedCandidate:
    """One candidate's fate in a kept decision."""

    offer_id: str
    name: str
    selected: bool
    reason: DropReason
    message: str
    score: float
    propensity: float
    mandatory: bool


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """A kept decision: the request as the funnel read it, the answer and every candidate's fate."""

    decision_id: str
    decision_us: int
    logged_us: int
    request: DecisionRequest
    offers: tuple[LoggedOffer, ...]
    candidates: tuple[LoggedCandidate, ...]


def logged_decision(
    decision_id: str, logged_us: int, request: DecisionRequest, result: DecisionResult
) -> LoggedDecision:
    """The stored form of a decision (its result run with explain, so candidates are all there)."""
    offers = tuple(
        LoggedOffer(
            rank=d.rank,
            offer_id=d.offer.id,
            name=d.offer.name,
            short_desc=d.offer.short_desc,
            score=d.score,
            propensity=d.propensity,
            source=int(d.source),
            priority_score=d.offer.priority_score,
            mandatory=d.offer.mandatory,
            category_id=d.offer.category_id,
            sub_category_id=d.offer.sub_category_id,
            tags=tuple(d.offer.tags),
            personalization=dict(d.personalization),
        )
        for d in result.offers
    )
    candidates = tuple(
        LoggedCandidate(
            offer_id=c.offer.id,
            name=c.offer.name,
            selected=c.selected,
            reason=c.reason,
            message=c.message,
            score=c.score,
            propensity=c.propensity,
            mandatory=c.offer.mandatory,
        )
        for c in result.candidates or ()
    )
    return LoggedDecision(decision_id, request.decision_us, logged_us, request, offers, candidates)


class FunnelStep(enum.IntEnum):
    """The funnel step a candidate left at (numbers match the proto enum's); OUTPUT: it is returned."""

    UNSPECIFIED = 0
    INVENTORY = 1
    SCHEDULE = 2
    QUALIFICATION = 3
    CONTACT_POLICIES = 4
    BUDGET = 5
    RANK = 6
    OUTPUT = 7


_STEP_OF_REASON = {
    DropReason.CATEGORY_ARCHIVED: FunnelStep.INVENTORY,
    DropReason.SCHEDULE_NOT_STARTED: FunnelStep.SCHEDULE,
    DropReason.SCHEDULE_ENDED: FunnelStep.SCHEDULE,
    DropReason.SCHEDULE_DAY: FunnelStep.SCHEDULE,
    DropReason.SCHEDULE_TIME_WINDOW: FunnelStep.SCHEDULE,
    DropReason.MISSING_SEGMENTS: FunnelStep.QUALIFICATION,
    DropReason.BELOW_PROPENSITY_THRESHOLD: FunnelStep.QUALIFICATION,
    DropReason.RECENCY: FunnelStep.QUALIFICATION,
    DropReason.CONTACT_POLICY: FunnelStep.CONTACT_POLICIES,
    DropReason.MAX_IMPRESSIONS_REACHED: FunnelStep.BUDGET,
    DropReason.DAILY_BUDGET_EXHAUSTED: FunnelStep.BUDGET,
    DropReason.RANKED_BELOW_LIMIT: FunnelStep.RANK,
    DropReason.NONE: FunnelStep.OUTPUT,
}


def step_of(reason: DropReason) -> FunnelStep:
    """The step that reports `reason` (NONE: the offer is returned)."""
    return _STEP_OF_REASON[reason]


@dataclass(frozen=True, slots=True)
class WhyNotAnswer:
    """Where one offer leaves the funnel for a customer, or its rank when it gets through.

    `rank` is the offer's place among the eligible candidates (from 1) when it
    reached ranking (returned, or RANKED_BELOW_LIMIT), else 0.
    """

    offer_id: str
    decision_us: int
    step: FunnelStep
    reason: DropReason
    message: str
    returned: bool
    rank: int
    score: float
    propensity: float


def why_not(offer_id: str, status_word: str, request: DecisionRequest, result: DecisionResult) -> WhyNotAnswer:
    """Read one offer's fate out of an explained decision (the real funnel's answer, not a re-derivation).

    An offer that is not a candidate at all is not active: it leaves at the
    inventory step with no DropReason, the message naming its status.
    """
    assert result.candidates is not None, "why_not reads an explained decision"
    eligible = 0
    for fate in result.candidates:
        ranked = fate.selected or fate.reason is DropReason.RANKED_BELOW_LIMIT
        eligible += ranked
        if fate.offer.id != offer_id:
            continue
        return WhyNotAnswer(
            offer_id=offer_id,
            decision_us=request.decision_us,
            step=step_of(fate.reason),
            reason=fate.reason,
            message=fate.message,
            returned=fate.selected,
            rank=eligible if ranked else 0,
            score=fate.score,
            propensity=fate.propensity,
        )
    return WhyNotAnswer(
        offer_id=offer_id,
        decision_us=request.decision_us,
        step=FunnelStep.INVENTORY,
        reason=DropReason.NONE,
        message=f"the offer is {status_word}: only active offers are decided",
        returned=False,
        rank=0,
        score=0.0,
        propensity=0.0,
    )
