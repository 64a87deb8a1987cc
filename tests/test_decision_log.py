"""The decision log and WhyNot on the in-memory fakes: sampling, retention, tenancy, and WhyNot == Decide's explain."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from core_helpers import ADMIN, START, CoreUnderTest, make_core, run
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arbiter.server.app.core import Core
from arbiter.server.domain.access import Principal, Role
from arbiter.server.domain.catalog import Category, CategoryStatus
from arbiter.server.domain.decision_log import FunnelStep, sampled, step_of
from arbiter.server.domain.decisions import DecisionRequest, DropReason
from arbiter.server.domain.errors import Decoded, NotFound
from arbiter.server.domain.offers import Budget, Offer, OfferStatus, Priority, Qualification, Schedule, TimeWindow
from arbiter.server.domain.outcomes import OutcomeType
from arbiter.server.domain.policies import ContactPolicy, FrequencyCap, PolicyScope
from arbiter.server.domain.timekeeping import ManualClock
from arbiter.server.storage.memory.backend import memory_stores


def logging_core(sample: float, *, days: int = 7) -> CoreUnderTest:
    """make_core with a decision log keeping `sample` of the decisions for `days`."""
    clock = ManualClock(START)
    stores, db = memory_stores(clock, decision_log_days=days)
    return CoreUnderTest(Core.start(stores, clock, decision_log_sample=sample), db, clock)


# -- sampling -------------------------------------------------------------------------------------------------


def test_sampling_is_a_deterministic_function_of_the_decision_id_and_the_rate() -> None:
    ids = [f"dec_{n:016x}" for n in range(2_000)]
    assert all(sampled(i, 1.0) for i in ids)
    assert not any(sampled(i, 0.0) for i in ids)
    assert [sampled(i, 0.3) for i in ids] == [sampled(i, 0.3) for i in ids]
    assert 0.25 < sum(sampled(i, 0.3) for i in ids) / len(ids) < 0.35
    # A higher rate keeps everything a lower one keeps.
    assert all(sampled(i, 0.6) for i in ids if sampled(i, 0.3))


def test_a_kept_decision_holds_request_answer_and_every_candidates_fate_without_explain() -> None:
    async def scenario() -> None:
        t = logging_core(1.0)
        winner = await t.offer("Winner", priority=Priority.HIGH)
        loser = await t.offer("Gold only", qualification=Qualification(required_segments=("gold",)))
        decision = await t.decide(segments=frozenset({"silver"}), attributes={"age": 40})
        assert decision.result.candidates is None  # the caller did not ask for explain
        logged = await t.core.decisions.get_decision(ADMIN, decision.decision_id)
        assert logged.decision_id == decision.decision_id
        assert logged.decision_us == decision.decision_us
        assert logged.request.segments == {"silver"} and logged.request.attributes == {"age": 40}
        assert [o.offer_id for o in logged.offers] == [winner.id]
        fates = {c.offer_id: c for c in logged.candidates}
        assert fates[winner.id].selected
        assert fates[loser.id].reason is DropReason.MISSING_SEGMENTS
        assert "gold" in fates[loser.id].message

    run(scenario())


def test_an_explained_decision_answers_the_same_with_the_log_on_and_off() -> None:
    async def scenario() -> None:
        answers = []
        for sample in (0.0, 1.0):
            t = logging_core(sample)
            await t.offer("A", priority=Priority.HIGH)
            await t.offer("B", qualification=Qualification(propensity_threshold=0.9))
            decision = await t.decide(explain=True)
            answers.append(
                (
                    [(d.offer.name, d.rank, d.score) for d in decision.result.offers],
                    [(c.offer.name, c.reason, c.message) for c in decision.result.candidates or ()],
                )
            )
        assert answers[0] == answers[1]

    run(scenario())


def test_an_unsampled_decision_is_not_found() -> None:
    async def scenario() -> None:
        t = logging_core(0.0)
        await t.offer("A")
        decision = await t.decide()
        assert t.db.decisions == {}
        with pytest.raises(NotFound):
            await t.core.decisions.get_decision(ADMIN, decision.decision_id)

    run(scenario())


def test_dry_runs_are_kept_when_sampled() -> None:
    async def scenario() -> None:
        t = logging_core(1.0)
        await t.offer("A")
        decision = await t.decide(dry_run=True, record_impressions=True)
        logged = await t.core.decisions.get_decision(ADMIN, decision.decision_id)
        assert logged.request.dry_run
        assert t.db.outcomes[ADMIN.tenant] == []  # the dry run itself recorded nothing

    run(scenario())


def test_another_tenants_decision_is_not_found() -> None:
    async def scenario() -> None:
        t = logging_core(1.0)
        await t.offer("A")
        decision = await t.decide()
        for other in (Principal("another", Role.ADMIN), Principal("another", Role.DECIDE)):
            with pytest.raises(NotFound):
                await t.core.decisions.get_decision(other, decision.decision_id)
        assert (await t.core.decisions.get_decision(ADMIN, decision.decision_id)).decision_id == decision.decision_id

    run(scenario())


def test_kept_decisions_expire_after_the_retention_counted_from_when_they_were_logged() -> None:
    async def scenario() -> None:
        t = logging_core(1.0, days=2)
        await t.offer("A")
        # Decided "in the past": retention counts from the log's own clock, not the decision time.
        old = await t.decide(decision_us=t.now_us - 30 * 86_400_000_000)
        t.clock.advance(timedelta(days=1))
        newer = await t.decide()
        assert (await t.core.decisions.get_decision(ADMIN, old.decision_id)) is not None
        t.clock.advance(timedelta(days=1, seconds=1))  # old is now 2 days + 1 s old, newer 1 day + 1 s
        with pytest.raises(NotFound):
            await t.core.decisions.get_decision(ADMIN, old.decision_id)
        assert (ADMIN.tenant, old.decision_id) not in t.db.decisions  # deleted, not just hidden
        assert (await t.core.decisions.get_decision(ADMIN, newer.decision_id)) is not None

    run(scenario())


# -- WhyNot ---------------------------------------------------------------------------------------------------


def _ask(customer: str = "c-1", **fields: Any) -> Decoded[DecisionRequest]:
    return Decoded(DecisionRequest(customer_id=customer, **fields))


def test_why_not_of_an_unknown_offer_is_not_found() -> None:
    async def scenario() -> None:
        t = make_core()
        with pytest.raises(NotFound):
            await t.core.decisions.why_not(ADMIN, "act_0000000000000000", _ask())

    run(scenario())


def test_why_not_of_an_offer_that_is_not_active_stops_at_the_inventory() -> None:
    async def scenario() -> None:
        t = make_core()
        paused = await t.offer("Draft", status=OfferStatus.DRAFT)
        answer = await t.core.decisions.why_not(ADMIN, paused.id, _ask())
        assert (answer.step, answer.reason, answer.returned) == (FunnelStep.INVENTORY, DropReason.NONE, False)
        assert "draft" in answer.message

    run(scenario())


def test_why_not_says_returned_and_rank_and_records_nothing() -> None:
    async def scenario() -> None:
        t = logging_core(1.0)
        await t.offer("First", priority=Priority.CRITICAL)
        second = await t.offer("Second")
        answer = await t.core.decisions.why_not(ADMIN, second.id, _ask(record_impressions=True))
        assert (answer.step, answer.returned, answer.rank) == (FunnelStep.OUTPUT, True, 2)
        below = await t.core.decisions.why_not(ADMIN, second.id, _ask(limit=1))
        assert (below.step, below.reason, below.rank) == (FunnelStep.RANK, DropReason.RANKED_BELOW_LIMIT, 2)
        assert t.db.outcomes[ADMIN.tenant] == [] and t.db.decisions == {}

    run(scenario())


# -- property: WhyNot gives Decide's step, reason and message, for every DropReason -----------------------------

DESIGNS = (
    "plain",
    "archived",
    "not_started",
    "ended",
    "day",
    "window",
    "segments",
    "threshold",
    "recency",
    "policy",
    "max_impressions",
    "daily_budget",
)
SEGMENTS = ("gold", "silver", "vip")


@dataclass(frozen=True)
class OfferCase:
    design: str
    number: int  # the design's parameter (hours, days, cap ...)
    count: int  # impressions to record before deciding
    mandatory: bool
    priority: Priority
    propensity: float
    segments: tuple[str, ...]
    days: tuple[int, ...]


offer_cases = st.builds(
    OfferCase,
    design=st.sampled_from(DESIGNS),
    number=st.integers(1, 4),
    count=st.integers(0, 4),
    mandatory=st.sampled_from([False] * 7 + [True]),  # now and then, to cover what mandatory offers skip
    priority=st.sampled_from(list(Priority)),
    propensity=st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9, 1.0]),
    segments=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=2, unique=True).map(tuple),
    days=st.lists(st.integers(0, 6), min_size=1, max_size=6, unique=True).map(tuple),
)


@dataclass(frozen=True)
class Case:
    tenant: str
    hours: int  # the decision time, in hours after START
    customer_segments: frozenset[str]
    limit: int
    offers: tuple[OfferCase, ...]


cases = st.builds(
    Case,
    tenant=st.sampled_from(["unit", "shop-2", "bank_3"]),
    hours=st.integers(0, 96),
    customer_segments=st.frozensets(st.sampled_from(SEGMENTS)),
    limit=st.integers(1, 3),
    offers=st.lists(offer_cases, min_size=1, max_size=6).map(tuple),
)


async def _build(t: CoreUnderTest, case: OfferCase, n: int) -> Offer:
    now = t.clock.now()
    fields: dict[str, Any] = {"priority": case.priority, "mandatory": case.mandatory}
    d = case.design
    if d == "archived":
        category = await t.category(f"Retired {n}")
        fields["category_id"] = category.id
    elif d == "not_started":
        fields["schedule"] = Schedule(start_date=now + timedelta(hours=case.number - 2))
    elif d == "ended":
        fields["schedule"] = Schedule(end_date=now - timedelta(hours=case.number - 2))
    elif d == "day":
        fields["schedule"] = Schedule(days_of_week=case.days)
    elif d == "window":
        start = (now.hour + case.number - 2) % 24
        fields["schedule"] = Schedule(time_window=TimeWindow(f"{start:02d}:00", f"{(start + 2) % 24:02d}:30"))
    elif d == "segments":
        fields["qualification"] = Qualification(required_segments=case.segments)
    elif d == "threshold":
        fields["qualification"] = Qualification(propensity_threshold=0.2 * case.number)
    elif d == "recency":
        fields["qualification"] = Qualification(recency=case.number)
    elif d == "max_impressions":
        fields["budget"] = Budget(max_impressions=case.number)
    elif d == "daily_budget":
        fields["budget"] = Budget(max_daily_budget=float(case.number), cost_per_action=1.0)
    offer = await t.offer(f"Offer {n} {d}", **fields)
    if d == "archived":
        archived = Category(id=offer.category_id, status=CategoryStatus.ARCHIVED)
        await t.core.catalog.update_category(t.principal, Decoded(archived), ["status"])
    elif d == "policy":
        cap = FrequencyCap(max_per_week=case.number)
        policy = ContactPolicy(name=f"cap {n}", scope=PolicyScope.OFFER, scope_id=offer.id, rule=cap)
        await t.core.policies.create(t.principal, Decoded(policy))
    for k in range(case.count if d in ("recency", "policy", "max_impressions", "daily_budget") else 0):
        customer = "c-1" if d in ("recency", "policy") else f"other-{k}"
        at = now - timedelta(days=k) if d == "recency" else now - timedelta(minutes=k)
        await t.outcome(customer, offer.id, OutcomeType.IMPRESSION, f"{offer.id}-{k}", at=at)
    return offer


def _certain(design: str, number: int, count: int = 0) -> OfferCase:
    """An offer of `design` whose parameters make it drop at that design's step for sure."""
    not_today = tuple(d for d in range(7) if d != START.isoweekday() % 7)
    return OfferCase(design, number, count, False, Priority.MEDIUM, 0.1, ("gold",), not_today)


