"""The decision funnel's invariants, through the Decide use case on the in-memory fakes (docs/rules.md "Decide")."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from core_helpers import ADMIN, START, TENANT, CoreUnderTest, make_core, run
from hypothesis import given, settings
from hypothesis import strategies as st

from arbiter.server.app.decisions import Decision
from arbiter.server.domain.catalog import Category, CategoryStatus, SubCategory
from arbiter.server.domain.decisions import CandidateFate, DropReason, PropensitySource
from arbiter.server.domain.errors import Decoded, InvalidArgument
from arbiter.server.domain.offers import Budget, Offer, OfferStatus, Priority, Qualification, Schedule, TimeWindow
from arbiter.server.domain.outcomes import OutcomeType
from arbiter.server.domain.policies import ContactPolicy, FrequencyCap, PolicyScope
from arbiter.server.domain.tenants import SettingsPatch
from arbiter.server.domain.timekeeping import to_epoch_micros

SEGMENTS = ("gold", "silver")
# Propensities whose products with every priority score / 100 are exact in float64 whichever way the
# product is written, so the oracle below can compare scores (and ties) exactly.
EXACT_PROPENSITIES = (0.0, 0.25, 0.5, 1.0)


def us(moment: datetime) -> int:
    return to_epoch_micros(moment)


def fates_by_id(decision: Decision) -> dict[str, CandidateFate]:
    assert decision.result.candidates is not None
    return {fate.offer.id: fate for fate in decision.result.candidates}


def answer(decision: Decision) -> list[tuple[str, int, float, float, PropensitySource]]:
    """What determinism is about: the offers, their order and their scores."""
    return [(d.offer.id, d.rank, d.score, d.propensity, d.source) for d in decision.result.offers]


async def set_timezone(t: CoreUnderTest, zone: str) -> None:
    await t.core.tenants.update_settings(t.principal, Decoded(SettingsPatch(timezone=zone)), ["timezone"])


# -- random catalogues -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One offer of a random catalogue, and the propensity the request gives it (None: none, so 0.5)."""

    priority: Priority
    mandatory: bool
    propensity: float | None
    segments: tuple[str, ...]
    threshold: float | None
    max_impressions: int | None
    daily_exhausted: bool
    seconds_later: int  # how far the clock moves before it is created (0: same createdAt as the one before)

    def offer(self, name: str) -> Offer:
        qualification = None
        if self.segments or self.threshold is not None:
            qualification = Qualification(propensity_threshold=self.threshold, required_segments=self.segments)
        budget = None
        if self.max_impressions is not None or self.daily_exhausted:
            budget = Budget(
                max_impressions=self.max_impressions,
                max_daily_budget=0.0 if self.daily_exhausted else None,
                cost_per_action=1.0 if self.daily_exhausted else None,
            )
        return Offer(
            name=name,
            status=OfferStatus.ACTIVE,
            priority=self.priority,
            mandatory=self.mandatory,
            qualification=qualification,
            budget=budget,
        )

    @property
    def effective_propensity(self) -> float:
        return 0.5 if self.propensity is None else self.propensity

    def drop_reason(self, customer_segments: frozenset[str]) -> DropReason | None:
        """The first step that drops it (mandatory offers skip qualification and budget)."""
        if self.mandatory:
            return None
        if not set(self.segments) <= customer_segments:
            return DropReason.MISSING_SEGMENTS
        if self.threshold is not None and self.effective_propensity < self.threshold:
            return DropReason.BELOW_PROPENSITY_THRESHOLD
        if self.max_impressions == 0:
            return DropReason.MAX_IMPRESSIONS_REACHED
        if self.daily_exhausted:
            return DropReason.DAILY_BUDGET_EXHAUSTED
        return None

    @property
    def score(self) -> float:
        return 1.0 if self.mandatory else self.effective_propensity * self.priority.score / 100


def spec_strategy(propensities: st.SearchStrategy[float]) -> st.SearchStrategy[Spec]:
    return st.builds(
        Spec,
        priority=st.sampled_from(Priority),
        mandatory=st.sampled_from([False, False, False, True]),
        propensity=st.one_of(st.none(), propensities),
        segments=st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=2).map(tuple),
        threshold=st.sampled_from([None, None, 0.3]),
        max_impressions=st.sampled_from([None, None, None, 0]),
        daily_exhausted=st.sampled_from([False, False, False, True]),
        seconds_later=st.sampled_from([0, 0, 1]),
    )


exact_catalogues = st.lists(spec_strategy(st.sampled_from(EXACT_PROPENSITIES)), max_size=25)
float_catalogues = st.lists(
    spec_strategy(st.one_of(st.sampled_from(EXACT_PROPENSITIES), st.floats(0.0, 1.0))), max_size=25
)
limits = st.one_of(st.integers(0, 6), st.integers(0, 50))
customer_segments = st.frozensets(st.sampled_from(SEGMENTS))


