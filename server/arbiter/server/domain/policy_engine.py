"""Contact policies compiled for a snapshot, and their step in the funnel (domain layer).

A PolicySet is built with the catalogue snapshot: each active policy's scope
becomes a row mask, mutual-exclusion sets become member masks. Per decision,
the customer's history is read once and its counts are aggregated once per
(scope, window) and reused by every policy that asks; a policy whose
customer-level condition does not hold (no impressions, not in a segment,
inside the time window) costs no array work at all.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from .arrays import BoolArray, IntArray
from .customer_history import CustomerHistory, HistoryEvent
from .offers import Offer, from_micros
from .outcomes import OutcomeType
from .policies import (
    AllowOverride,
    BudgetExhausted,
    CategorySuppression,
    ContactPolicy,
    ContactTimeWindow,
    Cooldown,
    CustomerTotalCap,
    FrequencyCap,
    MutualExclusion,
    OutcomeSuppression,
    PolicyScope,
    PolicyStatus,
    SegmentExclusion,
)
from .timekeeping import parse_hhmm

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
_IMPRESSION = int(OutcomeType.IMPRESSION)
# Offer id -> (category id, sub-category id, tags), for every offer of the tenant (active or not).
OfferMeta = dict[str, tuple[str, str, tuple[str, ...]]]


GLOBAL_KEY = "global:"


def scope_key(scope: PolicyScope | None, scope_id: str) -> str:
    """The name of a scope's group of history events ("category:cat_cards"; "global:" for everything)."""
    if scope is None or scope is PolicyScope.GLOBAL:
        return GLOBAL_KEY
    return f"{scope.value}:{scope_id}"


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """One active policy with its scope as a row mask over the snapshot."""

    policy: ContactPolicy
    rows: BoolArray
    members: BoolArray | None = None  # mutual exclusion: the set's rows
    member_ids: frozenset[str] = frozenset()  # mutual exclusion: every member, active or not
    scope_key: str = ""  # which history group the policy counts (see scope_key())
    channel: str | None = None  # the channel a channel-scoped policy governs; None: every decision

    def __post_init__(self) -> None:
        policy = self.policy
        object.__setattr__(self, "scope_key", scope_key(policy.scope, policy.scope_id))
        object.__setattr__(self, "channel", policy.scope_id if policy.scope is PolicyScope.CHANNEL else None)

    @functools.cached_property
    def label(self) -> str:
        return f"{self.policy.id} {self.policy.rule_name}"

    @property
    def scope_text(self) -> str:
        scope = self.policy.scope
        if scope is PolicyScope.GLOBAL or scope is None:
            return "scope global"
        return f"scope {scope.value.replace('_', '-')} {self.policy.scope_id}"

    def governs(self, channel: str) -> bool:
        return self.channel is None or self.channel == channel


@dataclass(frozen=True, eq=False)
class PolicySet:
    """A tenant's active policies in evaluation order, ready for the funnel."""

    ordered: tuple[CompiledPolicy, ...] = ()
    overrides: tuple[CompiledPolicy, ...] = ()
    exclusions: tuple[CompiledPolicy, ...] = ()
    offer_meta: OfferMeta = field(default_factory=dict)
    generation: int = 0  # names this offer_meta (kept while it holds): memos derived from it are keyed by it
    needs_history: bool = False
    any_member: BoolArray = field(default_factory=lambda: np.zeros(0, np.bool_))  # rows in some exclusion set

    def __bool__(self) -> bool:
        return bool(self.ordered or self.exclusions)

    def holds_to_budget(self, row: int, channel: str) -> bool:
        """Whether a non-bypassable budget_exhausted policy governs `row` on `channel`: then even a mandatory
        offer there stays within its maxImpressions and daily budget."""
        return any(
            isinstance(c.policy.rule, BudgetExhausted)
            and not c.policy.is_bypassable
            and c.governs(channel)
            and bool(c.rows[row])
            for c in self.ordered
        )