# One case per drop reason that is sure to produce it, so every reason is covered on every run,
# whatever the random cases happen to hit (the drop's step is the design's; see _build).
SURE_CASES = [
    Case("unit", 0, frozenset(), 1, (_certain(design, number, count),))
    for design, number, count in (
        ("archived", 1, 0),
        ("not_started", 4, 0),
        ("ended", 4, 0),
        ("day", 1, 0),
        ("window", 4, 0),
        ("segments", 1, 0),
        ("threshold", 4, 0),
        ("recency", 2, 1),
        ("policy", 1, 2),
        ("max_impressions", 1, 1),
        ("daily_budget", 1, 1),
    )
] + [Case("unit", 0, frozenset(), 1, (_certain("plain", 1), _certain("plain", 1)))]  # one ranked below the limit


def test_why_not_gives_the_step_reason_and_message_of_decides_explain_for_every_drop_reason() -> None:
    seen: Counter[DropReason] = Counter()

    @given(case=cases)
    @settings(max_examples=120)
    def check(case: Case) -> None:
        async def scenario() -> None:
            t = make_core(START + timedelta(hours=case.hours))
            t.principal = Principal(case.tenant, Role.ADMIN)
            offers = [await _build(t, oc, n) for n, oc in enumerate(case.offers)]
            propensities = {o.id: oc.propensity for o, oc in zip(offers, case.offers, strict=True)}
            inputs: dict[str, Any] = {
                "decision_us": t.now_us,
                "segments": case.customer_segments,
                "offer_propensities": propensities,
                "limit": case.limit,
            }
            decision = await t.decide(explain=True, **inputs)
            fates = {c.offer.id: c for c in decision.result.candidates or ()}
            returned = [d.offer.id for d in decision.result.offers]
            for offer in offers:
                fate = fates[offer.id]
                answer = await t.core.decisions.why_not(t.principal, offer.id, _ask(**inputs))
                assert (answer.step, answer.reason, answer.message) == (
                    step_of(fate.reason),
                    fate.reason,
                    fate.message,
                )
                assert answer.returned == fate.selected == (offer.id in returned)
                if answer.returned:
                    assert answer.rank == returned.index(offer.id) + 1
                seen[fate.reason] += 1

        run(scenario())

    for sure in SURE_CASES:
        example(case=sure)(check)
    check()
    assert set(seen) == set(DropReason), f"reasons never generated: {set(DropReason) - set(seen)}"