async def build(t: CoreUnderTest, specs: list[Spec]) -> list[tuple[Spec, Offer]]:
    built = []
    for i, spec in enumerate(specs):
        t.clock.advance(timedelta(seconds=spec.seconds_later))
        built.append((spec, await t.core.offers.create(ADMIN, Decoded(spec.offer(f"Offer {i:02d}")))))
    t.clock.advance(timedelta(minutes=1))
    return built


def propensities_of(built: list[tuple[Spec, Offer]]) -> dict[str, float]:
    return {offer.id: spec.propensity for spec, offer in built if spec.propensity is not None}


def sort_key(mandatory: bool, score: float, offer: Offer) -> tuple[bool, float, int, datetime, str]:
    """The one sort key (docs/rules.md): mandatory first, score desc, priority score desc, createdAt asc, id asc."""
    assert offer.created_at is not None
    return (not mandatory, -score, -offer.priority_score, offer.created_at, offer.id)


# -- ordering, limit, explain, determinism -------------------------------------------------------------------


@settings(max_examples=40)
@given(specs=float_catalogues, limit=limits, segments=customer_segments)
def test_returned_offers_follow_the_one_sort_key_with_ranks_1_to_n(
    specs: list[Spec], limit: int, segments: frozenset[str]
) -> None:
    async def scenario() -> None:
        t = make_core()
        built = await build(t, specs)
        decision = await t.decide(segments=segments, offer_propensities=propensities_of(built), limit=limit)
        offers = decision.result.offers
        assert [d.rank for d in offers] == list(range(1, len(offers) + 1))
        assert len(offers) <= (limit or 5)
        keys = [sort_key(d.offer.mandatory, d.score, d.offer) for d in offers]
        assert keys == sorted(keys)
        spec_of = {offer.id: spec for spec, offer in built}
        for d in offers:
            spec = spec_of[d.offer.id]
            assert d.propensity == spec.effective_propensity
            if d.offer.mandatory:
                assert d.score == 1.0
            else:
                assert d.score == pytest.approx(spec.effective_propensity * d.offer.priority_score / 100, rel=1e-12)

    run(scenario())


@settings(max_examples=50)
@given(specs=exact_catalogues, limit=limits, segments=customer_segments)
def test_the_answer_is_the_top_limit_of_the_eligible_and_explain_gives_every_candidate_once(
    specs: list[Spec], limit: int, segments: frozenset[str]
) -> None:
    async def scenario() -> None:
        t = make_core()
        built = await build(t, specs)
        request: dict[str, Any] = {"segments": segments, "offer_propensities": propensities_of(built), "limit": limit}
        plain = await t.decide(**request)
        explained = await t.decide(**request, explain=True)

        eligible = sorted(
            ((spec, offer) for spec, offer in built if spec.drop_reason(segments) is None),
            key=lambda pair: sort_key(pair[0].mandatory, pair[0].score, pair[1]),
        )
        wanted = limit or 5
        expected = [(offer.id, spec.score) for spec, offer in eligible[:wanted]]
        for decision in (plain, explained):
            assert [(d.offer.id, d.score) for d in decision.result.offers] == expected
        assert plain.result.candidates is None

        candidates = explained.result.candidates
        assert candidates is not None
        assert Counter(f.offer.id for f in candidates) == Counter(offer.id for _, offer in built)
        selected = [f for f in candidates if f.selected]
        assert len(selected) == len(expected)
        # Selected candidates come first, in rank order, with the scores of the answer.
        assert [(f.offer.id, f.score) for f in candidates[: len(selected)]] == expected
        assert all(f.reason is DropReason.NONE and not f.message for f in selected)
        below = {offer.id for _, offer in eligible[wanted:]}
        fates = fates_by_id(explained)
        for spec, offer in built:
            fate = fates[offer.id]
            if fate.selected:
                continue
            assert fate.message, fate
            if offer.id in below:
                assert fate.reason is DropReason.RANKED_BELOW_LIMIT
            else:
                assert fate.reason is spec.drop_reason(segments)

    run(scenario())


@settings(max_examples=30)
@given(specs=float_catalogues, limit=limits, segments=customer_segments, explain=st.booleans())
def test_the_same_request_twice_gives_the_same_offers_order_and_scores(
    specs: list[Spec], limit: int, segments: frozenset[str], explain: bool
) -> None:
    async def scenario() -> None:
        t = make_core()
        built = await build(t, specs)
        request: dict[str, Any] = {"segments": segments, "offer_propensities": propensities_of(built), "limit": limit}
        first = await t.decide(**request, explain=explain)
        second = await t.decide(**request, explain=explain)
        assert answer(first) == answer(second)
        assert first.decision_id != second.decision_id
        if explain:
            assert first.result.candidates is not None and second.result.candidates is not None
            assert [(f.offer.id, f.reason, f.score) for f in first.result.candidates] == [
                (f.offer.id, f.reason, f.score) for f in second.result.candidates
            ]

    run(scenario())


