"""The decision funnel: inventory, schedule, qualification, policies, budget, score, rank (domain layer).

Pure computation over a CatalogSnapshot, the tenant's live counters and the
customer's history: no I/O, no clock (the request carries the decision time),
no randomness, so the same inputs always give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from .arrays import BoolArray, FloatArray, IntArray
from .catalog_snapshot import NO_CAP, US_PER_DAY, CatalogSnapshot
from .customer_history import CustomerHistory
from .decisions import (
    CandidateFate,
    DecidedOffer,
    DecisionRequest,
    DecisionResult,
    DropReason,
    PropensitySource,
)
from .offers import Offer, from_micros
from .policy_engine import evaluate_policies, exclude_in_ranking, exempt_mask
from .timekeeping import from_epoch_micros

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


class LiveCounters(Protocol):
    """Counters that move with every impression, aligned with a snapshot's rows."""

    @property
    def impressions(self) -> IntArray:
        """Lifetime impressions, reservations included."""
        ...

    @property
    def propensity(self) -> FloatArray:
        """The adaptive model's estimate for offers with a model reference, else 0.5."""
        ...


@dataclass(slots=True)
class Funnel:
    """The state one decision moves through the steps; contact-policy stages work on it too."""

    snapshot: CatalogSnapshot
    request: DecisionRequest
    history: CustomerHistory | None
    alive: BoolArray
    reasons: IntArray | None
    messages: dict[int, str]
    propensity: FloatArray
    alive_count: int = 0
    # Rows each step removed, for every decision (explain or not): counts of the masks, not reasons per row.
    dropped: dict[DropReason, int] = field(default_factory=dict)
    _exempt: BoolArray | None = None

    def exempt(self) -> BoolArray:
        """Rows bypassable contact policies skip (mandatory or overridden), computed once per decision."""
        if self._exempt is None:
            self._exempt = exempt_mask(self.snapshot.policies, self.snapshot.mandatory, self.request.channel)
        return self._exempt

    def tally(self, reason: DropReason) -> None:
        """Count the offers the step just removed from `alive` under `reason`."""
        after = int(np.count_nonzero(self.alive))
        if after < self.alive_count:
            self.dropped[reason] = self.dropped.get(reason, 0) + self.alive_count - after
        self.alive_count = after

    def drop(self, condition: BoolArray, reason: DropReason) -> None:
        """Remove every alive offer where `condition` holds, recording `reason` when explaining."""
        if self.reasons is not None:
            self.reasons[self.alive & condition] = reason
        self.alive &= ~condition
        self.tally(reason)

    def drop_with_messages(self, rows: BoolArray, reason: DropReason, messages: dict[int, str] | str) -> None:
        """Remove `rows` (all alive) with one message for all, or one per row, when explaining."""
        if self.reasons is not None:
            self.reasons[rows] = reason
            for i in np.flatnonzero(rows).tolist():
                self.messages[i] = messages if isinstance(messages, str) else messages[i]
        self.alive &= ~rows
        self.tally(reason)


def decide(
    snapshot: CatalogSnapshot,
    live: LiveCounters,
    spend_today: IntArray | None,
    request: DecisionRequest,
    history: CustomerHistory | None,
) -> DecisionResult:
    """Run the funnel. `spend_today` is today's spend per offer (reservations included)."""
    n = len(snapshot)
    explain = request.explain
    funnel = Funnel(
        snapshot=snapshot,
        request=request,
        history=history,
        alive=_inventory(snapshot, request),
        reasons=np.zeros(n, np.int64) if explain else None,
        messages={},
        propensity=_propensities(snapshot, live, request),
    )
    funnel.alive_count = int(np.count_nonzero(funnel.alive))
    candidates = funnel.alive.copy() if explain else None
    if explain:  # every drop needs its reason: take the steps one by one
        if snapshot.any_archived:
            funnel.drop(snapshot.category_archived, DropReason.CATEGORY_ARCHIVED)
        _schedule(funnel)
    elif snapshot.any_archived or snapshot.any_dates or snapshot.any_days or snapshot.any_window:
        open_rows, closed_reasons = snapshot.open_mask(request.decision_us, lambda t: _open_rows(snapshot, t))
        closed = funnel.alive & ~open_rows
        if closed.any():  # which step closed each, from the memo, for the drop counts
            for reason, count in enumerate(np.bincount(closed_reasons[closed]).tolist()):
                if count:
                    funnel.dropped[DropReason(reason)] = count
            funnel.alive &= open_rows
            funnel.alive_count = int(np.count_nonzero(funnel.alive))
    _qualification(funnel)
    if snapshot.policies:
        _contact_policies(funnel, live, spend_today)
    _budget(funnel, live, spend_today)

    ranked, ranked_scores = _ranking(funnel)

    top, top_scores = ranked[: request.limit].tolist(), ranked_scores[: request.limit].tolist()
    propensities = funnel.propensity[ranked[: request.limit]].tolist()
    winners = [
        DecidedOffer(
            rank=r + 1,
            offer=snapshot.offers[i],
            score=score,
            propensity=propensity,
            source=_source(snapshot, request, i),
            personalization=personalize(snapshot, snapshot.offers[i], request),
        )
        for r, (i, score, propensity) in enumerate(zip(top, top_scores, propensities, strict=True))
    ]
    result = DecisionResult(offers=winners, dropped=funnel.dropped)
    if explain:
        assert candidates is not None
        result.candidates = _explain(funnel, candidates, ranked, ranked_scores, spend_today, live)
    return result