def compile_policies(
    policies: Iterable[ContactPolicy],
    offers: list[Offer],
    index: dict[str, int],
    meta: OfferMeta,
    rows_by: dict[str, dict[str, IntArray]],
    generation: int,
    previous: PolicySet | None = None,
    changed: Collection[str] = (),
) -> PolicySet:
    """Compile the active policies for a snapshot whose rows are `offers` (`index`: offer id -> row).

    `rows_by` holds the snapshot's row indexes by "category" and
    "sub_category"; `meta` describes every offer of the tenant, active or not.
    With the `previous` set and the offers `changed` since, a tag's members
    are carried over and only the changed offers looked at again.
    """
    n = len(offers)
    carried = {c.policy.id: c for c in previous.exclusions} if previous is not None else {}
    active = sorted(
        (p for p in policies if p.status is PolicyStatus.ACTIVE and p.rule is not None),
        key=lambda p: (-p.priority, p.id),
    )
    ordered: list[CompiledPolicy] = []
    overrides: list[CompiledPolicy] = []
    exclusions: list[CompiledPolicy] = []
    needs_history = False
    for policy in active:
        rows = np.zeros(n, np.bool_)
        scope, scope_id = policy.scope, policy.scope_id
        if scope in (PolicyScope.GLOBAL, PolicyScope.CHANNEL):
            rows[:] = True
        elif scope is PolicyScope.CATEGORY:
            rows[rows_by["category"].get(scope_id, [])] = True
        elif scope is PolicyScope.SUB_CATEGORY:
            rows[rows_by["sub_category"].get(scope_id, [])] = True
        elif scope is PolicyScope.OFFER and scope_id in index:
            rows[index[scope_id]] = True
        rule = policy.rule
        if isinstance(rule, AllowOverride):
            overrides.append(CompiledPolicy(policy, rows))
            continue
        if isinstance(rule, MutualExclusion):
            before = carried.get(policy.id)
            if before is not None and before.policy is policy:
                member_ids = {m for m in before.member_ids if m not in changed}
                member_ids |= {m for m in changed if m in rule.offer_ids or (m in meta and rule.tag in meta[m][2])}
            else:
                member_ids = set(rule.offer_ids)
                if rule.tag:
                    member_ids |= {offer_id for offer_id, (_, _, tags) in meta.items() if rule.tag in tags}
            members = np.zeros(n, np.bool_)
            members[[index[m] for m in member_ids if m in index]] = True
            compiled = CompiledPolicy(policy, rows & members, members & rows, frozenset(member_ids))
            exclusions.append(compiled)
            needs_history |= rule.window_days > 0
            if rule.window_days > 0:
                ordered.append(compiled)
            continue
        needs_history |= isinstance(
            rule, (FrequencyCap, Cooldown, CustomerTotalCap, OutcomeSuppression, CategorySuppression)
        )
        ordered.append(CompiledPolicy(policy, rows))
    any_member = np.zeros(n, np.bool_)
    for compiled in exclusions:
        if compiled.members is not None:
            any_member |= compiled.members
    return PolicySet(tuple(ordered), tuple(overrides), tuple(exclusions), meta, generation, needs_history, any_member)


_NO_META: tuple[str, str, tuple[str, ...]] = ("", "", ())


def _group_by_scope(events: list[HistoryEvent], meta: OfferMeta) -> dict[str, list[HistoryEvent]]:
    """Every event under each scope that contains it (global, its offer, category, sub-category, channel)."""
    groups: dict[str, list[HistoryEvent]] = {GLOBAL_KEY: events}
    for event in events:
        category, sub_category, _ = meta.get(event.offer_id, _NO_META)
        for key in (
            "offer:" + event.offer_id,
            "channel:" + event.channel,
            "category:" + category,
            "sub_category:" + sub_category,
        ):
            group = groups.get(key)
            if group is None:
                groups[key] = [event]
            else:
                group.append(event)
    return groups


class _CustomerView:
    """The customer's history as the policies read it.

    Events are grouped by scope, and each group's occurrence times sorted,
    once per history and offer metadata (memoised on the history until its
    next event, keyed by the metadata's generation: an offer's category may
    differ in another snapshot), so a window count is two binary searches;
    windows end at the decision time t.
    """

    def __init__(self, history: CustomerHistory | None, t_us: int, meta: OfferMeta, generation: int) -> None:
        self.t_us = t_us
        self.meta = meta
        self.generation = generation
        self._history = history if history is not None and history.events else None
        self._groups: dict[str, list[HistoryEvent]] = {}
        if self._history is not None:
            key = ("policy-scopes", generation)
            groups = self._history.memo.get(key)
            if groups is None:
                groups = _group_by_scope(self._history.events, meta)
                self._history.memo[key] = groups
            self._groups = groups  # type: ignore[assignment]

    def scoped(self, key: str) -> list[HistoryEvent]:
        return self._groups.get(key, [])

    def _times(self, key: str, types: frozenset[int]) -> list[int]:
        if self._history is None:
            return []
        memo_key = ("policy-times", self.generation, key, types)
        times = self._history.memo.get(memo_key)
        if times is None:
            times = [e.occurred_us for e in self._groups.get(key, ()) if e.type in types]  # events are in time order
            self._history.memo[memo_key] = times
        return times  # type: ignore[return-value]

    def count(self, key: str, window_us: int, types: frozenset[int]) -> int:
        """Events of the given types in the scope group within the window (t - W, t]."""
        times = self._times(key, types)
        return bisect.bisect_right(times, self.t_us) - bisect.bisect_right(times, self.t_us - window_us)

    def last(self, key: str, types: frozenset[int]) -> int | None:
        """The latest time at or before t of an event of the given types in the scope group."""
        times = self._times(key, types)
        i = bisect.bisect_right(times, self.t_us)
        return times[i - 1] if i else None


