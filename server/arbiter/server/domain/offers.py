"""The Offer resource as plain dataclasses, with its enums (domain layer)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MICROS_PER_UNIT = 1_000_000


class Priority(enum.Enum):
    """Arbitration priority; `score` is the fixed priority score of each level."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def score(self) -> int:
        return _PRIORITY_SCORES[self]


_PRIORITY_SCORES = {Priority.LOW: 25, Priority.MEDIUM: 50, Priority.HIGH: 70, Priority.CRITICAL: 90}


class OfferStatus(enum.Enum):
    """Lifecycle state; only ACTIVE offers are decided."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class Qualification:
    """Who may receive an offer. None / empty means no condition."""

    propensity_threshold: float | None = None
    recency: int | None = None
    required_segments: tuple[str, ...] = ()
    model_reference: str = ""


@dataclass(frozen=True, slots=True)
class Budget:
    """Spend and impression caps. None means no cap; 0 is a cap of zero.

    Money is kept as given (a decimal amount); `*_micros` give the integer
    micro-unit value every computation uses.
    """

    max_impressions: int | None = None
    max_daily_budget: float | None = None
    cost_per_action: float | None = None

    @property
    def max_daily_budget_micros(self) -> int | None:
        return None if self.max_daily_budget is None else to_micros(self.max_daily_budget)

    @property
    def cost_per_action_micros(self) -> int:
        return 0 if self.cost_per_action is None else to_micros(self.cost_per_action)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A daily window of "HH:MM" strings; start inclusive, end exclusive, may wrap midnight."""

    start: str = ""
    end: str = ""


@dataclass(frozen=True, slots=True)
class Schedule:
    """When an offer may be decided. None / empty means no condition."""

    start_date: datetime | None = None
    end_date: datetime | None = None
    days_of_week: tuple[int, ...] = ()
    time_window: TimeWindow | None = None
    timezone: str = ""


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer of one tenant, as stored and served."""

    id: str = ""
    name: str = ""
    short_desc: str = ""
    category_id: str = ""
    sub_category_id: str = ""
    priority: Priority | None = None
    mandatory: bool = False
    status: OfferStatus | None = None
    tags: tuple[str, ...] = ()
    qualification: Qualification | None = None
    budget: Budget | None = None
    schedule: Schedule | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def priority_score(self) -> int:
        return (self.priority or Priority.MEDIUM).score


def to_micros(amount: float) -> int:
    """Money as integer micro-units, rounded to the nearest micro-unit."""
    return round(amount * MICROS_PER_UNIT)


def from_micros(micros: int) -> float:
    return micros / MICROS_PER_UNIT
