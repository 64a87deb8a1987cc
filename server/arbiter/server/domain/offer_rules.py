"""Offer rules: validation, defaults on create, lifecycle moves and partial updates (domain layer)."""

from __future__ import annotations

import math
from dataclasses import replace

from .errors import FailedPrecondition, FieldViolation, ViolationCollector
from .field_masks import UpdateRule
from .names import check_name
from .offers import Budget, Offer, OfferStatus, Priority, Qualification, Schedule, TimeWindow
from .timekeeping import load_timezone, parse_hhmm

MAX_SHORT_DESC_LENGTH = 1_000
MAX_ID_REFERENCE_LENGTH = 128
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_SEGMENTS = 50
MAX_SEGMENT_LENGTH = 128
MAX_LOOKBACK_DAYS = 365
MAX_DAILY_BUDGET = 1e12
MAX_COST_PER_ACTION = 1e9

ALLOWED_MOVES = frozenset(
    {
        (OfferStatus.DRAFT, OfferStatus.ACTIVE),
        (OfferStatus.ACTIVE, OfferStatus.PAUSED),
        (OfferStatus.PAUSED, OfferStatus.ACTIVE),
        (OfferStatus.DRAFT, OfferStatus.ARCHIVED),
        (OfferStatus.ACTIVE, OfferStatus.ARCHIVED),
        (OfferStatus.PAUSED, OfferStatus.ARCHIVED),
    }
)

# How updates name an offer's fields: nested paths address one field of a
# config; "custom_fields.<key>" addresses one custom field.
OFFER_UPDATES = UpdateRule(
    Offer,
    nested={
        "qualification": Qualification,
        "budget": Budget,
        "schedule": Schedule,
        "schedule.time_window": TimeWindow,
    },
    keyed=("custom_fields",),
    required=("priority", "status"),
)


def validate_offer(offer: Offer) -> list[FieldViolation]:
    """Every field violation of a complete offer (after defaults or an update)."""
    v = ViolationCollector()
    check_name(v, "name", offer.name)
    _validate_text(v, "shortDesc", offer.short_desc, MAX_SHORT_DESC_LENGTH)
    _validate_text(v, "categoryId", offer.category_id, MAX_ID_REFERENCE_LENGTH)
    _validate_text(v, "subCategoryId", offer.sub_category_id, MAX_ID_REFERENCE_LENGTH)
    if offer.sub_category_id and not offer.category_id:
        v.add("subCategoryId", "requires categoryId: a sub-category belongs to a category")
    if offer.priority is None:
        v.add("priority", "must be one of low, medium, high, critical")
    if offer.status is None:
        v.add("status", "must be one of draft, active, paused, archived")
    _validate_string_list(v, "tags", offer.tags, MAX_TAGS, MAX_TAG_LENGTH)
    if offer.qualification is not None:
        _validate_qualification(v.nested("qualification."), offer.qualification)
    if offer.budget is not None:
        _validate_budget(v.nested("budget."), offer.budget)
    if offer.schedule is not None:
        _validate_schedule(v.nested("schedule."), offer.schedule)
    if not isinstance(offer.custom_fields, dict):
        v.add("customFields", "must be an object")
    return v.violations


def _validate_text(v: ViolationCollector, path: str, value: str, limit: int) -> None:
    if len(value) > limit:
        v.add(path, f"must be at most {limit} characters, got {len(value)}")


def _validate_string_list(
    v: ViolationCollector, path: str, values: tuple[str, ...], max_items: int, max_length: int
) -> None:
    if len(values) > max_items:
        v.add(path, f"must hold at most {max_items} entries, got {len(values)}")
    seen: set[str] = set()
    for i, value in enumerate(values):
        if not value.strip():
            v.add(f"{path}[{i}]", "must not be empty")
        elif len(value) > max_length:
            v.add(f"{path}[{i}]", f"must be at most {max_length} characters, got {len(value)}")
        elif value in seen:
            v.add(f"{path}[{i}]", f"duplicates {value!r}")
        seen.add(value)


def _validate_qualification(v: ViolationCollector, q: Qualification) -> None:
    threshold = q.propensity_threshold
    if threshold is not None and not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        v.add("propensityThreshold", f"must be between 0 and 1, got {threshold}")
    if q.recency is not None and not 0 <= q.recency <= MAX_LOOKBACK_DAYS:
        v.add("recency", f"must be between 0 and {MAX_LOOKBACK_DAYS} days, got {q.recency}")
    _validate_string_list(v, "requiredSegments", q.required_segments, MAX_SEGMENTS, MAX_SEGMENT_LENGTH)
    if len(q.model_reference) > MAX_ID_REFERENCE_LENGTH:
        v.add("modelReference", f"must be at most {MAX_ID_REFERENCE_LENGTH} characters")