_IMPRESSIONS = frozenset({_IMPRESSION})


def _frequency_cap(rule: FrequencyCap, policy: CompiledPolicy, view: _CustomerView) -> str | None:
    key = policy.scope_key
    for cap, days, label in (
        (rule.max_per_day, 1, "1d"),
        (rule.max_per_week, 7, "7d"),
        (rule.max_per_month, 30, "30d"),
    ):
        if cap is None:
            continue
        count = view.count(key, days * US_PER_DAY, _IMPRESSIONS)
        if count >= cap:
            return f"{policy.label}: {count} impressions in {label} >= max {cap} ({policy.scope_text})"
    return None


def _cooldown(rule: Cooldown, policy: CompiledPolicy, view: _CustomerView) -> str | None:
    last = view.last(policy.scope_key, _IMPRESSIONS)
    if last is None:
        return None
    elapsed = view.t_us - last
    if elapsed < rule.min_hours * US_PER_HOUR:
        return (
            f"{policy.label}: last impression {elapsed / US_PER_HOUR:.2f}h ago < min {rule.min_hours:g}h "
            f"({policy.scope_text})"
        )
    return None


def _customer_total_cap(rule: CustomerTotalCap, policy: CompiledPolicy, view: _CustomerView) -> str | None:
    key = scope_key(PolicyScope.CHANNEL, rule.channel) if rule.channel else GLOBAL_KEY
    count = view.count(key, rule.window_days * US_PER_DAY, _IMPRESSIONS)
    if count >= rule.max_impressions:
        where = f" on channel {rule.channel}" if rule.channel else " across all offers"
        return (
            f"{policy.label}: {count} impressions{where} in {rule.window_days}d >= max {rule.max_impressions} "
            f"({policy.scope_text})"
        )
    return None


def _outcome_suppression(rule: OutcomeSuppression, policy: CompiledPolicy, view: _CustomerView) -> str | None:
    types = frozenset(rule.outcome_types)
    count = view.count(policy.scope_key, rule.window_days * US_PER_DAY, types)
    if count >= rule.min_count:
        names = "/".join(OutcomeType(t).name.lower() for t in sorted(types))
        return (
            f"{policy.label}: {count} {names} outcomes in {rule.window_days}d >= {rule.min_count} ({policy.scope_text})"
        )
    return None


def _local_day_minute(t_us: int, zone: ZoneInfo) -> tuple[int, int]:
    local = datetime.fromtimestamp(t_us / 1_000_000, zone)
    return local.isoweekday() % 7, local.hour * 60 + local.minute


def _time_window(rule: ContactTimeWindow, policy: CompiledPolicy, t_us: int, zone: ZoneInfo) -> str | None:
    weekday, minute = _local_day_minute(t_us, zone)
    day = weekday
    inside = True
    if rule.start and rule.end:
        start, end = parse_hhmm(rule.start) or 0, parse_hhmm(rule.end) or 0
        if end < start:  # wraps midnight: after midnight the day that counts is the one it opened
            inside = minute >= start or minute < end
            if minute < end:
                day = (weekday + 6) % 7
        else:
            inside = start <= minute < end
    hh_mm = f"{minute // 60:02d}:{minute % 60:02d}"
    if rule.days_of_week and day not in rule.days_of_week:
        return f"{policy.label}: local day {day} is not in daysOfWeek {sorted(rule.days_of_week)} ({policy.scope_text})"
    if not inside:
        return f"{policy.label}: local time {hh_mm} is outside {rule.start}-{rule.end} ({policy.scope_text})"
    return None


