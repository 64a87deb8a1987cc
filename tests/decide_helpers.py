"""Builders and readers for the Decide and outcome tests: offers, a fixed clock, local instants, fates."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from arbiter.client import Client
from arbiter.v1 import decisions_pb2, offers_pb2

# Every Decide names its instant: Wednesday 3 March 2027, 12:00 UTC.
DECISION_TIME = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)

PRIORITY_SCORES = {"low": 25, "medium": 50, "high": 70, "critical": 90}


def unique_name(prefix: str = "offer") -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def new_key(prefix: str = "k") -> str:
    """A fresh idempotency key."""
    return f"{prefix}-{uuid.uuid4().hex}"


def offer_body(**overrides: Any) -> dict[str, Any]:
    """A seed-shape create body of an ACTIVE offer with a fresh name; `overrides` (camelCase) replace keys."""
    return {"name": unique_name(), "status": "active", **overrides}


def create_offer(client: Client, **overrides: Any) -> offers_pb2.Offer:
    """Create an ACTIVE offer from a seed-shape body; returns the stored offer."""
    return client.create_offer(offer_body(**overrides))


def make_offer(client: Client, **overrides: Any) -> str:
    """Create an ACTIVE offer from a seed-shape body; returns its id."""
    return create_offer(client, **overrides).id


def decide(client: Client, customer: str = "cust-1", **kwargs: Any) -> decisions_pb2.DecideResponse:
    """Decide at DECISION_TIME unless `decision_time` is given."""
    kwargs.setdefault("decision_time", DECISION_TIME)
    return client.decide(customer, **kwargs)


def offer_ids(response: decisions_pb2.DecideResponse) -> list[str]:
    """The returned offers' ids, in rank order."""
    return [o.offer_id for o in response.offers]


def fates(response: decisions_pb2.DecideResponse) -> dict[str, decisions_pb2.Candidate]:
    """Explain's candidates by offer id (each appears once)."""
    by_id = {c.offer_id: c for c in response.candidates}
    assert len(by_id) == len(response.candidates), "a candidate appears twice"
    return by_id


def reason_of(response: decisions_pb2.DecideResponse, offer_id: str) -> str | None:
    """None when the offer was selected, else the drop reason without its prefix ("RECENCY")."""
    candidate = fates(response)[offer_id]
    if candidate.selected:
        assert candidate.reason == decisions_pb2.DROP_REASON_UNSPECIFIED
        assert offer_id in offer_ids(response)
        return None
    assert offer_id not in offer_ids(response)
    assert candidate.message, f"a dropped candidate must say why: {candidate}"
    return decisions_pb2.DropReason.Name(candidate.reason).removeprefix("DROP_REASON_")


def source_name(decided: decisions_pb2.DecidedOffer) -> str:
    return decisions_pb2.PropensitySource.Name(decided.propensity_source).removeprefix("PROPENSITY_SOURCE_")


def returned(response: decisions_pb2.DecideResponse, offer_id: str) -> decisions_pb2.DecidedOffer:
    (decided,) = [o for o in response.offers if o.offer_id == offer_id]
    return decided


def weekday_number(day: date) -> int:
    """The schedule's day number: 0 = Sunday ... 6 = Saturday."""
    return day.isoweekday() % 7


def next_weekday(number: int, on_or_after: date) -> date:
    """The first date on or after `on_or_after` whose schedule day number is `number`."""
    day = on_or_after
    while weekday_number(day) != number:
        day += timedelta(days=1)
    return day


def local(day: date, hhmm: str, zone: str = "UTC", *, fold: int = 0) -> datetime:
    """The instant (in UTC) when the wall clock in `zone` shows `hhmm` on `day`."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    wall = datetime.combine(day, time(hours, minutes), tzinfo=ZoneInfo(zone)).replace(fold=fold)
    return wall.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """An RFC 3339 string with microseconds, as the seed's JSON dates are written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_impression(
    client: Client, customer: str, offer_id: str, at: datetime, *, key: str | None = None
) -> decisions_pb2.OutcomeResult:
    result = client.record_outcome(customer, offer_id, "impression", key or new_key("imp"), occurred_at=at)
    assert result.status == decisions_pb2.OUTCOME_STATUS_RECORDED
    return result


def sort_key(offer: offers_pb2.Offer, score: float) -> tuple[float, int, int, str]:
    """Specification's order for returned offers (non-mandatory): score, priority, createdAt, id."""
    priority = offers_pb2.Priority.Name(offer.priority).removeprefix("PRIORITY_").lower()
    created = offer.created_at.seconds * 10**9 + offer.created_at.nanos
    return (-score, -PRIORITY_SCORES[priority], created, offer.id)


def stats_dict(stats: decisions_pb2.OfferStats) -> Mapping[str, Any]:
    """The counters the tests compare, optional ones as None when unset."""
    return {
        "lifetime_impressions": stats.lifetime_impressions,
        "today_impressions": stats.today_impressions,
        "today_spend": stats.today_spend,
        "remaining_impressions": stats.remaining_impressions if stats.HasField("remaining_impressions") else None,
        "remaining_daily_budget": stats.remaining_daily_budget if stats.HasField("remaining_daily_budget") else None,
        "model_trials": stats.model_trials,
        "model_positives": stats.model_positives,
        "model_estimate": stats.model_estimate if stats.HasField("model_estimate") else None,
    }
