"""A customer's recent outcomes, as the decision funnel reads them (domain layer)."""

from __future__ import annotations

import bisect
from typing import NamedTuple

from .outcomes import OutcomeType

# The funnel never looks further back than this (recency and policy windows
# are at most 365 days); one extra day absorbs clock and time-zone edges.
HISTORY_LOOKBACK_US = 366 * 86_400 * 1_000_000
# A customer's history keeps at most this many (most recent) events.
MAX_EVENTS_PER_CUSTOMER = 2_000


class HistoryEvent(NamedTuple):
    """One outcome: when, its storage sequence (a tiebreak and identity), the offer, the type and the channel."""

    occurred_us: int
    seq: int
    offer_id: str
    type: int
    channel: str = ""


class CustomerHistory:
    """One customer's events in time order, bounded in count."""

    __slots__ = ("events", "memo")

    def __init__(self, events: list[HistoryEvent] | None = None) -> None:
        self.events: list[HistoryEvent] = sorted(events or ())
        del self.events[:-MAX_EVENTS_PER_CUSTOMER]
        # Views derived from the events (e.g. grouped by policy scope), dropped on every change.
        self.memo: dict[object, object] = {}

    def add(self, event: HistoryEvent) -> None:
        bisect.insort(self.events, event)
        if len(self.events) > MAX_EVENTS_PER_CUSTOMER:
            del self.events[0]
        self.memo.clear()

    def last_impressions(self, at_us: int) -> dict[str, int]:
        """The latest impression time of each offer, among impressions at or before `at_us`."""
        last: dict[str, int] = {}
        impression = OutcomeType.IMPRESSION
        for event in self.events:
            if event.occurred_us > at_us:
                break
            if event.type == impression:
                last[event.offer_id] = event.occurred_us
        return last
