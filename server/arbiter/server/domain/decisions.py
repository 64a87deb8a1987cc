"""Decision requests and results, drop reasons and propensity sources (domain layer)."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import FieldViolation, ViolationCollector
from .filters import check_filters
from .offers import Offer
from .outcomes import MAX_CHANNEL_LENGTH, MAX_CUSTOMER_ID_LENGTH, SERVER_TIME

DEFAULT_LIMIT = 5
MAX_LIMIT = 50
MAX_BATCH_DECISIONS = 1_000  # requests in one BatchDecide
MAX_STREAM_DECISIONS = 100_000  # requests in one StreamDecide
MAX_SEGMENTS = 100
MAX_PROPENSITIES = 1_000
# A Decide's `attributes` bound the work one request may cost (decoding, checking, formulas):
# values counted as object entries and list items at any depth, the size as compact JSON in
# UTF-8, and the characters of any one string, key or value.
MAX_ATTRIBUTE_VALUES = 1_000
MAX_ATTRIBUTES_BYTES = 64 * 1024
MAX_ATTRIBUTE_TEXT = 10_000
DECISION_PREFIX = "dec_"


class DropReason(enum.IntEnum):
    """Why a candidate left the funnel; the numbers match the proto enum's."""

    NONE = 0
    SCHEDULE_NOT_STARTED = 1
    SCHEDULE_ENDED = 2
    SCHEDULE_DAY = 3
    SCHEDULE_TIME_WINDOW = 4
    MISSING_SEGMENTS = 5
    BELOW_PROPENSITY_THRESHOLD = 6
    RECENCY = 7
    CONTACT_POLICY = 8
    MAX_IMPRESSIONS_REACHED = 9
    DAILY_BUDGET_EXHAUSTED = 10
    CATEGORY_ARCHIVED = 11
    RANKED_BELOW_LIMIT = 12


class PropensitySource(enum.IntEnum):
    """Where a propensity came from, first match wins, in this order."""

    REQUEST_OFFER = 1
    REQUEST_MODEL = 2
    ADAPTIVE_MODEL = 3
    DEFAULT = 4


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """A Decide call: as decoded (`decision_us` may be SERVER_TIME), and as the funnel reads it once validated."""

    customer_id: str
    decision_us: int = SERVER_TIME
    segments: frozenset[str] = frozenset()
    attributes: dict[str, Any] = field(default_factory=dict)
    offer_propensities: dict[str, float] = field(default_factory=dict)
    model_propensities: dict[str, float] = field(default_factory=dict)
    channel: str = ""
    limit: int = DEFAULT_LIMIT
    category_ids: frozenset[str] = frozenset()
    sub_category_ids: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    explain: bool = False
    dry_run: bool = False
    record_impressions: bool = False


@dataclass(slots=True)
class DecidedOffer:
    """One offer in the answer."""

    rank: int
    offer: Offer
    score: float
    propensity: float
    source: PropensitySource
    personalization: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CandidateFate:
    """What happened to one candidate (explain)."""

    offer: Offer
    selected: bool
    reason: DropReason
    message: str
    score: float
    propensity: float


@dataclass(slots=True)
class DecisionResult:
    """The ranked answer and, with explain, every candidate's fate."""

    offers: list[DecidedOffer]
    candidates: list[CandidateFate] | None = None
    # How many offers each step of the funnel dropped (ranked_below_limit not counted), for metrics.
    dropped: dict[DropReason, int] = field(default_factory=dict)


def effective_limit(limit: int) -> int:
    return DEFAULT_LIMIT if limit == 0 else limit


def batch_size_problem(count: int, limit: int) -> str | None:
    """Why a batch of `count` Decide requests is refused when at most `limit` are allowed (None: it is not)."""
    if 1 <= count <= limit:
        return None
    return f"must hold 1 to {limit:,} requests, got {count:,}"


def validate_decision_request(request: DecisionRequest) -> list[FieldViolation]:
    """Field violations of a Decide call, paths relative to the request."""
    v = ViolationCollector()
    customer_id = request.customer_id
    if not customer_id.strip():
        v.add("customerId", "is required")
    elif len(customer_id) > MAX_CUSTOMER_ID_LENGTH:
        v.add("customerId", f"must be at most {MAX_CUSTOMER_ID_LENGTH} characters, got {len(customer_id)}")
    if request.limit < 0 or request.limit > MAX_LIMIT:
        v.add("limit", f"must be between 1 and {MAX_LIMIT} (0 means {DEFAULT_LIMIT}), got {request.limit}")
    if len(request.segments) > MAX_SEGMENTS:
        v.add("segments", f"must hold at most {MAX_SEGMENTS} entries, got {len(request.segments)}")
    for path, scores in (
        ("offerPropensities", request.offer_propensities),
        ("modelPropensities", request.model_propensities),
    ):
        if len(scores) > MAX_PROPENSITIES:
            v.add(path, f"must hold at most {MAX_PROPENSITIES} entries, got {len(scores)}")
        for key, score in scores.items():
            if not (math.isfinite(score) and 0.0 <= score <= 1.0):
                v.add(f"{path}[{key}]", f"must be between 0 and 1, got {score}")
    if len(request.channel) > MAX_CHANNEL_LENGTH:
        v.add("channel", f"must be at most {MAX_CHANNEL_LENGTH} characters")
    check_attributes(v, request.attributes)
    check_filters(
        v,
        {"categoryIds": request.category_ids, "subCategoryIds": request.sub_category_ids, "tags": request.tags},
    )
    return v.violations


TOO_MANY_ATTRIBUTE_VALUES = (
    f"must hold at most {MAX_ATTRIBUTE_VALUES:,} values (object entries and list items, at any depth)"
)


def attributes_too_large(size: str) -> str:
    """The violation of `attributes` over the size limit; `size` says how large they are."""
    return f"must be at most {MAX_ATTRIBUTES_BYTES:,} bytes as compact JSON, got {size}"


def check_attributes(v: ViolationCollector, attributes: dict[str, Any]) -> None:
    """Violations of the limits on a Decide's attributes: value count first (the walk stops past it), text, size."""
    count = 0
    long_text = False
    pending: list[Any] = [attributes]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            long_text = long_text or len(value) > MAX_ATTRIBUTE_TEXT
            continue
        if not isinstance(value, dict | list):
            continue
        count += len(value)
        if count > MAX_ATTRIBUTE_VALUES:
            v.add("attributes", TOO_MANY_ATTRIBUTE_VALUES)
            return
        if isinstance(value, dict):
            long_text = long_text or any(len(key) > MAX_ATTRIBUTE_TEXT for key in value)
            pending.extend(value.values())
        else:
            pending.extend(value)
    if long_text:
        v.add("attributes", f"keys and text values must be at most {MAX_ATTRIBUTE_TEXT:,} characters each")
    size = len(json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    if size > MAX_ATTRIBUTES_BYTES:
        v.add("attributes", attributes_too_large(f"{size:,} bytes"))
