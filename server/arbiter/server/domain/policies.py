"""Contact policies: the resource, its rule types and their validation (domain layer)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

from .errors import ViolationCollector
from .field_masks import UpdateRule
from .names import check_name
from .outcomes import OutcomeType
from .timekeeping import parse_hhmm

POLICY_PREFIX = "cp_"
MAX_WINDOW_DAYS = 365
MAX_HOURS = 8_760.0
MAX_DESCRIPTION_LENGTH = 2_000
MAX_SET_SIZE = 1_000


class PolicyStatus(enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class PolicyScope(enum.Enum):
    GLOBAL = "global"
    CATEGORY = "category"
    SUB_CATEGORY = "sub_category"
    OFFER = "offer"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    max_per_day: int | None = None
    max_per_week: int | None = None
    max_per_month: int | None = None


@dataclass(frozen=True, slots=True)
class Cooldown:
    min_hours: float = 0.0


@dataclass(frozen=True, slots=True)
class CustomerTotalCap:
    max_impressions: int = 0
    window_days: int = 0
    channel: str = ""


@dataclass(frozen=True, slots=True)
class OutcomeSuppression:
    outcome_types: tuple[int, ...] = ()
    min_count: int = 0
    window_days: int = 0


@dataclass(frozen=True, slots=True)
class CategorySuppression:
    hours: float = 0.0


@dataclass(frozen=True, slots=True)
class MutualExclusion:
    offer_ids: tuple[str, ...] = ()
    tag: str = ""
    window_days: int = 0


@dataclass(frozen=True, slots=True)
class SegmentExclusion:
    segments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContactTimeWindow:
    days_of_week: tuple[int, ...] = ()
    start: str = ""
    end: str = ""


@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    pass


@dataclass(frozen=True, slots=True)
class AllowOverride:
    pass


Rule = (
    FrequencyCap
    | Cooldown
    | CustomerTotalCap
    | OutcomeSuppression
    | CategorySuppression
    | MutualExclusion
    | SegmentExclusion
    | ContactTimeWindow
    | BudgetExhausted
    | AllowOverride
)

RULE_NAMES: dict[type, str] = {
    FrequencyCap: "frequency_cap",
    Cooldown: "cooldown",
    CustomerTotalCap: "customer_total_cap",
    OutcomeSuppression: "outcome_suppression",
    CategorySuppression: "category_suppression",
    MutualExclusion: "mutual_exclusion",
    SegmentExclusion: "segment_exclusion",
    ContactTimeWindow: "time_window",
    BudgetExhausted: "budget_exhausted",
    AllowOverride: "allow_override",
}


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    id: str = ""
    name: str = ""
    description: str = ""
    status: PolicyStatus | None = None
    priority: int = 0
    scope: PolicyScope | None = None
    scope_id: str = ""
    bypassable: bool | None = None
    rule: Rule | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_bypassable(self) -> bool:
        return self.bypassable is None or self.bypassable

    @property
    def rule_name(self) -> str:
        return RULE_NAMES[type(self.rule)] if self.rule is not None else ""

    @property
    def rule_path(self) -> str:
        """The rule's oneof field in camelCase, the prefix of its violations ("frequencyCap")."""
        head, *rest = self.rule_name.split("_")
        return head + "".join(word.capitalize() for word in rest)


POLICY_UPDATES = UpdateRule(ContactPolicy, required=("status",))


def validate_policy(policy: ContactPolicy) -> ViolationCollector:
    """Every violation of a policy's own fields (whether its ids name something is checked by the use case)."""
    v = ViolationCollector()
    check_name(v, "name", policy.name)
    if len(policy.description) > MAX_DESCRIPTION_LENGTH:
        v.add("description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters")
    if policy.status is None:
        v.add("status", "must be active, paused or archived")
    if not 0 <= policy.priority <= 100:
        v.add("priority", f"must be between 0 and 100, got {policy.priority}")
    if policy.scope is None:
        v.add("scope", "is required: global, category, sub_category, offer or channel")
    elif policy.scope is PolicyScope.GLOBAL:
        if policy.scope_id:
            v.add("scopeId", "must be empty for the global scope")
    elif not policy.scope_id.strip():
        v.add("scopeId", f"is required for the {policy.scope.value} scope")
    elif len(policy.scope_id) > 128:
        v.add("scopeId", "must be at most 128 characters")
    if policy.rule is None:
        v.add("rule", "is required: one of " + ", ".join(RULE_NAMES.values()))
    else:
        _validate_rule(v.nested(policy.rule_path + "."), policy.rule)
    return v


