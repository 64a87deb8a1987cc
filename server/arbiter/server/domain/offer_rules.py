"""Offer rules: validation, defaults on create, lifecycle moves and partial updates (domain layer)."""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, fields, replace
from typing import Any

from .errors import FailedPrecondition, FieldViolation, InvalidArgument, ViolationCollector
from .offers import Budget, Offer, OfferStatus, Priority, Qualification, Schedule, TimeWindow
from .timekeeping import load_timezone, parse_hhmm

MAX_NAME_LENGTH = 255
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

# Paths an update mask may name. Nested paths address one field of a config;
# "custom_fields.<key>" addresses one custom field.
_PATH_TYPES: dict[str, type] = {
    "": Offer,
    "qualification": Qualification,
    "budget": Budget,
    "schedule": Schedule,
    "schedule.time_window": TimeWindow,
}
OUTPUT_ONLY_PATHS = frozenset({"id", "created_at", "updated_at"})
TOP_LEVEL_PATHS = tuple(f.name for f in fields(Offer) if f.name not in OUTPUT_ONLY_PATHS)
MUTABLE_PATHS = frozenset(
    (f"{prefix}.{f.name}" if prefix else f.name)
    for prefix, cls in _PATH_TYPES.items()
    for f in fields(cls)
    if not (prefix == "" and f.name in OUTPUT_ONLY_PATHS)
)
_CUSTOM_FIELD_PREFIX = "custom_fields."
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def camel(path: str) -> str:
    """A snake_case field path in the camelCase form violations use."""
    parts = path.split(".")
    out = []
    for i, part in enumerate(parts):
        if i > 0 and parts[0] == "custom_fields":
            out.append(".".join(parts[i:]))
            break
        head, *rest = part.split("_")
        out.append(head + "".join(word.capitalize() for word in rest))
    return ".".join(out)


def _snake(segment: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", segment).lower()


def validate_offer(offer: Offer) -> list[FieldViolation]:
    """Every field violation of a complete offer (after defaults or an update)."""
    v = ViolationCollector()
    _validate_text(v, "name", offer.name, MAX_NAME_LENGTH, required=True)
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


def _validate_text(v: ViolationCollector, path: str, value: str, limit: int, *, required: bool = False) -> None:
    if required and not value.strip():
        v.add(path, "is required and must not be only whitespace" if value else "is required")
    elif len(value) > limit:
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


def normalize_mask(paths: list[str]) -> list[str]:
    """Check and canonicalise update-mask paths (snake_case; "*" expands to every field)."""
    v = ViolationCollector()
    result: list[str] = []
    for raw in paths:
        if raw == "*":
            result.extend(TOP_LEVEL_PATHS)
            continue
        if raw.startswith(_CUSTOM_FIELD_PREFIX) or raw.startswith("customFields."):
            key = raw.split(".", 1)[1]
            if not key:
                v.add("updateMask", f"path {raw!r} names no custom field")
            result.append(_CUSTOM_FIELD_PREFIX + key)
            continue
        path = ".".join(_snake(segment) for segment in raw.split("."))
        if path in OUTPUT_ONLY_PATHS:
            v.add("updateMask", f"{raw!r} is output only and cannot be updated")
        elif path not in MUTABLE_PATHS:
            v.add("updateMask", f"unknown field path {raw!r}")
        else:
            result.append(path)
    v.raise_if_any()
    return list(dict.fromkeys(result))


def present_paths(patch: Offer) -> list[str]:
    """The leaf paths set in `patch`: what an update without a mask changes.

    Nothing here can clear a field: empty strings, empty lists, False and
    unset configs count as "not provided".
    """
    paths: list[str] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in fields(obj):
            path = f"{prefix}{f.name}"
            if prefix == "" and f.name in OUTPUT_ONLY_PATHS:
                continue
            value = getattr(obj, f.name)
            if path == "custom_fields":
                paths.extend(_CUSTOM_FIELD_PREFIX + key for key in value)
            elif path in _PATH_TYPES:
                if value is not None:
                    walk(value, path + ".")
            elif _provided(value):
                paths.append(path)

    walk(patch, "")
    return paths


def _provided(value: Any) -> bool:
    """Whether an update without a mask sets this value: 0 counts (it is a cap of zero); False, "" and () do not.

    Compared by type, because 0 == False in Python.
    """
    if value is None or value is False:
        return False
    if isinstance(value, (str, tuple)):
        return bool(value)
    return True


def apply_update(current: Offer, patch: Offer, paths: list[str]) -> Offer:
    """`current` with every path in `paths` copied from `patch` (unset there means cleared)."""
    if current.status is OfferStatus.ARCHIVED:
        if "status" in paths and patch.status not in (None, OfferStatus.ARCHIVED):
            # A move out of archived is an illegal move first: name both states.
            check_transition(current.status, patch.status)
        raise FailedPrecondition(
            f"offer {current.id} is archived and read-only; it can only be deleted", reason="OFFER_ARCHIVED"
        )
    required_if_named = [p for p in ("priority", "status") if p in paths and getattr(patch, p) is None]
    if required_if_named:
        raise InvalidArgument(
            [FieldViolation(p, "must be set when the update mask names it") for p in required_if_named]
        )
    result = current
    for path in paths:
        if path.startswith(_CUSTOM_FIELD_PREFIX):
            key = path[len(_CUSTOM_FIELD_PREFIX) :]
            custom = dict(result.custom_fields)
            if key in patch.custom_fields:
                custom[key] = patch.custom_fields[key]
            else:
                custom.pop(key, None)
            result = replace(result, custom_fields=custom)
        else:
            parts = path.split(".")
            result = _set_path(result, parts, _get_path(patch, parts))
    return result


def _field_default(cls: type, name: str) -> Any:
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    raise KeyError(name)


def _get_path(obj: Any, parts: list[str]) -> Any:
    for part in parts:
        if obj is None:  # an unset config: the leaf takes its default
            return _field_default(_PATH_TYPES[".".join(parts[:-1])], parts[-1])
        obj = getattr(obj, part)
    return obj


def _set_path(obj: Any, parts: list[str], value: Any, prefix: str = "") -> Any:
    name = parts[0]
    if len(parts) == 1:
        return replace(obj, **{name: value})
    child_path = f"{prefix}.{name}" if prefix else name
    child = getattr(obj, name)
    if child is None:
        child = _PATH_TYPES[child_path]()
    return replace(obj, **{name: _set_path(child, parts[1:], value, child_path)})