@dataclass(slots=True)
class PolicyDrop:
    """Rows a policy blocks, with the message explain reports (one for all rows, or one per row)."""

    rows: BoolArray
    message: str
    per_row: dict[int, str] | None = None


def evaluate_policies(
    policies: PolicySet,
    *,
    alive: BoolArray,
    exempt: BoolArray,
    index: dict[str, int],
    rows_by_category: dict[str, IntArray],
    request_channel: str,
    request_segments: frozenset[str],
    t_us: int,
    zone: ZoneInfo,
    history: CustomerHistory | None,
    impressions: IntArray,
    max_impressions: IntArray,
    spend_today: IntArray | None,
    cost: IntArray,
    daily_budget: IntArray,
    explain: bool,
) -> list[PolicyDrop]:
    """Step 5 before ranking: which alive offers each policy blocks, in evaluation order.

    `exempt` holds the rows bypassable policies skip (exempt_mask). `alive`
    is updated in place as policies drop offers, so a later policy never
    claims an offer an earlier one already removed. Rules that depend only on
    the customer are decided first; their rows are computed only when they
    block. Per-row messages are made only when `explain` asks for them.
    """
    drops: list[PolicyDrop] = []
    view = _CustomerView(history if policies.needs_history else None, t_us, policies.offer_meta, policies.generation)

    def governed(compiled: CompiledPolicy) -> BoolArray:
        rows = compiled.rows & alive
        if compiled.policy.is_bypassable:
            rows &= ~exempt
        return rows

    for compiled in policies.ordered:
        if not compiled.governs(request_channel):
            continue
        rule = compiled.policy.rule
        per_row: dict[int, str] | None = None
        message: str | None = None
        blocked: BoolArray | None = None
        if isinstance(rule, FrequencyCap):
            message = _frequency_cap(rule, compiled, view)
        elif isinstance(rule, Cooldown):
            message = _cooldown(rule, compiled, view)
        elif isinstance(rule, CustomerTotalCap):
            if not rule.channel or rule.channel == request_channel:
                message = _customer_total_cap(rule, compiled, view)
        elif isinstance(rule, OutcomeSuppression):
            message = _outcome_suppression(rule, compiled, view)
        elif isinstance(rule, SegmentExclusion):
            hit = sorted(request_segments.intersection(rule.segments))
            if hit:
                message = f"{compiled.label}: customer is in excluded segment {', '.join(hit)} ({compiled.scope_text})"
        elif isinstance(rule, ContactTimeWindow):
            message = _time_window(rule, compiled, t_us, zone)
        elif isinstance(rule, BudgetExhausted):
            over_cap = impressions >= max_impressions
            over_budget = (spend_today + cost > daily_budget) if spend_today is not None else np.zeros_like(alive)
            blocked = governed(compiled) & (over_cap | over_budget)
            if blocked.any():
                message = f"{compiled.label}: budget exhausted ({compiled.scope_text})"
            if blocked.any() and explain:
                per_row = {
                    i: (
                        f"{compiled.label}: {int(impressions[i])} impressions >= maxImpressions "
                        f"{int(max_impressions[i])}"
                        if over_cap[i]
                        else f"{compiled.label}: spend today {_money(spend_today, i)} + costPerAction "
                        f"{from_micros(int(cost[i])):g} > maxDailyBudget {from_micros(int(daily_budget[i])):g}"
                    )
                    for i in np.flatnonzero(blocked).tolist()
                }
        elif isinstance(rule, CategorySuppression):
            found, per_row = _category_suppression(rule, compiled, view, governed, index, rows_by_category, explain)
            if found is not None:
                blocked, message = found, compiled.label
        elif isinstance(rule, MutualExclusion):
            found, per_row = _recent_exclusion(rule, compiled, view, governed, index, explain)
            if found is not None:
                blocked, message = found, compiled.label
        if message is None:
            continue
        if blocked is None:
            blocked = governed(compiled)
        if not blocked.any():
            continue
        alive &= ~blocked
        drops.append(PolicyDrop(blocked, message, per_row))
    return drops


def _money(spend: IntArray | None, i: int) -> str:
    return f"{from_micros(int(spend[i])) if spend is not None else 0.0:g}"


def exempt_mask(policies: PolicySet, mandatory: BoolArray, request_channel: str) -> BoolArray:
    """Rows that bypassable policies skip: mandatory offers and offers an allow_override matches."""
    exempt = mandatory.copy()
    for override in policies.overrides:
        if override.governs(request_channel):
            exempt |= override.rows
    return exempt