def _scored(f: Funnel) -> tuple[IntArray, FloatArray]:
    """The alive rows and their scores (mandatory offers 1.0, above any other's at most 0.9)."""
    s = f.snapshot
    alive_idx = np.flatnonzero(f.alive)
    scores = f.propensity[alive_idx] * s.score_factor[alive_idx]
    scores[s.mandatory[alive_idx]] = 1.0
    return alive_idx, scores


def _ranking(f: Funnel) -> tuple[IntArray, FloatArray]:
    """Step 8, with mutual exclusion applied before the limit cut: the rows best first and their scores.

    With explain, every alive row is ranked. Otherwise only the head that can
    reach the answer: `limit` rows, or with mutual exclusion a generous head
    (exclusion can only drop rows), and everything only if that falls short.
    """
    limit, explain = f.request.limit, f.reasons is not None
    exclusions = bool(f.snapshot.policies.exclusions)
    alive_idx, scores = _scored(f)
    if not exclusions:
        return _rank(f.snapshot, alive_idx, scores, None if explain else limit)
    head = None if explain else limit * 8
    ranked, ranked_scores = _exclude_in_ranking(f, *_rank(f.snapshot, alive_idx, scores, head))
    if head is not None and len(ranked) < limit < len(alive_idx):
        ranked, ranked_scores = _exclude_in_ranking(f, *_rank(f.snapshot, *_scored(f), None))
    return ranked, ranked_scores


def personalize(snapshot: CatalogSnapshot, offer: Offer, request: DecisionRequest) -> dict[str, Any]:
    """The offer's category's computed fields for this customer (only ever run for returned offers)."""
    computed = snapshot.computed_fields.get(offer.category_id)
    if computed is None:
        return {}
    values, _ = computed.evaluate(offer.custom_fields, request.attributes, snapshot.offer_names(offer))
    return values


def _inventory(snapshot: CatalogSnapshot, request: DecisionRequest) -> BoolArray:
    n = len(snapshot)
    alive = np.ones(n, np.bool_)
    for values, index in (
        (request.category_ids, snapshot.by_category),
        (request.sub_category_ids, snapshot.by_sub_category),
    ):
        if values:  # any of the listed ids
            match = np.zeros(n, np.bool_)
            for value in values:
                rows = index.get(value)
                if rows is not None:
                    match[rows] = True
            alive &= match
    for tag in request.tags:  # all of the listed tags
        rows = snapshot.by_tag.get(tag)
        if rows is None:
            return np.zeros(n, np.bool_)
        match = np.zeros(n, np.bool_)
        match[rows] = True
        alive &= match
    return alive


def _local_clock(snapshot: CatalogSnapshot, t_us: int) -> tuple[IntArray, IntArray]:
    """Each offer's local weekday (0=Sunday) and minute of day at instant t."""
    moment = from_epoch_micros(t_us)
    weekdays = np.empty(len(snapshot.zones), np.int64)
    minutes = np.empty(len(snapshot.zones), np.int64)
    for z, zone in enumerate(snapshot.zones):
        local = moment.astimezone(zone)
        weekdays[z] = local.isoweekday() % 7
        minutes[z] = local.hour * 60 + local.minute
    return weekdays[snapshot.zone_of], minutes[snapshot.zone_of]