def test_limit_0_means_5_and_50_is_the_most_allowed() -> None:
    async def scenario() -> None:
        t = make_core()
        for i in range(60):
            await t.offer(f"Offer {i:02d}")
        assert len((await t.decide(limit=0)).result.offers) == 5
        assert len((await t.decide()).result.offers) == 5
        assert len((await t.decide(limit=50)).result.offers) == 50
        assert len((await t.decide(limit=1)).result.offers) == 1
        for bad in (51, -1):
            with pytest.raises(InvalidArgument) as info:
                await t.decide(limit=bad)
            assert [v.field for v in info.value.violations] == ["limit"]

    run(scenario())


def test_candidates_are_the_active_offers_matching_the_filters_mandatory_ones_included() -> None:
    async def scenario() -> None:
        t = make_core()
        x, y = await t.category("X"), await t.category("Y")
        sub = await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=x.id, name="X1"), "")
        in_x = await t.offer("In X", category_id=x.id, sub_category_id=sub.id, tags=("a", "b"))
        in_y = await t.offer("In Y", category_id=y.id, tags=("b", "a", "c"))
        one_tag = await t.offer("One tag", category_id=x.id, tags=("a",))
        nowhere = await t.offer("Nowhere mandatory", mandatory=True, tags=("a", "b"))
        await t.offer("Draft", status=OfferStatus.DRAFT, category_id=x.id, tags=("a", "b"))

        async def candidates(**filters: Any) -> set[str]:
            decision = await t.decide(explain=True, limit=50, **filters)
            assert decision.result.candidates is not None
            return {f.offer.id for f in decision.result.candidates}

        # Any of the categories, all of the tags.
        both = frozenset({x.id, y.id})
        assert await candidates(category_ids=both, tags=frozenset({"a", "b"})) == {in_x.id, in_y.id}
        assert await candidates(tags=frozenset({"a", "b"})) == {in_x.id, in_y.id, nowhere.id}
        assert await candidates(category_ids=frozenset({x.id})) == {in_x.id, one_tag.id}
        assert await candidates(sub_category_ids=frozenset({sub.id})) == {in_x.id}
        assert await candidates(tags=frozenset({"unknown"})) == set()
        assert await candidates() == {in_x.id, in_y.id, one_tag.id, nowhere.id}

    run(scenario())


# -- mandatory offers and scores -----------------------------------------------------------------------------


def test_a_mandatory_offer_ranks_first_reports_its_propensity_and_scores_1() -> None:
    async def scenario() -> None:
        t = make_core()
        best = await t.offer("Best optional", priority=Priority.CRITICAL)
        low = await t.offer("Low mandatory", priority=Priority.LOW, mandatory=True)
        critical = await t.offer("Critical mandatory", priority=Priority.CRITICAL, mandatory=True)
        decision = await t.decide(offer_propensities={best.id: 1.0, low.id: 0.2})
        assert t.ids(decision) == [critical.id, low.id, best.id]
        by_id = {d.offer.id: d for d in decision.result.offers}
        assert (by_id[low.id].score, by_id[low.id].propensity) == (1.0, 0.2)
        assert (by_id[critical.id].score, by_id[critical.id].propensity) == (1.0, 0.5)
        assert by_id[best.id].score == pytest.approx(0.9)

    run(scenario())


def test_mandatory_offers_skip_qualification_budget_and_bypassable_policies() -> None:
    async def scenario() -> None:
        t = make_core()
        config: dict[str, Any] = {
            "qualification": Qualification(propensity_threshold=0.9, recency=30, required_segments=("gold",)),
            "budget": Budget(max_impressions=1, max_daily_budget=1.0, cost_per_action=1.0),
        }
        mandatory = await t.offer("Mandatory", mandatory=True, **config)
        optional = await t.offer("Optional", **config)
        cap = ContactPolicy(name="one a day", scope=PolicyScope.GLOBAL, rule=FrequencyCap(max_per_day=1))
        await t.core.policies.create(ADMIN, Decoded(cap))
        # The impression reaches the cap, the daily budget and the frequency cap, and starts recency.
        for offer in (mandatory, optional):
            await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, f"shown-{offer.id}")
        t.clock.advance(timedelta(hours=1))
        scores = {mandatory.id: 0.1, optional.id: 0.1}
        decision = await t.decide(offer_propensities=scores, explain=True)
        assert t.ids(decision) == [mandatory.id]
        assert (decision.result.offers[0].score, decision.result.offers[0].propensity) == (1.0, 0.1)
        assert fates_by_id(decision)[optional.id].reason is DropReason.MISSING_SEGMENTS

    run(scenario())


def test_a_non_bypassable_policy_binds_mandatory_offers_too() -> None:
    async def scenario() -> None:
        t = make_core()
        mandatory = await t.offer("Mandatory", mandatory=True)
        cap = FrequencyCap(max_per_day=1)
        policy = ContactPolicy(name="hard cap", scope=PolicyScope.GLOBAL, rule=cap, bypassable=False)
        await t.core.policies.create(ADMIN, Decoded(policy))
        await t.outcome("c-1", mandatory.id, OutcomeType.IMPRESSION, "shown")
        t.clock.advance(timedelta(minutes=1))
        decision = await t.decide(explain=True)
        assert t.ids(decision) == []
        assert fates_by_id(decision)[mandatory.id].reason is DropReason.CONTACT_POLICY
        assert t.ids(await t.decide("c-2")) == [mandatory.id]

    run(scenario())