def _window_days(v: ViolationCollector, path: str, days: int, *, minimum: int = 1) -> None:
    if not minimum <= days <= MAX_WINDOW_DAYS:
        v.add(path, f"must be between {minimum} and {MAX_WINDOW_DAYS} days, got {days}")


def _hours(v: ViolationCollector, path: str, hours: float) -> None:
    if not (math.isfinite(hours) and 0 < hours <= MAX_HOURS):
        v.add(path, f"must be more than 0 and at most {MAX_HOURS:g} hours, got {hours}")


def _validate_rule(v: ViolationCollector, rule: Rule) -> None:
    if isinstance(rule, FrequencyCap):
        caps = {"maxPerDay": rule.max_per_day, "maxPerWeek": rule.max_per_week, "maxPerMonth": rule.max_per_month}
        if all(value is None for value in caps.values()):
            v.add("maxPerDay", "set at least one of maxPerDay, maxPerWeek, maxPerMonth")
        for path, value in caps.items():
            if value is not None and value < 0:
                v.add(path, f"must be 0 or more, got {value}")
    elif isinstance(rule, Cooldown):
        _hours(v, "minHours", rule.min_hours)
    elif isinstance(rule, CustomerTotalCap):
        if rule.max_impressions < 0:
            v.add("maxImpressions", f"must be 0 or more, got {rule.max_impressions}")
        _window_days(v, "windowDays", rule.window_days)
        if len(rule.channel) > 64:
            v.add("channel", "must be at most 64 characters")
    elif isinstance(rule, OutcomeSuppression):
        if not rule.outcome_types:
            v.add("outcomeTypes", "name at least one outcome type")
        valid = {int(t) for t in OutcomeType}
        for i, value in enumerate(rule.outcome_types):
            if value not in valid:
                v.add(f"outcomeTypes[{i}]", f"unknown outcome type value {value}")
        if rule.min_count < 1:
            v.add("minCount", f"must be 1 or more, got {rule.min_count}")
        _window_days(v, "windowDays", rule.window_days)
    elif isinstance(rule, CategorySuppression):
        _hours(v, "hours", rule.hours)
    elif isinstance(rule, MutualExclusion):
        if not rule.offer_ids and not rule.tag:
            v.add("offerIds", "name the offers of the set, or a tag that marks them")
        if len(rule.offer_ids) > MAX_SET_SIZE:
            v.add("offerIds", f"must hold at most {MAX_SET_SIZE} offers")
        if len(set(rule.offer_ids)) != len(rule.offer_ids):
            v.add("offerIds", "must not repeat an offer")
        if len(rule.tag) > 64:
            v.add("tag", "must be at most 64 characters")
        _window_days(v, "windowDays", rule.window_days, minimum=0)
    elif isinstance(rule, SegmentExclusion):
        if not rule.segments:
            v.add("segments", "name at least one segment")
        if any(not s.strip() or len(s) > 128 for s in rule.segments):
            v.add("segments", "each segment must be 1 to 128 characters")
    elif isinstance(rule, ContactTimeWindow):
        for i, day in enumerate(rule.days_of_week):
            if not 0 <= day <= 6:
                v.add(f"daysOfWeek[{i}]", f"must be 0 (Sunday) to 6 (Saturday), got {day}")
        if len(set(rule.days_of_week)) != len(rule.days_of_week):
            v.add("daysOfWeek", "must not repeat a day")
        if rule.start or rule.end:
            start, end = parse_hhmm(rule.start), parse_hhmm(rule.end)
            if start is None:
                v.add("start", f'must be "HH:MM" between 00:00 and 23:59, got {rule.start!r}')
            if end is None:
                v.add("end", f'must be "HH:MM" between 00:00 and 23:59, got {rule.end!r}')
            if start is not None and start == end:
                v.add("end", "must differ from start")
        elif not rule.days_of_week:
            v.add("daysOfWeek", "set the allowed days, the hours (start and end), or both")
