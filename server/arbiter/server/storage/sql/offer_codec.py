"""Offers to and from their stored JSON form (storage layer).

Instants are stored as integer microseconds since the epoch so that ordering
and equality are exact; money is stored as given and converted to micro-units
where it is used.
"""

from __future__ import annotations

import json
from typing import Any

from ...domain.offers import Budget, Offer, OfferStatus, Priority, Qualification, Schedule, TimeWindow
from ...domain.timekeeping import from_epoch_micros, to_epoch_micros


def offer_to_json(offer: Offer) -> str:
    body: dict[str, Any] = {
        "name": offer.name,
        "short_desc": offer.short_desc,
        "category_id": offer.category_id,
        "sub_category_id": offer.sub_category_id,
        "priority": offer.priority.value if offer.priority else None,
        "mandatory": offer.mandatory,
        "status": offer.status.value if offer.status else None,
        "tags": list(offer.tags),
        "custom_fields": offer.custom_fields,
    }
    if (q := offer.qualification) is not None:
        body["qualification"] = {
            "propensity_threshold": q.propensity_threshold,
            "recency": q.recency,
            "required_segments": list(q.required_segments),
            "model_reference": q.model_reference,
        }
    if (b := offer.budget) is not None:
        body["budget"] = {
            "max_impressions": b.max_impressions,
            "max_daily_budget": b.max_daily_budget,
            "cost_per_action": b.cost_per_action,
        }
    if (s := offer.schedule) is not None:
        body["schedule"] = {
            "start_us": to_epoch_micros(s.start_date) if s.start_date else None,
            "end_us": to_epoch_micros(s.end_date) if s.end_date else None,
            "days_of_week": list(s.days_of_week),
            "time_window": [s.time_window.start, s.time_window.end] if s.time_window else None,
            "timezone": s.timezone,
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def offer_from_row(offer_id: str, created_us: int, updated_us: int, body_json: str) -> Offer:
    body = json.loads(body_json)
    qualification = schedule = budget = None
    if (q := body.get("qualification")) is not None:
        qualification = Qualification(
            propensity_threshold=q["propensity_threshold"],
            recency=q["recency"],
            required_segments=tuple(q["required_segments"]),
            model_reference=q["model_reference"],
        )
    if (b := body.get("budget")) is not None:
        budget = Budget(b["max_impressions"], b["max_daily_budget"], b["cost_per_action"])
    if (s := body.get("schedule")) is not None:
        window = s["time_window"]
        schedule = Schedule(
            start_date=from_epoch_micros(s["start_us"]) if s["start_us"] is not None else None,
            end_date=from_epoch_micros(s["end_us"]) if s["end_us"] is not None else None,
            days_of_week=tuple(s["days_of_week"]),
            time_window=TimeWindow(window[0], window[1]) if window else None,
            timezone=s["timezone"],
        )
    return Offer(
        id=offer_id,
        name=body["name"],
        short_desc=body["short_desc"],
        category_id=body["category_id"],
        sub_category_id=body["sub_category_id"],
        priority=Priority(body["priority"]),
        mandatory=body["mandatory"],
        status=OfferStatus(body["status"]),
        tags=tuple(body["tags"]),
        qualification=qualification,
        budget=budget,
        schedule=schedule,
        custom_fields=body["custom_fields"],
        created_at=from_epoch_micros(created_us),
        updated_at=from_epoch_micros(updated_us),
    )
