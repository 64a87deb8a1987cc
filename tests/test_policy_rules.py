"""Contact policies in Decide (docs/rules.md): each rule at its boundary, scopes, order, overrides, mandatory offers.

Every decision pins its clock with decision_time; impressions come from
Decide(record_impressions=True) or RecordOutcome(type impression, occurred_at).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from policy_helpers import (
    CONTACT_POLICY,
    DAY,
    HOUR,
    MINUTE,
    SECOND,
    T0,
    active_offer,
    blocked_by,
    category,
    decide,
    fate,
    ids,
    policy,
    policy_drops,
    record,
    shown,
    sub_category,
)

from arbiter.client import Client, outcome
from arbiter.v1 import decisions_pb2

# -- frequency_cap ----------------------------------------------------------------------


def test_frequency_cap_allows_the_nth_impression_and_blocks_the_next(client: Client) -> None:
    offer = active_offer(client, "A")
    cap = policy(client, "frequencyCap", {"maxPerDay": 3})
    for minute in range(3):
        assert shown(client, "c", T0 + minute * MINUTE) == [offer]
    answer = decide(client, "c", T0 + 3 * MINUTE, record_impressions=True)
    assert ids(answer) == []
    candidate = fate(answer, offer)
    assert candidate.reason == CONTACT_POLICY
    assert candidate.message == f"{cap.id} frequency_cap: 3 impressions in 1d >= max 3 (scope global)"
    assert client.get_offer_stats(offer).lifetime_impressions == 3  # the blocked decision recorded nothing
    assert ids(decide(client, "someone-else", T0 + 3 * MINUTE)) == [offer]  # counts are per customer


def test_frequency_cap_day_window_excludes_an_impression_exactly_24h_old(client: Client) -> None:
    offer = active_offer(client, "A")
    policy(client, "frequencyCap", {"maxPerDay": 1})
    client.decide("c", decision_time=T0, record_impressions=True, dry_run=True)  # records nothing
    assert shown(client, "c", T0) == [offer]
    assert ids(decide(client, "c", T0 + DAY - SECOND)) == []
    assert ids(decide(client, "c", T0 + DAY)) == [offer]
    # An impression in the decision's future does not count either.
    record(client, "d", offer, T0 + HOUR)
    assert ids(decide(client, "d", T0)) == [offer]
    assert ids(decide(client, "d", T0 + HOUR)) == []


def test_frequency_cap_week_window(client: Client) -> None:
    offer = active_offer(client, "A")
    cap = policy(client, "frequencyCap", {"maxPerWeek": 2})
    record(client, "c", offer, T0 - 7 * DAY)
    record(client, "c", offer, T0 - DAY)
    assert ids(decide(client, "c", T0)) == [offer]  # the first is exactly 7 days old: outside
    answer = decide(client, "c", T0 - SECOND)
    assert policy_drops(answer) == {offer: f"{cap.id} frequency_cap: 2 impressions in 7d >= max 2 (scope global)"}


def test_frequency_cap_month_window_and_the_first_exceeded_maximum(client: Client) -> None:
    offer = active_offer(client, "A")
    cap = policy(client, "frequencyCap", {"maxPerDay": 5, "maxPerWeek": 4, "maxPerMonth": 3})
    for days in (30, 20, 10):
        record(client, "c", offer, T0 - days * DAY)
    assert ids(decide(client, "c", T0)) == [offer]
    answer = decide(client, "c", T0 - SECOND)
    assert policy_drops(answer) == {offer: f"{cap.id} frequency_cap: 3 impressions in 30d >= max 3 (scope global)"}
    record(client, "c", offer, T0 - HOUR)
    record(client, "c", offer, T0 - 2 * HOUR)
    record(client, "c", offer, T0 - 3 * HOUR)
    record(client, "c", offer, T0 - 4 * HOUR)
    assert policy_drops(decide(client, "c", T0)) == {
        offer: f"{cap.id} frequency_cap: 4 impressions in 7d >= max 4 (scope global)"
    }


def test_frequency_cap_message_names_the_policy_rule_numbers_and_scope(client: Client) -> None:
    category(client, "cat_cards")
    gold = active_offer(client, "Gold", categoryId="cat_cards")
    silver = active_offer(client, "Silver", categoryId="cat_cards")
    cap = policy(client, "frequencyCap", {"maxPerWeek": 3}, scope="category", scope_id="cat_cards")
    record(client, "c", gold, T0 - 6 * DAY)
    record(client, "c", silver, T0 - 3 * DAY)
    record(client, "c", gold, T0 - HOUR)
    answer = decide(client, "c", T0)
    message = f"{cap.id} frequency_cap: 3 impressions in 7d >= max 3 (scope category cat_cards)"
    assert policy_drops(answer) == {gold: message, silver: message}
    assert all(not c.selected and c.score == 0 for c in answer.candidates)


# -- cooldown ---------------------------------------------------------------------------


def test_cooldown_blocks_until_min_hours_have_passed(client: Client) -> None:
    offer = active_offer(client, "A")
    other = active_offer(client, "B")
    cooldown = policy(client, "cooldown", {"minHours": 48}, scope="offer", scope_id=offer)
    assert shown(client, "c", T0) == [offer, other]
    answer = decide(client, "c", T0 + 48 * HOUR - SECOND)
    assert ids(answer) == [other]
    message = fate(answer, offer).message
    assert message.startswith(f"{cooldown.id} cooldown: last impression ")
    assert message.endswith(f"h ago < min 48h (scope offer {offer})")
    assert ids(decide(client, "c", T0 + 48 * HOUR)) == [offer, other]


def test_cooldown_measures_from_the_latest_impression_in_scope(client: Client) -> None:
    a = active_offer(client, "A")
    b = active_offer(client, "B")
    policy(client, "cooldown", {"minHours": 2.5})
    record(client, "c", a, T0 - 10 * HOUR)
    record(client, "c", b, T0 - 2 * HOUR)
    record(client, "c", a, T0 - 10 * HOUR, "click")  # not an impression
    assert ids(decide(client, "c", T0)) == []
    assert ids(decide(client, "c", T0 + 30 * MINUTE - SECOND)) == []
    assert ids(decide(client, "c", T0 + 30 * MINUTE)) == [a, b]


# -- customer_total_cap -----------------------------------------------------------------


def test_customer_total_cap_counts_every_offer_and_blocks_its_scope(client: Client) -> None:
    a = active_offer(client, "A")
    b = active_offer(client, "B")
    c = active_offer(client, "C")
    total = policy(client, "customerTotalCap", {"maxImpressions": 2, "windowDays": 1}, scope="offer", scope_id=c)
    record(client, "cust", a, T0 - 2 * HOUR)
    assert ids(decide(client, "cust", T0)) == [a, b, c]
    record(client, "cust", b, T0 - DAY + SECOND)
    answer = decide(client, "cust", T0)
    assert ids(answer) == [a, b]  # impressions of a and b count; only c is in scope
    assert fate(answer, c).message == (
        f"{total.id} customer_total_cap: 2 impressions across all offers in 1d >= max 2 (scope offer {c})"
    )
    assert ids(decide(client, "cust", T0 + SECOND)) == [a, b, c]  # b's impression left the window


def test_customer_total_cap_per_channel(client: Client) -> None:
    a = active_offer(client, "A")
    b = active_offer(client, "B")
    total = policy(client, "customerTotalCap", {"maxImpressions": 1, "windowDays": 7, "channel": "email"})
    record(client, "c", a, T0 - HOUR, channel="sms")
    record(client, "c", b, T0 - HOUR)
    assert ids(decide(client, "c", T0, channel="email")) == [a, b]  # other channels' impressions do not count
    assert shown(client, "c", T0, channel="email", limit=1) == [a]
    answer = decide(client, "c", T0 + MINUTE, channel="email")
    assert ids(answer) == []
    assert policy_drops(answer)[b] == (
        f"{total.id} customer_total_cap: 1 impressions on channel email in 7d >= max 1 (scope global)"
    )
    assert ids(decide(client, "c", T0 + MINUTE, channel="sms")) == [a, b]  # only email decisions are capped
    assert ids(decide(client, "c", T0 + MINUTE)) == [a, b]


# -- outcome_suppression ----------------------------------------------------------------


def test_outcome_suppression_after_k_outcomes_of_the_listed_types_in_scope(client: Client) -> None:
    category(client, "cat_cards")
    category(client, "cat_loans")
    gold = active_offer(client, "Gold", categoryId="cat_cards")
    silver = active_offer(client, "Silver", categoryId="cat_cards")
    loan = active_offer(client, "Loan", categoryId="cat_loans")
    rule = {"outcomeTypes": ["dismiss", "not_interested"], "minCount": 2, "windowDays": 7}
    suppression = policy(client, "outcomeSuppression", rule, scope="category", scope_id="cat_cards")
    record(client, "c", loan, T0 - DAY, "dismiss")  # out of scope
    record(client, "c", loan, T0 - DAY, "dismiss")
    record(client, "c", gold, T0 - DAY, "click")  # not a listed type
    record(client, "c", gold, T0 - 3 * DAY, "dismiss")
    assert ids(decide(client, "c", T0)) == [gold, silver, loan]
    record(client, "c", silver, T0 - DAY, "not_interested")
    answer = decide(client, "c", T0)
    assert ids(answer) == [loan]
    message = (
        f"{suppression.id} outcome_suppression: 2 dismiss/not_interested outcomes in 7d >= 2 (scope category cat_cards)"
    )
    assert policy_drops(answer) == {gold: message, silver: message}
    assert ids(decide(client, "c", T0 + 4 * DAY - SECOND)) == [loan]
    assert ids(decide(client, "c", T0 + 4 * DAY)) == [gold, silver, loan]  # the dismissal is 7 days old


def test_bulk_recorded_impressions_count_immediately(client: Client) -> None:
    offer = active_offer(client, "A")
    policy(client, "frequencyCap", {"maxPerDay": 2})
    results = client.record_outcomes(
        [outcome("c", offer, "impression", f"k{i}", occurred_at=T0 - i * HOUR) for i in (1, 2)]
    )
    assert [r.status for r in results] == [decisions_pb2.OUTCOME_STATUS_RECORDED] * 2
    assert ids(decide(client, "c", T0)) == []
    assert ids(decide(client, "c", T0 + DAY - HOUR)) == [offer]


def test_an_outcome_recorded_now_changes_the_very_next_decision(client: Client) -> None:
    offer = active_offer(client, "A")
    decision = client.decide("c", decision_time=T0, record_impressions=True)
    assert ids(decision) == [offer]
    policy(client, "outcomeSuppression", {"outcomeTypes": ["conversion"], "minCount": 1, "windowDays": 30})
    assert ids(decide(client, "c", T0)) == [offer]
    client.record_outcome("c", offer, "conversion", "conv-1", decision_id=decision.decision_id, occurred_at=T0)
    assert ids(decide(client, "c", T0)) == []


# -- category_suppression ---------------------------------------------------------------


def test_category_suppression_blocks_the_rest_of_the_category_for_n_hours(client: Client) -> None:
    category(client, "cat_cards")
    category(client, "cat_loans")
    gold = active_offer(client, "Gold", categoryId="cat_cards", priority="high")
    silver = active_offer(client, "Silver", categoryId="cat_cards")
    loan = active_offer(client, "Loan", categoryId="cat_loans", priority="low")
    plain = active_offer(client, "Plain", priority="low")
    suppression = policy(client, "categorySuppression", {"hours": 24})
    assert shown(client, "c", T0, limit=1) == [gold]
    answer = decide(client, "c", T0 + HOUR)
    assert ids(answer) == [gold, loan, plain]  # the shown offer itself and other categories pass
    assert policy_drops(answer) == {
        silver: f"{suppression.id} category_suppression: {gold} of category cat_cards shown 1.00h ago < 24h"
    }
    assert silver in policy_drops(decide(client, "c", T0 + DAY - SECOND))
    assert ids(decide(client, "c", T0 + DAY)) == [gold, silver, loan, plain]


def test_category_suppression_counts_impressions_in_its_scope_only(client: Client) -> None:
    category(client, "cat_cards")
    gold = active_offer(client, "Gold", categoryId="cat_cards")
    silver = active_offer(client, "Silver", categoryId="cat_cards")
    policy(client, "categorySuppression", {"hours": 6}, scope="channel", scope_id="email")
    record(client, "c", gold, T0 - HOUR, channel="sms")
    assert ids(decide(client, "c", T0, channel="email")) == [gold, silver]
    record(client, "c", gold, T0 - HOUR, channel="email")
    assert ids(decide(client, "c", T0, channel="email")) == [gold]
    assert ids(decide(client, "c", T0, channel="sms")) == [gold, silver]


# -- mutual_exclusion -------------------------------------------------------------------


def test_mutual_exclusion_keeps_the_best_ranked_member_before_the_limit_cut(client: Client) -> None:
    x = active_offer(client, "X", priority="high")
    y = active_offer(client, "Y", priority="medium")
    w = active_offer(client, "W", priority="low")
    z = active_offer(client, "Z", priority="low", tags=["exclusive"])
    fillers = [active_offer(client, f"Filler {i}", priority="low") for i in range(6)]  # a catalogue > 4 x limit
    exclusion = policy(client, "mutualExclusion", {"offerIds": [x, y], "tag": "exclusive"})
    answer = decide(client, "c", T0, limit=2)
    assert ids(answer) == [x, w]  # y and z drop before the cut, so w gets the second place
    assert all(fate(answer, f).reason == decisions_pb2.DROP_REASON_RANKED_BELOW_LIMIT for f in fillers)
    assert ids(client.decide("c", decision_time=T0, limit=2)) == [x, w]  # without explain too
    assert policy_drops(answer) == {
        y: f"{exclusion.id} mutual_exclusion: {x} ranks higher in the same set",
        z: f"{exclusion.id} mutual_exclusion: {x} ranks higher in the same set",
    }
    # The best-ranked member wins, whichever it is.
    assert ids(decide(client, "c", T0, offer_propensities={z: 1.0, x: 0.1, y: 0.1}, limit=2)) == [z, w]
    assert ids(decide(client, "c", T0, offer_propensities={y: 0.9}, limit=2)) == [y, w]


def test_mutual_exclusion_tag_members_added_after_the_policy_count(client: Client) -> None:
    x = active_offer(client, "X", priority="low", tags=["exclusive"])
    policy(client, "mutualExclusion", {"tag": "exclusive"})
    later = active_offer(client, "Later", priority="high", tags=["exclusive", "new"])
    free = active_offer(client, "Free", tags=["new"])
    assert ids(decide(client, "c", T0)) == [later, free]
    assert fate(decide(client, "c", T0), x).reason == CONTACT_POLICY


def test_mutual_exclusion_window_blocks_the_other_members(client: Client) -> None:
    x = active_offer(client, "X", priority="low")
    y = active_offer(client, "Y", priority="high")
    other = active_offer(client, "Other", priority="low")
    exclusion = policy(client, "mutualExclusion", {"offerIds": [x, y], "windowDays": 3})
    record(client, "c", x, T0)
    answer = decide(client, "c", T0 + DAY)
    assert ids(answer) == [x, other]  # x itself stays decidable
    assert policy_drops(answer) == {y: f"{exclusion.id} mutual_exclusion: member {x} shown 1.00d ago < 3d"}
    assert ids(decide(client, "c", T0 + 3 * DAY - SECOND)) == [x, other]
    at_three_days = decide(client, "c", T0 + 3 * DAY)
    assert ids(at_three_days) == [y, other]  # x's impression left the window; one per decision still holds
    assert "ranks higher" in fate(at_three_days, x).message
    assert ids(decide(client, "someone-else", T0 + DAY)) == [y, other]


def test_mutual_exclusion_window_of_a_channel_policy_counts_that_channels_impressions(client: Client) -> None:
    x = active_offer(client, "X", priority="low")
    y = active_offer(client, "Y", priority="high")
    policy(client, "mutualExclusion", {"offerIds": [x, y], "windowDays": 3}, scope="channel", scope_id="email")
    record(client, "c", x, T0 - HOUR, channel="sms")
    assert ids(decide(client, "c", T0, channel="email")) == [y]  # an sms impression is not this policy's
    record(client, "c", x, T0 - HOUR, channel="email")
    assert ids(decide(client, "c", T0, channel="email")) == [x]
    assert ids(decide(client, "c", T0, channel="sms")) == [y, x]  # sms decisions are not governed at all


# -- segment_exclusion ------------------------------------------------------------------


def test_segment_exclusion_blocks_customers_in_any_listed_segment_within_scope(client: Client) -> None:
    category(client, "cat_loans")
    category(client, "cat_news")
    loan = active_offer(client, "Loan", categoryId="cat_loans")
    news = active_offer(client, "News", categoryId="cat_news")
    exclusion = policy(
        client, "segmentExclusion", {"segments": ["minors", "bankrupt"]}, scope="category", scope_id="cat_loans"
    )
    assert ids(decide(client, "c", T0, segments=["adults", "vip"])) == [loan, news]
    answer = decide(client, "c", T0, segments=["vip", "bankrupt"])
    assert ids(answer) == [news]
    assert policy_drops(answer) == {
        loan: f"{exclusion.id} segment_exclusion: customer is in excluded segment bankrupt (scope category cat_loans)"
    }
    assert ids(decide(client, "c", T0, segments=["minors"])) == [news]


# -- time_window ------------------------------------------------------------------------


def test_time_window_reads_the_tenant_timezone(client: Client) -> None:
    offer = active_offer(client, "A")
    window = policy(client, "timeWindow", {"daysOfWeek": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"})
    opening = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)  # a Wednesday; 09:00 in Paris (UTC+1)
    closing = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # 18:00 in Paris
    assert ids(decide(client, "c", opening)) == []  # 08:00 in UTC, the default zone
    client.update_tenant_settings(timezone="Europe/Paris")
    answer = decide(client, "c", opening - SECOND)
    assert policy_drops(answer) == {
        offer: f"{window.id} time_window: local time 08:59 is outside 09:00-18:00 (scope global)"
    }
    assert ids(decide(client, "c", opening)) == [offer]
    assert ids(decide(client, "c", closing - SECOND)) == [offer]
    assert ids(decide(client, "c", closing)) == []
    saturday = decide(client, "c", datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    assert ids(saturday) == []
    assert "local day 6" in fate(saturday, offer).message


def test_time_window_wrapping_midnight_belongs_to_the_day_it_opens(client: Client) -> None:
    client.update_tenant_settings(timezone="Europe/Paris")
    offer = active_offer(client, "A")
    policy(client, "timeWindow", {"daysOfWeek": [5], "start": "22:00", "end": "02:00"})
    friday_late = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)  # Friday 22:00 in Paris
    assert ids(decide(client, "c", friday_late - SECOND)) == []
    assert ids(decide(client, "c", friday_late)) == [offer]
    assert ids(decide(client, "c", friday_late + 4 * HOUR - SECOND)) == [offer]  # Saturday 01:59:59
    assert ids(decide(client, "c", friday_late + 4 * HOUR)) == []  # Saturday 02:00
    assert ids(decide(client, "c", friday_late - DAY + HOUR)) == []  # Thursday 23:00


# -- budget_exhausted -------------------------------------------------------------------


def test_budget_exhausted_policy_blocks_offers_at_max_impressions(client: Client) -> None:
    capped = active_offer(client, "Capped", priority="high", budget={"maxImpressions": 2})
    free = active_offer(client, "Free")
    budget = policy(client, "budgetExhausted", {})
    assert shown(client, "c1", T0) == [capped, free]
    assert shown(client, "c2", T0) == [capped, free]
    answer = decide(client, "c3", T0)
    assert ids(answer) == [free]
    candidate = fate(answer, capped)
    assert candidate.reason == CONTACT_POLICY  # the policy, not the budget step
    assert candidate.message.startswith(f"{budget.id} budget_exhausted: 2 impressions >= maxImpressions 2")


def test_non_bypassable_budget_exhausted_binds_mandatory_offers(client: Client) -> None:
    notice = active_offer(client, "Notice", mandatory=True, budget={"maxImpressions": 1})
    record(client, "c", notice, T0 - HOUR)
    budget = policy(client, "budgetExhausted", {})
    assert ids(decide(client, "c", T0)) == [notice]  # bypassable, and the budget step skips mandatory offers
    client.update_contact_policy({"id": budget.id, "bypassable": False})
    answer = decide(client, "c", T0)
    assert ids(answer) == []
    assert blocked_by(answer, notice) == budget.id
    assert fate(answer, notice).mandatory


def test_non_bypassable_budget_exhausted_holds_under_concurrent_decisions(client: Client) -> None:
    notice = active_offer(client, "Notice", mandatory=True, budget={"maxImpressions": 5})
    policy(client, "budgetExhausted", {}, bypassable=False)

    def one(i: int) -> list[str]:
        return ids(client.decide(f"c{i}", decision_time=T0, record_impressions=True))

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, range(40)))
    assert sum(answer == [notice] for answer in answers) == 5
    assert client.get_offer_stats(notice).lifetime_impressions == 5


def test_budget_exhausted_policy_blocks_offers_over_todays_budget_with_the_numbers(client: Client) -> None:
    paid = active_offer(client, "Paid", budget={"costPerAction": 1, "maxDailyBudget": 2.5})
    budget = policy(client, "budgetExhausted", {})
    assert shown(client, "c1", T0) == [paid]
    assert shown(client, "c2", T0 + MINUTE) == [paid]
    answer = decide(client, "c3", T0 + 2 * MINUTE)  # spend 2 + cost 1 > 2.5
    assert ids(answer) == []
    assert ids(decide(client, "c3", datetime(2026, 11, 18, 23, 59, 59, tzinfo=UTC))) == []
    assert ids(decide(client, "c3", datetime(2026, 11, 19, 0, 0, tzinfo=UTC))) == [paid]  # a new UTC day
    candidate = fate(answer, paid)
    assert candidate.reason == CONTACT_POLICY
    assert candidate.message.startswith(f"{budget.id} budget_exhausted: ")
    assert "2.5" in candidate.message, candidate.message  # the numbers that decided it (maxDailyBudget)


# -- allow_override ---------------------------------------------------------------------


def test_allow_override_lifts_every_bypassable_policy_whatever_the_order(client: Client) -> None:
    category(client, "cat_service")
    vip = active_offer(client, "Service", categoryId="cat_service")
    other = active_offer(client, "Other")
    policy(client, "segmentExclusion", {"segments": ["opted_out"]}, priority=100)
    policy(client, "frequencyCap", {"maxPerDay": 1}, priority=60)
    policy(client, "allowOverride", {}, scope="category", scope_id="cat_service", priority=0)
    record(client, "c", vip, T0 - HOUR)
    answer = decide(client, "c", T0, segments=["opted_out"])
    assert ids(answer) == [vip]
    assert set(policy_drops(answer)) == {other}
    hard = policy(client, "segmentExclusion", {"segments": ["opted_out"]}, priority=1, bypassable=False)
    answer = decide(client, "c", T0, segments=["opted_out"])
    assert ids(answer) == []
    assert blocked_by(answer, vip) == hard.id  # overrides never lift a non-bypassable policy


def test_allow_override_takes_its_offer_out_of_bypassable_exclusion_sets(client: Client) -> None:
    x = active_offer(client, "X", priority="high")
    y = active_offer(client, "Y")
    policy(client, "mutualExclusion", {"offerIds": [x, y]}, priority=100)
    assert ids(decide(client, "c", T0)) == [x]
    policy(client, "allowOverride", {}, scope="offer", scope_id=y, priority=0)
    assert ids(decide(client, "c", T0)) == [x, y]


def test_allow_override_scoped_to_a_channel(client: Client) -> None:
    offer = active_offer(client, "A")
    policy(client, "segmentExclusion", {"segments": ["quiet"]})
    policy(client, "allowOverride", {}, scope="channel", scope_id="app")
    assert ids(decide(client, "c", T0, segments=["quiet"], channel="app")) == [offer]
    assert ids(decide(client, "c", T0, segments=["quiet"], channel="web")) == []


# -- scopes -----------------------------------------------------------------------------


def test_global_scope_counts_and_governs_every_offer(client: Client) -> None:
    category(client, "cat_cards")
    a = active_offer(client, "A", categoryId="cat_cards")
    b = active_offer(client, "B")
    policy(client, "frequencyCap", {"maxPerDay": 1})
    record(client, "c", a, T0 - HOUR, channel="email")
    assert set(policy_drops(decide(client, "c", T0))) == {a, b}
    assert set(policy_drops(decide(client, "c", T0, channel="sms"))) == {a, b}


def test_category_scope_counts_and_governs_its_offers_only(client: Client) -> None:
    category(client, "cat_cards")
    category(client, "cat_loans")
    gold = active_offer(client, "Gold", categoryId="cat_cards")
    silver = active_offer(client, "Silver", categoryId="cat_cards")
    loan = active_offer(client, "Loan", categoryId="cat_loans")
    plain = active_offer(client, "Plain")
    policy(client, "frequencyCap", {"maxPerDay": 1}, scope="category", scope_id="cat_cards")
    record(client, "c", loan, T0 - HOUR)
    record(client, "c", plain, T0 - HOUR)
    assert ids(decide(client, "c", T0)) == [gold, silver, loan, plain]
    record(client, "c", silver, T0 - HOUR)
    assert ids(decide(client, "c", T0)) == [loan, plain]
    # An offer that is no longer active still belongs to its category: its impressions count.
    paused = active_offer(client, "Paused", categoryId="cat_cards")
    record(client, "d", paused, T0 - HOUR)
    client.set_offer_status(paused, "paused")
    assert ids(decide(client, "d", T0)) == [loan, plain]


def test_sub_category_scope_counts_and_governs_its_offers_only(client: Client) -> None:
    category(client, "cat_cards")
    sub_category(client, "cat_cards", "sub_premium")
    sub_category(client, "cat_cards", "sub_basic")
    premium = active_offer(client, "Premium", categoryId="cat_cards", subCategoryId="sub_premium")
    basic = active_offer(client, "Basic", categoryId="cat_cards", subCategoryId="sub_basic")
    loose = active_offer(client, "Loose", categoryId="cat_cards")
    cap = policy(client, "frequencyCap", {"maxPerDay": 1}, scope="sub_category", scope_id="sub_premium")
    record(client, "c", basic, T0 - HOUR)
    record(client, "c", loose, T0 - HOUR)
    assert ids(decide(client, "c", T0)) == [premium, basic, loose]
    record(client, "c", premium, T0 - HOUR)
    answer = decide(client, "c", T0)
    assert ids(answer) == [basic, loose]
    assert blocked_by(answer, premium) == cap.id
    assert "sub_premium" in fate(answer, premium).message


def test_offer_scope_counts_and_governs_that_offer_only(client: Client) -> None:
    a = active_offer(client, "A")
    b = active_offer(client, "B")
    policy(client, "frequencyCap", {"maxPerDay": 2}, scope="offer", scope_id=a)
    record(client, "c", b, T0 - HOUR)
    record(client, "c", b, T0 - HOUR)
    record(client, "c", a, T0 - HOUR)
    assert ids(decide(client, "c", T0)) == [a, b]
    record(client, "c", a, T0 - MINUTE)
    assert ids(decide(client, "c", T0)) == [b]


def test_channel_scope_counts_that_channels_impressions_and_governs_its_decisions(client: Client) -> None:
    a = active_offer(client, "A")
    b = active_offer(client, "B")
    cap = policy(client, "frequencyCap", {"maxPerDay": 1}, scope="channel", scope_id="email")
    record(client, "c", a, T0 - HOUR, channel="sms")
    record(client, "c", a, T0 - HOUR)
    assert ids(decide(client, "c", T0, channel="email")) == [a, b]
    assert shown(client, "c", T0, channel="email", limit=1) == [a]  # recorded on the email channel
    answer = decide(client, "c", T0 + MINUTE, channel="email")
    assert ids(answer) == []
    assert policy_drops(answer)[b] == f"{cap.id} frequency_cap: 1 impressions in 1d >= max 1 (scope channel email)"
    assert ids(decide(client, "c", T0 + MINUTE, channel="sms")) == [a, b]
    assert ids(decide(client, "c", T0 + MINUTE)) == [a, b]


# -- order, mandatory offers, lifecycle -------------------------------------------------


def test_higher_priority_policy_is_reported_and_ties_go_to_the_smaller_id(client: Client) -> None:
    offer = active_offer(client, "A")
    low = policy(client, "segmentExclusion", {"segments": ["s"]}, priority=10)
    high = policy(client, "segmentExclusion", {"segments": ["s"]}, priority=90)
    assert blocked_by(decide(client, "c", T0, segments=["s"]), offer) == high.id
    client.update_contact_policy({"id": low.id, "priority": 95})
    assert blocked_by(decide(client, "c", T0, segments=["s"]), offer) == low.id
    client.update_contact_policy({"id": high.id, "priority": 95})
    assert blocked_by(decide(client, "c", T0, segments=["s"]), offer) == min(low.id, high.id)
    client.update_contact_policy({"id": low.id, "priority": 0}, ["priority"])
    assert blocked_by(decide(client, "c", T0, segments=["s"]), offer) == high.id


def test_only_the_first_blocking_policy_is_reported_and_later_ones_see_what_is_left(client: Client) -> None:
    a = active_offer(client, "A")
    b = active_offer(client, "B")
    first = policy(client, "cooldown", {"minHours": 1}, scope="offer", scope_id=a, priority=80)
    second = policy(client, "segmentExclusion", {"segments": ["s"]}, priority=20)
    record(client, "c", a, T0 - MINUTE)
    answer = decide(client, "c", T0, segments=["s"])
    assert blocked_by(answer, a) == first.id
    assert blocked_by(answer, b) == second.id


def test_mandatory_offers_meet_only_non_bypassable_policies(client: Client) -> None:
    notice = active_offer(client, "Notice", mandatory=True, priority="low")
    plain = active_offer(client, "Plain", priority="critical")
    policy(client, "frequencyCap", {"maxPerDay": 1}, priority=100)
    policy(client, "mutualExclusion", {"offerIds": [notice, plain]})
    record(client, "c", notice, T0 - HOUR)
    answer = decide(client, "c", T0)
    assert ids(answer) == [notice]
    assert blocked_by(answer, plain).startswith("cp_")
    assert ids(decide(client, "fresh", T0)) == [notice, plain]  # the exclusion set ignores the mandatory member
    hard = policy(client, "cooldown", {"minHours": 2}, scope="offer", scope_id=notice, priority=0, bypassable=False)
    answer = decide(client, "c", T0)
    assert ids(answer) == []
    assert blocked_by(answer, notice) == hard.id


def test_paused_and_archived_policies_are_not_evaluated(client: Client) -> None:
    offer = active_offer(client, "A")
    blocker = policy(client, "segmentExclusion", {"segments": ["s"]}, status="paused")
    assert ids(decide(client, "c", T0, segments=["s"])) == [offer]
    client.update_contact_policy({"id": blocker.id, "status": "active"})
    assert ids(decide(client, "c", T0, segments=["s"])) == []
    client.update_contact_policy({"id": blocker.id, "status": "paused"})
    assert ids(decide(client, "c", T0, segments=["s"])) == [offer]
    client.update_contact_policy({"id": blocker.id, "status": "archived"})
    assert ids(decide(client, "c", T0, segments=["s"])) == [offer]
    override = policy(client, "allowOverride", {}, status="paused")
    soft = policy(client, "segmentExclusion", {"segments": ["s"]}, bypassable=True)
    assert blocked_by(decide(client, "c", T0, segments=["s"]), offer) == soft.id  # a paused override lifts nothing
    client.update_contact_policy({"id": override.id, "status": "active"})
    assert ids(decide(client, "c", T0, segments=["s"])) == [offer]


def test_explain_reports_every_policy_drop_with_its_policy_rule_and_numbers(client: Client) -> None:
    category(client, "cat_cards")
    category(client, "cat_other")
    names = ("A", "B", "C", "D", "E", "G", "H")
    offers = {name: active_offer(client, name, categoryId="cat_cards") for name in names}
    offers["F"] = active_offer(client, "F", categoryId="cat_cards", budget={"maxImpressions": 1})
    offers["I"] = active_offer(client, "I", categoryId="cat_other")
    offers["J"] = active_offer(client, "J", categoryId="cat_other")
    by_offer: dict[str, tuple[str, dict[str, Any]]] = {
        "A": ("cooldown", {"minHours": 5}),
        "B": ("frequencyCap", {"maxPerWeek": 1}),
        "C": ("outcomeSuppression", {"outcomeTypes": ["complaint"], "minCount": 1, "windowDays": 90}),
        "D": ("timeWindow", {"start": "20:00", "end": "21:00"}),
        "E": ("customerTotalCap", {"maxImpressions": 6, "windowDays": 30}),
        "F": ("budgetExhausted", {}),
    }
    expected: dict[str, tuple[str, str]] = {}
    for name, (field, rule) in by_offer.items():
        created = policy(client, field, rule, scope="offer", scope_id=offers[name])
        expected[offers[name]] = (created.id, str(created.WhichOneof("rule")))
    pair = policy(client, "mutualExclusion", {"offerIds": [offers["G"], offers["H"]], "windowDays": 2})
    expected[offers["H"]] = (pair.id, "mutual_exclusion")
    rest = policy(client, "categorySuppression", {"hours": 12}, scope="category", scope_id="cat_other")
    expected[offers["J"]] = (rest.id, "category_suppression")
    record(client, "c", offers["A"], T0 - HOUR)
    record(client, "c", offers["B"], T0 - 2 * DAY)
    record(client, "c", offers["C"], T0 - 60 * DAY, "complaint")
    record(client, "c", offers["F"], T0 - 4 * DAY)
    record(client, "c", offers["G"], T0 - DAY)
    record(client, "c", offers["I"], T0 - HOUR)
    record(client, "c", offers["E"], T0 - 3 * DAY)

    answer = decide(client, "c", T0)
    assert ids(answer) == [offers["G"], offers["I"]]
    drops = policy_drops(answer)
    assert set(drops) == set(expected)
    for offer_id, (policy_id, rule_name) in expected.items():
        head, numbers = drops[offer_id].split(": ", 1)
        assert head == f"{policy_id} {rule_name}"
        assert re.search(r"\d", numbers), drops[offer_id]
    assert list(client.decide("c", decision_time=T0).candidates) == []  # candidates only with explain