OUT_OF_SCHEDULE = {
    DropReason.SCHEDULE_NOT_STARTED: Schedule(start_date=START + timedelta(seconds=1)),
    DropReason.SCHEDULE_ENDED: Schedule(end_date=START - timedelta(seconds=1)),
    DropReason.SCHEDULE_DAY: Schedule(days_of_week=(0, 1, 2, 4, 5, 6)),  # START is a Wednesday (3)
    DropReason.SCHEDULE_TIME_WINDOW: Schedule(time_window=TimeWindow("13:00", "11:59")),
}


@pytest.mark.parametrize("reason", list(OUT_OF_SCHEDULE), ids=lambda r: r.name)
def test_mandatory_offers_obey_the_schedule(reason: DropReason) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Mandatory", mandatory=True, schedule=OUT_OF_SCHEDULE[reason])
        decision = await t.decide(explain=True)
        assert t.ids(decision) == []
        assert fates_by_id(decision)[offer.id].reason is reason

    run(scenario())


def test_propensity_comes_from_the_request_offer_then_request_model_then_adaptive_model_then_half() -> None:
    async def scenario() -> None:
        t = make_core()
        by_offer = await t.offer("By offer", priority=Priority.HIGH, qualification=Qualification(model_reference="m"))
        by_model = await t.offer("By model", priority=Priority.LOW, qualification=Qualification(model_reference="m"))
        learned = await t.offer("Learned", priority=Priority.CRITICAL, qualification=Qualification(model_reference="n"))
        untrained = await t.offer("Untrained", qualification=Qualification(model_reference="fresh"))
        plain = await t.offer("Plain", priority=Priority.HIGH)
        # One impression followed by a click: (1 + 1) / (1 + 2).
        await t.outcome("c-9", learned.id, OutcomeType.IMPRESSION, "seen")
        await t.outcome("c-9", learned.id, OutcomeType.CLICK, "clicked", at=START + timedelta(seconds=1))
        decision = await t.decide(
            offer_propensities={by_offer.id: 0.9}, model_propensities={"m": 0.2, "n": 0.0, "zzz": 1.0}
        )
        got = {d.offer.id: (d.propensity, d.source, d.score) for d in decision.result.offers}
        assert got[by_offer.id] == (0.9, PropensitySource.REQUEST_OFFER, pytest.approx(0.9 * 70 / 100))
        assert got[by_model.id] == (0.2, PropensitySource.REQUEST_MODEL, pytest.approx(0.2 * 25 / 100))
        # "n" is given by the request too, so the request wins over what the model learned.
        assert got[learned.id][:2] == (0.0, PropensitySource.REQUEST_MODEL)
        assert got[untrained.id] == (0.5, PropensitySource.ADAPTIVE_MODEL, pytest.approx(0.25))
        assert got[plain.id] == (0.5, PropensitySource.DEFAULT, pytest.approx(0.35))

        unasked = {d.offer.id: (d.propensity, d.source, d.score) for d in (await t.decide()).result.offers}
        assert unasked[learned.id] == (pytest.approx(2 / 3), PropensitySource.ADAPTIVE_MODEL, pytest.approx(0.6))
        assert unasked[by_offer.id] == (0.5, PropensitySource.ADAPTIVE_MODEL, pytest.approx(0.35))

    run(scenario())


@settings(max_examples=40)
@given(
    propensity=st.floats(0.0, 1.0),
    priority=st.sampled_from(Priority),
    source=st.sampled_from(["offer", "model"]),
)
def test_score_is_propensity_times_priority_score_over_100(propensity: float, priority: Priority, source: str) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Scored", priority=priority, qualification=Qualification(model_reference="m"))
        if source == "offer":
            decision = await t.decide(offer_propensities={offer.id: propensity}, model_propensities={"m": 0.5})
        else:
            decision = await t.decide(model_propensities={"m": propensity})
        [decided] = decision.result.offers
        assert decided.propensity == propensity
        assert decided.score == pytest.approx(propensity * priority.score / 100, rel=1e-12, abs=1e-300)

    run(scenario())


# -- every drop reason ---------------------------------------------------------------------------------------

Scenario = Callable[[CoreUnderTest], Awaitable[tuple[Offer, dict[str, Any], str]]]