def _category_suppression(
    rule: CategorySuppression,
    compiled: CompiledPolicy,
    view: _CustomerView,
    governed: Callable[[CompiledPolicy], BoolArray],
    index: dict[str, int],
    rows_by_category: dict[str, IntArray],
    explain: bool,
) -> tuple[BoolArray | None, dict[int, str] | None]:
    """Rows blocked because another offer of their category was shown within the window (messages if explaining)."""
    since = view.t_us - rule.hours * US_PER_HOUR
    shown: dict[str, dict[str, int]] = {}  # category -> offer -> last impression
    for event in view.scoped(compiled.scope_key):
        if event.type == _IMPRESSION and since < event.occurred_us <= view.t_us:
            category = view.meta.get(event.offer_id, _NO_META)[0]
            if category:
                shown.setdefault(category, {})[event.offer_id] = event.occurred_us
    if not shown:
        return None, None
    rows = governed(compiled)
    blocked = np.zeros_like(rows)
    messages: dict[int, str] | None = {} if explain else None
    for category, seen in shown.items():
        in_category = np.zeros_like(rows)
        in_category[rows_by_category.get(category, np.empty(0, np.int64))] = True
        in_category[[index[o] for o in seen if o in index]] = False  # the offers shown are not "the rest"
        newly = in_category & rows
        blocked |= newly
        if messages is not None:
            last_offer, last_us = max(seen.items(), key=lambda item: item[1])
            text = (
                f"{compiled.label}: {last_offer} of category {category} shown "
                f"{(view.t_us - last_us) / US_PER_HOUR:.2f}h ago < {rule.hours:g}h"
            )
            messages.update(dict.fromkeys(np.flatnonzero(newly).tolist(), text))
    return blocked, messages


def _recent_exclusion(
    rule: MutualExclusion,
    compiled: CompiledPolicy,
    view: _CustomerView,
    governed: Callable[[CompiledPolicy], BoolArray],
    index: dict[str, int],
    explain: bool,
) -> tuple[BoolArray | None, dict[int, str] | None]:
    """Members blocked because another member was shown within the window (messages if explaining)."""
    since = view.t_us - rule.window_days * US_PER_DAY
    shown: dict[str, int] = {}
    for event in view.scoped(compiled.scope_key):
        if (
            event.type == _IMPRESSION
            and since < event.occurred_us <= view.t_us
            and event.offer_id in compiled.member_ids
        ):
            shown[event.offer_id] = event.occurred_us
    if not shown:
        return None, None
    blocked = governed(compiled)
    if len(shown) == 1:  # the member shown is not blocked by itself; with two or more, every member is
        (only,) = shown
        if only in index:
            blocked[index[only]] = False
    if not explain:
        return blocked, None
    messages: dict[int, str] = {}
    ids = {i: offer_id for offer_id, i in index.items() if blocked[i]}
    for i, offer_id in ids.items():
        other, at = max(((k, v) for k, v in shown.items() if k != offer_id), key=lambda item: item[1])
        messages[i] = (
            f"{compiled.label}: member {other} shown {(view.t_us - at) / US_PER_DAY:.2f}d ago < {rule.window_days}d"
        )
    return blocked, messages


def exclude_in_ranking(
    policies: PolicySet,
    ranked: IntArray,
    exempt: BoolArray,
    request_channel: str,
    offers: list[Offer],
    *,
    explain: bool,
) -> dict[int, str]:
    """Mutual exclusion over the ranked list: the best-ranked member of each set stays.

    Returns the rows that drop, with their messages when explaining ("" otherwise).
    Offers a bypassable policy does not govern (mandatory, overridden) are
    invisible to it.
    """
    dropped: dict[int, str] = {}
    gone = np.zeros(len(exempt), np.bool_)
    for compiled in policies.exclusions:
        if not compiled.governs(request_channel) or compiled.members is None:
            continue
        governed = compiled.members[ranked] & ~gone[ranked]
        if compiled.policy.is_bypassable:
            governed &= ~exempt[ranked]
        positions = np.flatnonzero(governed)
        if len(positions) < 2:
            continue
        losers = ranked[positions[1:]]
        gone[losers] = True
        message = f"{compiled.label}: {offers[int(ranked[positions[0]])].id} ranks higher in the same set"
        dropped.update(dict.fromkeys(losers.tolist(), message if explain else ""))
    return dropped