def _open_rows(snapshot: CatalogSnapshot, t_us: int) -> tuple[BoolArray, IntArray]:
    """Rows that the category and schedule steps let through at instant t, and the step that
    closes each other row (its DropReason number; 0 where open)."""
    reasons = np.where(snapshot.category_archived, int(DropReason.CATEGORY_ARCHIVED), 0).astype(np.int64)
    probe = Funnel(
        snapshot=snapshot,
        request=DecisionRequest(customer_id="", decision_us=t_us),
        history=None,
        alive=~snapshot.category_archived,
        reasons=reasons,
        messages={},
        propensity=snapshot.score_factor,
    )
    _schedule(probe)
    return probe.alive, reasons


def _schedule(f: Funnel) -> None:
    s, t = f.snapshot, f.request.decision_us
    if s.any_dates:
        f.drop(s.start_us > t, DropReason.SCHEDULE_NOT_STARTED)
        f.drop(s.end_us < t, DropReason.SCHEDULE_ENDED)
    if not (s.any_days or s.any_window):
        return
    weekday, minute = _local_clock(s, t)
    day = weekday
    inside = None
    if s.any_window:
        after_start, before_end = minute >= s.window_start, minute < s.window_end
        inside = np.where(s.window_wraps, after_start | before_end, after_start & before_end)
        # A window that wraps midnight belongs to the day it opened: after
        # midnight, the day that counts is yesterday.
        day = np.where(s.window_wraps & before_end, (weekday + 6) % 7, weekday)
    if s.any_days:
        f.drop(((s.days_mask >> day) & 1) == 0, DropReason.SCHEDULE_DAY)
    if inside is not None:
        f.drop(s.has_window & ~inside, DropReason.SCHEDULE_TIME_WINDOW)


def _propensities(snapshot: CatalogSnapshot, live: LiveCounters, request: DecisionRequest) -> FloatArray:
    if not (request.model_propensities or request.offer_propensities):
        return live.propensity  # read-only use below, no copy needed
    propensity = live.propensity.copy()
    for ref, score in request.model_propensities.items():
        rows = snapshot.by_model.get(ref)
        if rows is not None:
            propensity[rows] = score
    for offer_id, score in request.offer_propensities.items():
        i = snapshot.index.get(offer_id)
        if i is not None:
            propensity[i] = score
    return propensity


def _source(snapshot: CatalogSnapshot, request: DecisionRequest, i: int) -> PropensitySource:
    if snapshot.offers[i].id in request.offer_propensities:
        return PropensitySource.REQUEST_OFFER
    ref = snapshot.model_refs[i]
    if ref and ref in request.model_propensities:
        return PropensitySource.REQUEST_MODEL
    return PropensitySource.ADAPTIVE_MODEL if ref else PropensitySource.DEFAULT


def _segments_ok(s: CatalogSnapshot, segments: frozenset[str]) -> BoolArray:
    """Rows whose required segments are all in `segments`; mandatory rows always."""
    have = np.zeros(s.required_segments.shape[1], np.uint64)
    for segment in segments:
        word, bit = s.segment_bits[segment]
        have[word] |= np.uint64(1) << np.uint64(bit)
    missing = ((s.required_segments & ~have) != 0).any(axis=1)
    return ~missing | s.mandatory


def _qualification(f: Funnel) -> None:
    s, request = f.snapshot, f.request
    if s.any_segments:
        has_segments = s.segment_mask(request.segments, lambda known: _segments_ok(s, known))
        if f.reasons is None:
            f.alive &= has_segments
            f.tally(DropReason.MISSING_SEGMENTS)
        else:
            f.drop(~has_segments, DropReason.MISSING_SEGMENTS)
    if s.any_threshold:
        f.drop(f.propensity < s.optional_threshold, DropReason.BELOW_PROPENSITY_THRESHOLD)
    if s.any_recency and f.history is not None:
        _recency(f, f.history)


def _recency(f: Funnel, history: CustomerHistory) -> None:
    """Drop offers the customer saw less than their recency (in days) before the decision time."""
    s, t = f.snapshot, f.request.decision_us
    rows, last = _last_impressions(s, history, t)
    if not len(rows):
        return
    too_recent = t - last < s.optional_recency_us[rows]
    blocked = rows[too_recent & f.alive[rows]]
    if not len(blocked):
        return
    mask = np.zeros(len(s), np.bool_)
    mask[blocked] = True
    if f.reasons is None:
        f.alive &= ~mask
        f.tally(DropReason.RECENCY)
        return
    when = dict(zip(rows.tolist(), last.tolist(), strict=True))
    f.drop_with_messages(
        mask,
        DropReason.RECENCY,
        {
            i: f"last impression {(t - when[i]) / 3_600_000_000:.1f} hours ago < recency "
            f"{int(s.recency_us[i]) // US_PER_DAY} days"
            for i in blocked.tolist()
        },
    )


