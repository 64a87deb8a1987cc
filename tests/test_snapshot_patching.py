"""A snapshot patched after offer changes equals one built from scratch (property tests, no I/O).

TenantViews patches the last snapshot when only offers changed (so a write
costs the changed rows, not the catalogue); these tests hold the patched
snapshot to the full build over the same offers, column by column and in
the answers the funnel gives.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from arbiter.server.domain.catalog_snapshot import CatalogSnapshot, OfferRows
from arbiter.server.domain.decision_engine import decide
from arbiter.server.domain.decisions import DecisionRequest
from arbiter.server.domain.offers import Budget, Offer, OfferStatus, Priority, Qualification, Schedule, TimeWindow
from arbiter.server.domain.policies import (
    AllowOverride,
    BudgetExhausted,
    ContactPolicy,
    MutualExclusion,
    PolicyScope,
    PolicyStatus,
    SegmentExclusion,
)

T0 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
IDS = [f"act_{i:016x}" for i in range(24)]
CATEGORIES = ["", "cat_a", "cat_b", "cat_c"]
TAGS = ["t1", "t2", "t3", "t4"]
SEGMENTS = ["s1", "s2", "s3"]
ZONES = ["", "UTC", "Europe/London", "Asia/Tokyo", "Not/AZone"]
BUDGETS = [None, Budget(max_impressions=3), Budget(max_daily_budget=2.0, cost_per_action=1.0)]
POLICIES = (
    ContactPolicy(id="cp_1", name="x", status=PolicyStatus.ACTIVE, priority=5, scope=PolicyScope.CATEGORY,
                  scope_id="cat_a", rule=SegmentExclusion(("s2",))),
    ContactPolicy(id="cp_2", name="y", status=PolicyStatus.ACTIVE, priority=4, scope=PolicyScope.GLOBAL,
                  rule=MutualExclusion(offer_ids=(IDS[1], IDS[2]), tag="t3")),
    ContactPolicy(id="cp_3", name="z", status=PolicyStatus.ACTIVE, priority=3, scope=PolicyScope.OFFER,
                  scope_id=IDS[4], rule=AllowOverride()),
    ContactPolicy(id="cp_4", name="w", status=PolicyStatus.ACTIVE, priority=2, scope=PolicyScope.SUB_CATEGORY,
                  scope_id="sub_1", rule=BudgetExhausted(), bypassable=False),
)  # fmt: skip


@st.composite
def offers(draw: st.DrawFn, offer_id: str) -> Offer:
    category = draw(st.sampled_from(CATEGORIES))
    schedule = None
    if draw(st.booleans()):
        start = T0 + timedelta(hours=draw(st.integers(-48, 48)))
        schedule = Schedule(
            start_date=start if draw(st.booleans()) else None,
            end_date=start + timedelta(hours=draw(st.integers(1, 96))) if draw(st.booleans()) else None,
            days_of_week=tuple(draw(st.sets(st.integers(0, 6), max_size=3))),
            time_window=draw(st.sampled_from([None, TimeWindow("09:00", "17:00"), TimeWindow("22:00", "02:00")])),
            timezone=draw(st.sampled_from(ZONES)),
        )
    return Offer(
        id=offer_id,
        name=offer_id,
        category_id=category,
        sub_category_id=draw(st.sampled_from(["", "sub_1", "sub_2"])) if category else "",
        priority=draw(st.sampled_from(list(Priority))),
        mandatory=draw(st.booleans()),
        status=draw(st.sampled_from([OfferStatus.ACTIVE, OfferStatus.ACTIVE, OfferStatus.PAUSED, OfferStatus.DRAFT])),
        tags=tuple(draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=3))),
        qualification=Qualification(
            propensity_threshold=draw(st.sampled_from([None, 0.3, 0.6])),
            recency=draw(st.sampled_from([None, 0, 2])),
            required_segments=tuple(draw(st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=2))),
            model_reference=draw(st.sampled_from(["", "m1", "m2"])),
        ),
        budget=draw(st.sampled_from(BUDGETS)),
        schedule=schedule,
        created_at=T0 - timedelta(days=draw(st.integers(0, 3))),
    )  # fmt: skip


@st.composite
def histories(draw: st.DrawFn) -> tuple[dict[str, Offer], list[dict[str, Offer | None]]]:
    """An initial catalogue and a few rounds of changes (None: the offer is deleted)."""
    first = {i: draw(offers(i)) for i in draw(st.lists(st.sampled_from(IDS), unique=True, max_size=16))}
    rounds = []
    for _ in range(draw(st.integers(1, 4))):
        changed = draw(st.lists(st.sampled_from(IDS), unique=True, min_size=1, max_size=5))
        rounds.append({i: (None if draw(st.integers(0, 4)) == 0 else draw(offers(i))) for i in changed})
    return first, rounds


def _rows_of(groups: dict[str, Any]) -> dict[str, list[int]]:
    return {key: np.asarray(rows).tolist() for key, rows in groups.items()}


def _segments_per_row(s: CatalogSnapshot) -> list[set[str]]:
    return [
        {name for name, (word, bit) in s.segment_bits.items() if int(row[word]) >> bit & 1}
        for row in s.required_segments
    ]


def assert_same(patched: CatalogSnapshot, built: CatalogSnapshot) -> None:
    assert patched.offers == built.offers
    assert patched.index == built.index
    assert [patched.zones[z].key for z in patched.zone_of] == [built.zones[z].key for z in built.zone_of]
    assert _segments_per_row(patched) == _segments_per_row(built)
    for name in (
        "start_us", "end_us", "days_mask", "has_window", "window_start", "window_end", "window_wraps", "threshold",
        "recency_us", "max_impressions", "daily_budget_micros", "cost_micros", "mandatory", "priority_score",
        "tiebreak", "category_archived", "optional_threshold", "optional_max_impressions", "optional_daily_budget",
        "optional_recency_us", "score_factor", "date_boundaries",
    ):  # fmt: skip
        assert np.array_equal(getattr(patched, name), getattr(built, name)), name
    for name in ("by_category", "by_sub_category", "by_tag", "by_model"):
        assert _rows_of(getattr(patched, name)) == _rows_of(getattr(built, name)), name
    assert patched.model_refs == built.model_refs
    for flag in (
        "any_dates", "any_days", "any_window", "any_segments", "any_threshold", "any_recency",
        "any_max_impressions", "any_daily_budget", "any_archived",
    ):  # fmt: skip
        assert getattr(patched, flag) == getattr(built, flag), flag
    p, b = patched.policies, built.policies
    assert p.offer_meta == b.offer_meta and p.needs_history == b.needs_history
    assert np.array_equal(p.any_member, b.any_member)
    for mine, theirs in zip(
        (*p.ordered, *p.overrides, *p.exclusions), (*b.ordered, *b.overrides, *b.exclusions), strict=True
    ):
        assert mine.policy is theirs.policy
        assert np.array_equal(mine.rows, theirs.rows)
        assert (mine.members is None) == (theirs.members is None)
        if mine.members is not None and theirs.members is not None:
            assert np.array_equal(mine.members, theirs.members)
        assert mine.member_ids == theirs.member_ids


class _Counters:
    def __init__(self, n: int) -> None:
        self.impressions = np.zeros(n, np.int64)
        self.propensity = np.full(n, 0.5)


def _answers(s: CatalogSnapshot, requests: list[DecisionRequest]) -> list[Any]:
    counters = _Counters(len(s))
    spend = np.zeros(len(s), np.int64)
    out = []
    for request in requests:
        result = decide(s, counters, spend, request, None)
        assert result.candidates is not None
        out.append(
            (
                [(d.offer.id, d.rank, d.score) for d in result.offers],
                sorted((f.offer.id, f.reason, f.message) for f in result.candidates),
            )
        )
    return out


REQUESTS = [
    DecisionRequest("c", int(T0.timestamp() * 1e6) + h * 3_600_000_000, segments=frozenset(seg), limit=50, explain=True)
    for h, seg in ((0, ()), (5, ("s1",)), (30, ("s1", "s2", "s3")), (-20, ("s2",)))
]


@settings(max_examples=120)
@given(histories(), st.sampled_from(["UTC", "Asia/Tokyo"]), st.sets(st.sampled_from(CATEGORIES[1:]), max_size=1))
def test_a_patched_snapshot_equals_a_full_build(
    history: tuple[dict[str, Offer], list[dict[str, Offer | None]]], zone: str, archived: set[str]
) -> None:
    first, rounds = history
    rows = OfferRows()
    catalogue = dict(first)
    snapshot = CatalogSnapshot.build(
        list(catalogue.values()), zone, frozenset(archived), {}, list(POLICIES), generation=1, rows=rows
    )
    for generation, changed in enumerate(rounds, start=2):
        for offer_id, offer in changed.items():
            if offer is None:
                catalogue.pop(offer_id, None)
            else:
                catalogue[offer_id] = offer
        snapshot = snapshot.with_offers(changed, generation=generation, rows=rows)
        built = CatalogSnapshot.build(
            list(catalogue.values()), zone, frozenset(archived), {}, list(POLICIES), generation=generation
        )
        assert snapshot.generation == generation
        assert_same(snapshot, built)
        assert _answers(snapshot, REQUESTS) == _answers(built, REQUESTS)


def test_patching_an_empty_catalogue_and_emptying_one() -> None:
    offer = Offer(
        id=IDS[0], name="only", status=OfferStatus.ACTIVE, priority=Priority.HIGH, tags=("t1",), created_at=T0
    )
    rows = OfferRows()
    empty = CatalogSnapshot.build([], "UTC", generation=1, rows=rows)
    one = empty.with_offers({offer.id: offer}, generation=2, rows=rows)
    assert one.offers == [offer] and _rows_of(one.by_tag) == {"t1": [0]}
    none = one.with_offers({offer.id: None}, generation=3, rows=rows)
    assert none.offers == [] and none.by_tag == {} and none.by_category == {}
    paused = one.with_offers({offer.id: replace(offer, status=OfferStatus.PAUSED)}, generation=4, rows=rows)
    assert paused.offers == [] and paused.policies.offer_meta == {offer.id: ("", "", ("t1",))}


def test_the_row_cache_holds_no_more_than_the_offers_that_are_active() -> None:
    offers = [Offer(id=i, name=i, status=OfferStatus.ACTIVE, created_at=T0) for i in IDS[:6]]
    rows = OfferRows()
    first = CatalogSnapshot.build(offers, "UTC", generation=1, rows=rows)
    assert len(rows) == 6
    first.with_offers({IDS[0]: None, IDS[1]: replace(offers[1], status=OfferStatus.PAUSED)}, generation=2, rows=rows)
    CatalogSnapshot.build(offers[2:5], "UTC", generation=3, rows=rows)  # a full build after more went away
    assert len(rows) == 3