async def _not_started(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Later", schedule=Schedule(start_date=START + timedelta(hours=1)))
    return offer, {}, "13:00"


async def _ended(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Over", schedule=Schedule(end_date=START - timedelta(hours=1)))
    return offer, {}, "11:00"


async def _day(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Weekends", schedule=Schedule(days_of_week=(0, 6)))
    return offer, {}, "[0, 6]"


async def _time_window(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Mornings", schedule=Schedule(time_window=TimeWindow("08:00", "10:30")))
    return offer, {}, "10:30"


async def _segments(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Gold", qualification=Qualification(required_segments=("gold", "vip")))
    return offer, {"segments": frozenset({"vip"})}, "gold"


async def _threshold(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Picky", qualification=Qualification(propensity_threshold=0.8))
    return offer, {"offer_propensities": {offer.id: 0.75}}, "0.8"


async def _recency(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Seen", qualification=Qualification(recency=7))
    await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, "seen", at=START - timedelta(days=6))
    return offer, {}, "7"


async def _contact_policy(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Capped by policy")
    cap = FrequencyCap(max_per_week=2)
    policy = ContactPolicy(name="two a week", scope=PolicyScope.OFFER, scope_id=offer.id, rule=cap)
    await t.core.policies.create(ADMIN, Decoded(policy))
    for n in range(2):
        await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, f"seen-{n}", at=START - timedelta(days=n + 1))
    return offer, {}, "2"


async def _max_impressions(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Three times", budget=Budget(max_impressions=3))
    for n in range(3):
        await t.outcome(f"other-{n}", offer.id, OutcomeType.IMPRESSION, f"seen-{n}")
    return offer, {}, "3"


async def _daily_budget(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    offer = await t.offer("Budgeted", budget=Budget(max_daily_budget=2.5, cost_per_action=1.25))
    for n in range(2):
        await t.outcome(f"other-{n}", offer.id, OutcomeType.IMPRESSION, f"seen-{n}")
    return offer, {}, "2.5"


async def _category_archived(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    category = await t.category("Retired")
    offer = await t.offer("In a retired category", category_id=category.id)
    archived = Category(id=category.id, status=CategoryStatus.ARCHIVED)
    await t.core.catalog.update_category(ADMIN, Decoded(archived), ["status"])
    return offer, {}, category.id


async def _ranked_below_limit(t: CoreUnderTest) -> tuple[Offer, dict[str, Any], str]:
    await t.offer("Winner", priority=Priority.HIGH)
    offer = await t.offer("Runner-up")
    return offer, {"limit": 1}, "1"


DROP_SCENARIOS: dict[DropReason, Scenario] = {
    DropReason.SCHEDULE_NOT_STARTED: _not_started,
    DropReason.SCHEDULE_ENDED: _ended,
    DropReason.SCHEDULE_DAY: _day,
    DropReason.SCHEDULE_TIME_WINDOW: _time_window,
    DropReason.MISSING_SEGMENTS: _segments,
    DropReason.BELOW_PROPENSITY_THRESHOLD: _threshold,
    DropReason.RECENCY: _recency,
    DropReason.CONTACT_POLICY: _contact_policy,
    DropReason.MAX_IMPRESSIONS_REACHED: _max_impressions,
    DropReason.DAILY_BUDGET_EXHAUSTED: _daily_budget,
    DropReason.CATEGORY_ARCHIVED: _category_archived,
    DropReason.RANKED_BELOW_LIMIT: _ranked_below_limit,
}


def test_every_drop_reason_but_none_has_a_scenario() -> None:
    assert set(DROP_SCENARIOS) == set(DropReason) - {DropReason.NONE}


@pytest.mark.parametrize("reason", list(DROP_SCENARIOS), ids=lambda r: r.name)
def test_each_drop_reason_is_reported_with_a_message_naming_its_numbers(reason: DropReason) -> None:
    async def scenario() -> None:
        t = make_core()
        offer, request, number = await DROP_SCENARIOS[reason](t)
        control = await t.offer("Always eligible", priority=Priority.CRITICAL)
        decision = await t.decide(explain=True, decision_us=us(START), **request)
        assert offer.id not in t.ids(decision)
        assert control.id in t.ids(decision)
        fate = fates_by_id(decision)[offer.id]
        assert (fate.selected, fate.reason) == (False, reason)
        assert fate.message and number in fate.message, fate.message
        # Without explain the offer is dropped just the same.
        assert offer.id not in t.ids(await t.decide(decision_us=us(START), **request))

    run(scenario())


# -- schedules -----------------------------------------------------------------------------------------------

# Whole-hour, half-hour and 45-minute offsets, both hemispheres' DST, a 30-minute DST shift, and UTC+14.
ZONES = (
    "UTC",
    "Asia/Tokyo",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
)


@dataclass(frozen=True)
class ScheduleSpec:
    start_after: timedelta | None  # startDate relative to the decision time
    end_after: timedelta | None
    days: tuple[int, ...]
    window: tuple[int, int] | None  # minutes of day, start != end
    zone: str  # "" : the tenant's

    def schedule(self, decision: datetime) -> Schedule:
        start = None if self.start_after is None else decision + self.start_after
        end = None if self.end_after is None else decision + self.end_after
        if start is not None and end is not None and end < start:
            start, end = end, start
        window = None
        if self.window is not None:
            window = TimeWindow(*(f"{m // 60:02d}:{m % 60:02d}" for m in self.window))
        return Schedule(start_date=start, end_date=end, days_of_week=self.days, time_window=window, timezone=self.zone)


def schedule_reason(schedule: Schedule, at: datetime, tenant_zone: str) -> DropReason | None:
    """The schedule step, as decisions.proto and docs/rules.md describe it."""
    if schedule.start_date is not None and at < schedule.start_date:
        return DropReason.SCHEDULE_NOT_STARTED
    if schedule.end_date is not None and at > schedule.end_date:
        return DropReason.SCHEDULE_ENDED
    local = at.astimezone(ZoneInfo(schedule.timezone or tenant_zone))
    weekday, minute = local.isoweekday() % 7, local.hour * 60 + local.minute
    inside, day = True, weekday
    if schedule.time_window is not None:
        start, end = (int(x[:2]) * 60 + int(x[3:]) for x in (schedule.time_window.start, schedule.time_window.end))
        if end < start:  # wraps: after midnight the window belongs to the day before
            inside = minute >= start or minute < end
            day = (weekday + 6) % 7 if minute < end else weekday
        else:
            inside = start <= minute < end
    if schedule.days_of_week and day not in schedule.days_of_week:
        return DropReason.SCHEDULE_DAY
    return None if inside else DropReason.SCHEDULE_TIME_WINDOW


offsets = st.one_of(
    st.none(),
    st.sampled_from([timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1)]),
    st.integers(-3 * 24 * 60, 3 * 24 * 60).map(lambda m: timedelta(minutes=m)),
)
windows = st.tuples(st.integers(0, 1439), st.integers(0, 1439)).filter(lambda w: w[0] != w[1])
schedule_specs = st.builds(
    ScheduleSpec,
    start_after=offsets,
    end_after=offsets,
    days=st.lists(st.integers(0, 6), unique=True, max_size=7).map(tuple),
    window=st.one_of(st.none(), windows),
    zone=st.one_of(st.just(""), st.sampled_from(ZONES)),
)
# Any minute of 2026 (DST changes included), at a random second.
instants = st.integers(0, 365 * 24 * 60 * 60 - 1).map(lambda s: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s))


@settings(max_examples=60)
@given(
    specs=st.lists(st.tuples(schedule_specs, st.booleans()), min_size=1, max_size=8),
    at=instants,
    tenant_zone=st.sampled_from(ZONES),
)
def test_the_schedule_step_follows_the_spec_in_every_zone(
    specs: list[tuple[ScheduleSpec, bool]], at: datetime, tenant_zone: str
) -> None:
    async def scenario() -> None:
        t = make_core()
        await set_timezone(t, tenant_zone)
        offers = [
            await t.offer(f"Scheduled {i}", schedule=spec.schedule(at), mandatory=mandatory)
            for i, (spec, mandatory) in enumerate(specs)
        ]
        decision = await t.decide(explain=True, decision_us=us(at), limit=50)
        plain = await t.decide(decision_us=us(at), limit=50)
        fates = fates_by_id(decision)
        for offer in offers:
            assert offer.schedule is not None
            expected = schedule_reason(offer.schedule, at, tenant_zone)
            assert fates[offer.id].reason is (expected or DropReason.NONE), (offer.schedule, at.isoformat())
            assert (offer.id in t.ids(plain)) is (expected is None)

    run(scenario())


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (START - timedelta(microseconds=1), DropReason.SCHEDULE_NOT_STARTED),
        (START, None),
        (START + timedelta(hours=2), None),
        (START + timedelta(hours=2, microseconds=1), DropReason.SCHEDULE_ENDED),
    ],
)
def test_start_and_end_dates_are_inclusive_instants(at: datetime, reason: DropReason | None) -> None:
    async def scenario() -> None:
        t = make_core()
        schedule = Schedule(start_date=START, end_date=START + timedelta(hours=2))
        offer = await t.offer("Two hours", schedule=schedule)
        decision = await t.decide(explain=True, decision_us=us(at))
        assert fates_by_id(decision)[offer.id].reason is (reason or DropReason.NONE)

    run(scenario())


# Wednesday 2026-06-03 23:30 UTC is Thursday 08:30 in Tokyo.
LATE_WEDNESDAY = datetime(2026, 6, 3, 23, 30, tzinfo=UTC)


def test_days_of_week_are_read_in_the_offers_zone_else_the_tenants() -> None:
    async def scenario() -> None:
        t = make_core()
        thursday_tokyo = await t.offer("Tokyo Thursday", schedule=Schedule(days_of_week=(4,), timezone="Asia/Tokyo"))
        thursday = await t.offer("Thursday", schedule=Schedule(days_of_week=(4,)))
        wednesday_utc = await t.offer("UTC Wednesday", schedule=Schedule(days_of_week=(3,), timezone="UTC"))
        at = us(LATE_WEDNESDAY)
        decision = await t.decide(explain=True, decision_us=at)
        assert set(t.ids(decision)) == {thursday_tokyo.id, wednesday_utc.id}
        assert fates_by_id(decision)[thursday.id].reason is DropReason.SCHEDULE_DAY
        await set_timezone(t, "Asia/Tokyo")
        # The tenant's zone now reads Thursday; an offer's own zone still wins over it.
        assert set(t.ids(await t.decide(decision_us=at))) == {thursday_tokyo.id, thursday.id, wednesday_utc.id}

    run(scenario())


def test_time_windows_are_read_in_the_offers_zone_else_the_tenants() -> None:
    async def scenario() -> None:
        t = make_core()
        # Noon UTC on 2026-06-03 is 08:00 in New York (EDT).
        window = TimeWindow("07:30", "08:30")
        new_york = await t.offer("NY morning", schedule=Schedule(time_window=window, timezone="America/New_York"))
        tenant_zone = await t.offer("Tenant morning", schedule=Schedule(time_window=window))
        decision = await t.decide(explain=True, decision_us=us(START))
        assert t.ids(decision) == [new_york.id]
        assert fates_by_id(decision)[tenant_zone.id].reason is DropReason.SCHEDULE_TIME_WINDOW
        await set_timezone(t, "America/New_York")
        assert set(t.ids(await t.decide(decision_us=us(START)))) == {new_york.id, tenant_zone.id}

    run(scenario())


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (datetime(2026, 6, 5, 21, 59, tzinfo=UTC), DropReason.SCHEDULE_TIME_WINDOW),  # Friday before it opens
        (datetime(2026, 6, 5, 22, 0, tzinfo=UTC), None),  # Friday, start inclusive
        (datetime(2026, 6, 6, 1, 59, tzinfo=UTC), None),  # Saturday night: Friday's window
        (datetime(2026, 6, 5, 2, 0, tzinfo=UTC), DropReason.SCHEDULE_TIME_WINDOW),  # end exclusive, on a Friday
        (datetime(2026, 6, 6, 2, 0, tzinfo=UTC), DropReason.SCHEDULE_DAY),  # closed, and Saturday's own day
        (datetime(2026, 6, 5, 1, 0, tzinfo=UTC), DropReason.SCHEDULE_DAY),  # Friday night: Thursday's window
        (datetime(2026, 6, 6, 23, 0, tzinfo=UTC), DropReason.SCHEDULE_DAY),  # Saturday's own window
    ],
)
def test_a_window_that_wraps_midnight_belongs_to_the_day_it_opens(at: datetime, reason: DropReason | None) -> None:
    async def scenario() -> None:
        t = make_core()
        schedule = Schedule(days_of_week=(5,), time_window=TimeWindow("22:00", "02:00"))
        offer = await t.offer("Friday nights", schedule=schedule)
        decision = await t.decide(explain=True, decision_us=us(at))
        assert fates_by_id(decision)[offer.id].reason is (reason or DropReason.NONE)

    run(scenario())


# -- recency -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ago", "blocked"),
    [(timedelta(days=2) - timedelta(microseconds=1), True), (timedelta(days=2), False), (timedelta(0), True)],
)
def test_recency_blocks_less_than_its_days_after_the_last_impression(ago: timedelta, blocked: bool) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Recent", qualification=Qualification(recency=2))
        await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, "seen", at=START - ago)
        assert (offer.id in t.ids(await t.decide(decision_us=us(START)))) is not blocked
        assert t.ids(await t.decide("c-2", decision_us=us(START))) == [offer.id]

    run(scenario())


def test_an_impression_after_the_decision_time_does_not_count_for_recency() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Recent", qualification=Qualification(recency=2))
        await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, "seen", at=START + timedelta(hours=1))
        assert t.ids(await t.decide(decision_us=us(START))) == [offer.id]

    run(scenario())