def _last_impressions(s: CatalogSnapshot, history: CustomerHistory, t_us: int) -> tuple[IntArray, IntArray]:
    """Rows the customer has impressions of (at or before t) and the latest one's time, as arrays.

    When the whole history precedes t (deciding "now"), the answer does not
    depend on t and is memoised on the history until its next event, keyed by
    the generation of the snapshot's rows: row numbers mean nothing where offers sit in other rows.
    """
    memo_key = ("last-impressions", s.rows_generation)
    timeless = not history.events or history.events[-1].occurred_us <= t_us
    if timeless and (hit := history.memo.get(memo_key)) is not None:
        return hit  # type: ignore[return-value]
    pairs = [(s.index[o], at) for o, at in history.last_impressions(t_us).items() if o in s.index]
    result = (np.array([r for r, _ in pairs], np.int64), np.array([at for _, at in pairs], np.int64))
    if timeless:
        history.memo[memo_key] = result
    return result


def _contact_policies(f: Funnel, live: LiveCounters, spend_today: IntArray | None) -> None:
    s, request = f.snapshot, f.request
    drops = evaluate_policies(
        s.policies,
        alive=f.alive,
        exempt=f.exempt(),
        index=s.index,
        rows_by_category=s.by_category,
        request_channel=request.channel,
        request_segments=request.segments,
        t_us=request.decision_us,
        zone=s.tenant_zone,
        history=f.history,
        impressions=live.impressions,
        max_impressions=s.max_impressions,
        spend_today=spend_today,
        cost=s.cost_micros,
        daily_budget=s.daily_budget_micros,
        explain=f.reasons is not None,
    )
    f.tally(DropReason.CONTACT_POLICY)  # evaluate_policies removed them from f.alive
    if f.reasons is not None:
        for drop in drops:
            f.reasons[drop.rows] = DropReason.CONTACT_POLICY
            for i in np.flatnonzero(drop.rows).tolist():
                f.messages[i] = drop.per_row[i] if drop.per_row else drop.message


def _exclude_in_ranking(f: Funnel, ranked: IntArray, scores: FloatArray) -> tuple[IntArray, FloatArray]:
    """Drop the mutual-exclusion losers from a ranked list (and from the funnel)."""
    s, request = f.snapshot, f.request
    explain = f.reasons is not None
    if not explain:
        # Offers in no exclusion set always survive, so the first `limit` of
        # them bound the prefix that can matter; exclude within it only.
        outside = np.flatnonzero(~s.policies.any_member[ranked])
        if len(outside) >= request.limit:
            cut = int(outside[request.limit - 1]) + 1
            ranked, scores = ranked[:cut], scores[:cut]
    dropped = exclude_in_ranking(s.policies, ranked, f.exempt(), request.channel, s.offers, explain=explain)
    if not dropped:
        return ranked, scores
    rows = np.zeros(len(s), np.bool_)
    rows[list(dropped)] = True
    f.drop_with_messages(rows, DropReason.CONTACT_POLICY, dropped)
    keep = ~rows[ranked]
    return ranked[keep], scores[keep]


def _budget(f: Funnel, live: LiveCounters, spend_today: IntArray | None) -> None:
    s = f.snapshot
    if s.any_max_impressions:
        f.drop(live.impressions >= s.optional_max_impressions, DropReason.MAX_IMPRESSIONS_REACHED)
    if s.any_daily_budget and spend_today is not None:
        f.drop(spend_today + s.cost_micros > s.optional_daily_budget, DropReason.DAILY_BUDGET_EXHAUSTED)


def _rank(
    snapshot: CatalogSnapshot, alive_idx: IntArray, scores: FloatArray, limit: int | None
) -> tuple[IntArray, FloatArray]:
    """Alive offers best first: score descending, then the snapshot's tiebreak (priority, age, id).

    With a limit, only the best `limit` are ordered: argpartition finds the
    limit-th best score, and everything at least as good is sorted exactly.
    """
    if limit is not None and len(alive_idx) > 4 * limit:
        cut = len(scores) - limit
        kth_best = np.partition(scores, cut)[cut]
        keep = scores >= kth_best
        alive_idx, scores = alive_idx[keep], scores[keep]
    order = np.lexsort((snapshot.tiebreak[alive_idx], -scores))
    return alive_idx[order], scores[order]