def _validate_money(v: ViolationCollector, path: str, amount: float | None, limit: float) -> bool:
    if amount is None:
        return True
    if not (math.isfinite(amount) and 0.0 <= amount <= limit):
        v.add(path, f"must be between 0 and {limit:g}, got {amount}")
        return False
    return True


def _validate_budget(v: ViolationCollector, b: Budget) -> None:
    if b.max_impressions is not None and b.max_impressions < 0:
        v.add("maxImpressions", f"must be 0 or more, got {b.max_impressions}")
    daily_ok = _validate_money(v, "maxDailyBudget", b.max_daily_budget, MAX_DAILY_BUDGET)
    cost_ok = _validate_money(v, "costPerAction", b.cost_per_action, MAX_COST_PER_ACTION)
    if daily_ok and cost_ok and b.max_daily_budget is not None and b.cost_per_action_micros <= 0:
        v.add(
            "costPerAction",
            "must be greater than 0 when maxDailyBudget is set (spend accrues per impression)",
        )


def _validate_schedule(v: ViolationCollector, s: Schedule) -> None:
    if s.start_date is not None and s.end_date is not None and s.end_date < s.start_date:
        v.add("endDate", f"must not be before startDate ({s.end_date.isoformat()} < {s.start_date.isoformat()})")
    seen: set[int] = set()
    for i, day in enumerate(s.days_of_week):
        if not 0 <= day <= 6:
            v.add(f"daysOfWeek[{i}]", f"must be 0 (Sunday) to 6 (Saturday), got {day}")
        elif day in seen:
            v.add(f"daysOfWeek[{i}]", f"duplicates day {day}")
        seen.add(day)
    if s.time_window is not None:
        start, end = parse_hhmm(s.time_window.start), parse_hhmm(s.time_window.end)
        if start is None:
            v.add("timeWindow.start", f'must be "HH:MM" between 00:00 and 23:59, got {s.time_window.start!r}')
        if end is None:
            v.add("timeWindow.end", f'must be "HH:MM" between 00:00 and 23:59, got {s.time_window.end!r}')
        if start is not None and start == end:
            v.add("timeWindow", "start and end must differ (an empty window would never open)")
    if s.timezone and load_timezone(s.timezone) is None:
        v.add("timezone", f"unknown IANA time zone {s.timezone!r}")


def prepare_new_offer(draft: Offer) -> tuple[Offer, list[FieldViolation]]:
    """The offer with create-time defaults applied, and every violation of it."""
    status = draft.status or OfferStatus.DRAFT
    offer = replace(draft, priority=draft.priority or Priority.MEDIUM, status=status)
    violations = validate_offer(offer)
    if status not in (OfferStatus.DRAFT, OfferStatus.ACTIVE):
        violations.append(FieldViolation("status", f"a new offer starts as draft or active, not {status.value}"))
    return offer, violations


def check_transition(old: OfferStatus, new: OfferStatus) -> None:
    """Raise FailedPrecondition unless old -> new is a legal lifecycle move (staying put is)."""
    if old is new or (old, new) in ALLOWED_MOVES:
        return
    allowed = sorted(to.value for frm, to in ALLOWED_MOVES if frm is old)
    hint = f"from {old.value} an offer can move to {', '.join(allowed)}" if allowed else f"{old.value} is final"
    raise FailedPrecondition(
        f"cannot move an offer from {old.value} to {new.value}: {hint}",
        reason="INVALID_STATUS_TRANSITION",
        metadata={"from": old.value, "to": new.value},
    )


def apply_update(current: Offer, patch: Offer, paths: list[str]) -> Offer:
    """`current` with every path in `paths` copied from `patch` (unset there means cleared).

    Archived offers are read-only; a move out of archived is reported as the
    illegal move it is first, naming both states.
    """
    if current.status is OfferStatus.ARCHIVED:
        if "status" in paths and patch.status not in (None, OfferStatus.ARCHIVED):
            check_transition(current.status, patch.status)
        raise FailedPrecondition(
            f"offer {current.id} is archived and read-only; it can only be deleted", reason="OFFER_ARCHIVED"
        )
    OFFER_UPDATES.check_required(patch, paths)
    return OFFER_UPDATES.apply(current, patch, paths)


def touches_custom_fields(paths: list[str]) -> bool:
    return any(p == "custom_fields" or p.startswith("custom_fields.") for p in paths)