# -- budgets and recorded impressions ------------------------------------------------------------------------


@settings(max_examples=20)
@given(cap=st.integers(1, 8), extra=st.integers(1, 5), same_customer=st.booleans())
def test_an_offer_with_max_impressions_n_is_returned_exactly_n_times(cap: int, extra: int, same_customer: bool) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Capped", budget=Budget(max_impressions=cap))
        returned = 0
        for n in range(cap + extra):
            customer = "c-1" if same_customer else f"c-{n}"
            decision = await t.decide(customer, record_impressions=True)
            returned += offer.id in t.ids(decision)
            t.clock.advance(timedelta(seconds=1))
        assert returned == cap
        stats = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert stats.counts.lifetime_impressions == cap
        assert stats.remaining_impressions == 0
        assert len(t.db.outcomes[TENANT]) == cap

    run(scenario())


@pytest.mark.parametrize("cap", ["impressions", "daily budget"])
def test_concurrent_decisions_never_push_an_offer_past_its_cap(cap: str) -> None:
    """The commits are held, so no decision sees another's impression: only the reservations stop the overshoot."""

    async def scenario() -> None:
        t = make_core()
        budget = (
            Budget(max_impressions=4) if cap == "impressions" else Budget(max_daily_budget=1.0, cost_per_action=0.25)
        )
        offer = await t.offer("Scarce", budget=budget)
        gate = t.db.hold_commits()
        deciding = [asyncio.ensure_future(t.decide(f"c-{n}", record_impressions=True)) for n in range(20)]
        for _ in range(50):
            await asyncio.sleep(0)
        # The four that reserved wait for their commit; the others were answered without the offer.
        assert sum(not task.done() for task in deciding) == 4
        assert t.db.outcomes[TENANT] == []
        gate.set()
        decisions = await asyncio.gather(*deciding)
        assert sum(offer.id in t.ids(d) for d in decisions) == 4
        assert len(t.db.outcomes[TENANT]) == 4
        assert t.ids(await t.decide("late", record_impressions=True)) == []

    run(scenario())