def _explain(
    f: Funnel,
    candidates: BoolArray,
    ranked: IntArray,
    ranked_scores: FloatArray,
    spend_today: IntArray | None,
    live: LiveCounters,
) -> list[CandidateFate]:
    s, request = f.snapshot, f.request
    assert f.reasons is not None
    fates: list[CandidateFate] = []
    for r, (i, score) in enumerate(zip(ranked.tolist(), ranked_scores.tolist(), strict=True)):
        selected = r < request.limit
        fates.append(
            CandidateFate(
                offer=s.offers[i],
                selected=selected,
                reason=DropReason.NONE if selected else DropReason.RANKED_BELOW_LIMIT,
                message="" if selected else f"rank {r + 1} > limit {request.limit} (score {score:.4f})",
                score=score,
                propensity=float(f.propensity[i]),
            )
        )
    for i in np.flatnonzero(candidates & ~f.alive).tolist():
        reason = DropReason(int(f.reasons[i]))
        message = f.messages.get(i) or _drop_message(f, i, reason, spend_today, live)
        reached_qualification = reason >= DropReason.MISSING_SEGMENTS
        fates.append(
            CandidateFate(
                offer=s.offers[i],
                selected=False,
                reason=reason,
                message=message,
                score=0.0,
                propensity=float(f.propensity[i]) if reached_qualification else 0.0,
            )
        )
    return fates


def _iso(t_us: int) -> str:
    return from_epoch_micros(t_us).isoformat().replace("+00:00", "Z")


def _money(micros: int) -> str:
    return f"{from_micros(micros):g}"


def _drop_message(f: Funnel, i: int, reason: DropReason, spend_today: IntArray | None, live: LiveCounters) -> str:
    """The reason in words, with the numbers that decided it."""
    s, t = f.snapshot, f.request.decision_us
    offer = s.offers[i]
    zone = s.zones[int(s.zone_of[i])]
    local = datetime.fromtimestamp(t / 1_000_000, zone)
    if reason is DropReason.SCHEDULE_NOT_STARTED:
        return f"decision time {_iso(t)} is before startDate {_iso(int(s.start_us[i]))}"
    if reason is DropReason.SCHEDULE_ENDED:
        return f"decision time {_iso(t)} is after endDate {_iso(int(s.end_us[i]))}"
    if reason is DropReason.SCHEDULE_DAY:
        days = sorted(offer.schedule.days_of_week) if offer.schedule else []
        return (
            f"local day {_DAY_NAMES[local.isoweekday() % 7]} ({local.isoweekday() % 7}) in {zone.key} "
            f"is not in daysOfWeek {days}"
        )
    if reason is DropReason.SCHEDULE_TIME_WINDOW:
        window = offer.schedule.time_window if offer.schedule else None
        span = f"{window.start}-{window.end}" if window else "?"
        return f"local time {local:%H:%M} in {zone.key} is outside timeWindow {span}"
    if reason is DropReason.MISSING_SEGMENTS:
        required = offer.qualification.required_segments if offer.qualification else ()
        missing = [seg for seg in required if seg not in f.request.segments]
        return f"customer lacks required segments {missing}"
    if reason is DropReason.BELOW_PROPENSITY_THRESHOLD:
        return f"propensity {f.propensity[i]:.4g} < threshold {s.threshold[i]:.4g}"
    if reason is DropReason.MAX_IMPRESSIONS_REACHED:
        return f"{int(live.impressions[i])} impressions >= maxImpressions {int(s.max_impressions[i])}"
    if reason is DropReason.CATEGORY_ARCHIVED:
        return f"category {offer.category_id} is archived"
    if reason is DropReason.DAILY_BUDGET_EXHAUSTED:
        spent = int(spend_today[i]) if spend_today is not None else 0
        cap = int(s.daily_budget_micros[i])
        return (
            f"spend today {_money(spent)} + costPerAction {_money(int(s.cost_micros[i]))} > "
            f"maxDailyBudget {_money(cap) if cap != NO_CAP else 'none'}"
        )
    return reason.name.lower().replace("_", " ")