def test_dry_run_records_nothing_even_with_record_impressions() -> None:
    async def scenario() -> None:
        t = make_core()
        capped = await t.offer("Capped", budget=Budget(max_impressions=1, max_daily_budget=1.0, cost_per_action=1.0))
        seen = await t.offer("Recency", qualification=Qualification(recency=1))
        for _ in range(5):
            decision = await t.decide(record_impressions=True, dry_run=True)
            assert set(t.ids(decision)) == {capped.id, seen.id}
        assert t.db.outcomes[TENANT] == [] and not t.db.ledger
        stats = await t.core.decisions.offer_stats(ADMIN, capped.id)
        assert (stats.counts.lifetime_impressions, stats.counts.today_spend_micros) == (0, 0)
        # The whole budget is still there for a real decision, and recency has not started.
        assert set(t.ids(await t.decide(record_impressions=True))) == {capped.id, seen.id}
        assert t.ids(await t.decide(record_impressions=True)) == []

    run(scenario())


def test_decide_records_nothing_without_record_impressions() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Capped", budget=Budget(max_impressions=1))
        for _ in range(3):
            assert t.ids(await t.decide()) == [offer.id]
        assert t.db.outcomes[TENANT] == []

    run(scenario())


def test_a_daily_budget_of_3_at_0_1_allows_exactly_30_impressions_a_day() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Daily", budget=Budget(max_daily_budget=3.0, cost_per_action=0.1))
        shown = [offer.id in t.ids(await t.decide(f"c-{n}", record_impressions=True)) for n in range(35)]
        assert shown == [True] * 30 + [False] * 5
        stats = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert (stats.counts.today_impressions, stats.counts.today_spend_micros) == (30, 3_000_000)
        assert stats.remaining_daily_budget_micros == 0
        # Spend resets at the tenant's midnight (UTC here).
        t.clock.set(datetime(2026, 6, 4, 0, 0, tzinfo=UTC))
        assert t.ids(await t.decide("c-next", record_impressions=True)) == [offer.id]

    run(scenario())


def test_mandatory_impressions_are_recorded_but_never_dropped_by_the_budget() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Notice", mandatory=True, budget=Budget(max_impressions=1))
        for n in range(3):
            assert t.ids(await t.decide(f"c-{n}", record_impressions=True)) == [offer.id]
        stats = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert stats.counts.lifetime_impressions == 3

    run(scenario())


def test_recorded_impressions_start_recency_for_the_next_decision() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Once a day", qualification=Qualification(recency=1))
        first = await t.decide(record_impressions=True)
        assert t.ids(first) == [offer.id]
        [stored] = t.db.outcomes[TENANT]
        assert (stored.decision_id, stored.occurred_us, stored.type) == (first.decision_id, t.now_us, 1)
        t.clock.advance(timedelta(hours=23))
        assert t.ids(await t.decide()) == []
        t.clock.advance(timedelta(hours=1))
        assert t.ids(await t.decide()) == [offer.id]

    run(scenario())


# -- drop counts (the metrics' source) ------------------------------------------------------------------------


def _explained_drops(decision: Decision) -> Counter[DropReason]:
    candidates = decision.result.candidates
    assert candidates is not None
    return Counter(f.reason for f in candidates if not f.selected and f.reason is not DropReason.RANKED_BELOW_LIMIT)


@settings(max_examples=40)
@given(specs=exact_catalogues, limit=limits, segments=customer_segments)
def test_every_decision_counts_its_drops_per_step_as_explain_reports_them(
    specs: list[Spec], limit: int, segments: frozenset[str]
) -> None:
    async def scenario() -> None:
        t = make_core()
        built = await build(t, specs)
        request: dict[str, Any] = {"segments": segments, "offer_propensities": propensities_of(built), "limit": limit}
        plain = await t.decide(**request)
        explained = await t.decide(**request, explain=True)

        assert Counter(explained.result.dropped) == _explained_drops(explained)
        assert plain.result.dropped == explained.result.dropped

    run(scenario())


@pytest.mark.parametrize(
    "reason", [r for r in DROP_SCENARIOS if r is not DropReason.RANKED_BELOW_LIMIT], ids=lambda r: r.name
)
def test_each_step_counts_the_offer_it_drops_with_or_without_explain(reason: DropReason) -> None:
    async def scenario() -> None:
        t = make_core()
        _, request, _ = await DROP_SCENARIOS[reason](t)
        await t.offer("Always eligible", priority=Priority.CRITICAL)
        for explain in (False, True):
            decision = await t.decide(explain=explain, decision_us=us(START), **request)
            assert decision.result.dropped == {reason: 1}, explain

    run(scenario())
