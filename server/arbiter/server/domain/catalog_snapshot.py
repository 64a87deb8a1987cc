"""The precompiled, immutable view of a tenant's active offers that Decide reads (domain layer).

Every per-offer condition the funnel checks is decoded once, here, into a
numpy column, so that a decision filters and scores the whole catalogue with
a few vectorised operations instead of a Python loop per offer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from .arrays import BoolArray, FloatArray, IntArray
from .formulas import ComputedFields
from .offers import Offer, OfferStatus
from .policies import ContactPolicy
from .policy_engine import PolicySet, compile_policies
from .timekeeping import load_timezone, parse_hhmm, to_epoch_micros

OPEN_MEMO_SIZE = 8
SEGMENT_MEMO_SIZE = 1_024
NO_CAP = np.iinfo(np.int64).max
EARLIEST = np.iinfo(np.int64).min
ALL_DAYS = 0b111_1111
US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True, eq=False)
class CatalogSnapshot:
    """Columns over the tenant's active offers; row i describes offers[i].

    `generation` identifies the snapshot for as long as the process lives
    (TenantView numbers them): anything derived from a snapshot and kept
    elsewhere, such as a customer's memoised views, is keyed by it.
    """

    generation: int
    offers: list[Offer]
    index: dict[str, int]
    tenant_zone: ZoneInfo
    # schedule
    zones: list[ZoneInfo]
    zone_of: IntArray
    start_us: IntArray
    end_us: IntArray
    days_mask: IntArray
    has_window: BoolArray
    window_start: IntArray
    window_end: IntArray
    window_wraps: BoolArray
    # qualification
    segment_bits: dict[str, tuple[int, int]]
    required_segments: npt.NDArray[np.uint64]
    threshold: FloatArray
    recency_us: IntArray
    model_refs: list[str]
    by_model: dict[str, IntArray]
    # budget
    max_impressions: IntArray
    daily_budget_micros: IntArray
    cost_micros: IntArray
    # scoring and ranking
    mandatory: BoolArray
    priority_score: FloatArray
    tiebreak: IntArray
    # request filters
    by_category: dict[str, IntArray]
    by_sub_category: dict[str, IntArray]
    by_tag: dict[str, IntArray]
    # the hierarchy: offers of archived categories are candidates that drop out
    category_archived: BoolArray
    computed_fields: dict[str, ComputedFields]
    # contact policies, compiled against these rows
    policies: PolicySet
    # which steps any offer needs at all (steps nobody needs are skipped)
    any_dates: bool
    any_days: bool
    any_window: bool
    any_segments: bool
    any_threshold: bool
    any_recency: bool
    any_max_impressions: bool
    any_daily_budget: bool
    any_archived: bool
    # derived columns that save the hot path an operation each
    optional_threshold: FloatArray  # -inf for mandatory offers
    optional_max_impressions: IntArray  # NO_CAP for mandatory offers
    optional_daily_budget: IntArray  # NO_CAP for mandatory offers
    optional_recency_us: IntArray  # 0 for mandatory offers
    score_factor: FloatArray  # priority score / 100
    date_boundaries: IntArray  # sorted instants where some offer's date range opens or closes
    # memos of masks that depend only on the time, or only on the customer's segments
    _open_memo: list[tuple[int, int, BoolArray]] = field(default_factory=list)
    _segment_memo: OrderedDict[frozenset[str], BoolArray] = field(default_factory=OrderedDict)
    _offer_names: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offers)

    def offer_names(self, offer: Offer) -> dict[str, Any]:
        """What formulas read as offer.* for an offer of this snapshot (built once per offer)."""
        names = self._offer_names.get(offer.id)
        if names is None:
            names = {
                "id": offer.id,
                "name": offer.name,
                "priority": float(offer.priority_score),
                "categoryId": offer.category_id,
                "tags": list(offer.tags),
            }
            self._offer_names[offer.id] = names
        return names

    def open_mask(self, t_us: int, compute: Callable[[int], BoolArray]) -> BoolArray:
        """Rows whose schedule (and category) admit instant t, memoised per stretch of time.

        Schedules change only at minute boundaries and at offers' start and
        end instants, so a mask holds from the last such change before t to
        the next one after it; `compute` makes it when no memo covers t.
        Callers must not modify the returned array.
        """
        for lo, hi, mask in self._open_memo:
            if lo <= t_us < hi:
                return mask
        minute = t_us - t_us % 60_000_000
        i = int(np.searchsorted(self.date_boundaries, t_us, side="right"))
        lo = max(minute, int(self.date_boundaries[i - 1]) if i > 0 else minute)
        hi = min(minute + 60_000_000, int(self.date_boundaries[i]) if i < len(self.date_boundaries) else NO_CAP)
        mask = compute(t_us)
        mask.flags.writeable = False
        self._open_memo.insert(0, (lo, hi, mask))
        del self._open_memo[OPEN_MEMO_SIZE:]
        return mask

    def segment_mask(self, segments: frozenset[str], compute: Callable[[frozenset[str]], BoolArray]) -> BoolArray:
        """Rows whose required segments the customer has (mandatory rows always), memoised per segment set.

        Callers must not modify the returned array.
        """
        known = frozenset(s for s in segments if s in self.segment_bits)
        mask = self._segment_memo.get(known)
        if mask is not None:
            self._segment_memo.move_to_end(known)
            return mask
        mask = compute(known)
        mask.flags.writeable = False
        self._segment_memo[known] = mask
        if len(self._segment_memo) > SEGMENT_MEMO_SIZE:
            self._segment_memo.popitem(last=False)
        return mask

    @classmethod
    def build(
        cls,
        offers: list[Offer],
        tenant_timezone: str,
        archived_categories: frozenset[str] = frozenset(),
        computed_fields: dict[str, ComputedFields] | None = None,
        policies: list[ContactPolicy] | None = None,
        *,
        generation: int,
    ) -> CatalogSnapshot:
        """Compile the active offers among `offers` (every offer of the tenant, any order) into a snapshot.

        `computed_fields` maps category ids to their compiled computed fields;
        `policies` are the tenant's contact policies (active ones are compiled).
        """
        tenant_zone = load_timezone(tenant_timezone) or ZoneInfo("UTC")
        active = [o for o in offers if o.status is OfferStatus.ACTIVE]
        active.sort(key=lambda o: o.id)
        n = len(active)
        index = {o.id: i for i, o in enumerate(active)}

        zones: list[ZoneInfo] = [tenant_zone]
        zone_numbers = {tenant_timezone: 0}
        zone_of = np.zeros(n, np.int64)
        start_us = np.full(n, EARLIEST, np.int64)
        end_us = np.full(n, NO_CAP, np.int64)
        days_mask = np.full(n, ALL_DAYS, np.int64)
        has_window = np.zeros(n, np.bool_)
        window_start = np.zeros(n, np.int64)
        window_end = np.zeros(n, np.int64)
        threshold = np.full(n, -np.inf, np.float64)
        recency_us = np.zeros(n, np.int64)
        max_impressions = np.full(n, NO_CAP, np.int64)
        daily_budget = np.full(n, NO_CAP, np.int64)
        cost = np.zeros(n, np.int64)
        mandatory = np.zeros(n, np.bool_)
        priority_score = np.zeros(n, np.float64)
        created = np.zeros(n, np.int64)
        segment_bits: dict[str, tuple[int, int]] = {}
        required_lists: list[tuple[int, tuple[int, int]]] = []
        model_refs: list[str] = []
        model_lists: dict[str, list[int]] = {}
        category_lists: dict[str, list[int]] = {}
        sub_category_lists: dict[str, list[int]] = {}
        tag_lists: dict[str, list[int]] = {}

        for i, offer in enumerate(active):
            mandatory[i] = offer.mandatory
            priority_score[i] = offer.priority_score
            created[i] = to_epoch_micros(offer.created_at) if offer.created_at else 0
            category_lists.setdefault(offer.category_id, []).append(i)
            sub_category_lists.setdefault(offer.sub_category_id, []).append(i)
            for tag in offer.tags:
                tag_lists.setdefault(tag, []).append(i)
            if (s := offer.schedule) is not None:
                if s.timezone and s.timezone != tenant_timezone:
                    zone = load_timezone(s.timezone)
                    if zone is not None:
                        if s.timezone not in zone_numbers:
                            zone_numbers[s.timezone] = len(zones)
                            zones.append(zone)
                        zone_of[i] = zone_numbers[s.timezone]
                if s.start_date is not None:
                    start_us[i] = to_epoch_micros(s.start_date)
                if s.end_date is not None:
                    end_us[i] = to_epoch_micros(s.end_date)
                if s.days_of_week:
                    days_mask[i] = sum(1 << d for d in set(s.days_of_week))
                if s.time_window is not None:
                    has_window[i] = True
                    window_start[i] = parse_hhmm(s.time_window.start) or 0
                    window_end[i] = parse_hhmm(s.time_window.end) or 0
            ref = ""
            if (q := offer.qualification) is not None:
                if q.propensity_threshold is not None:
                    threshold[i] = q.propensity_threshold
                if q.recency:
                    recency_us[i] = q.recency * US_PER_DAY
                for segment in q.required_segments:
                    if segment not in segment_bits:
                        number = len(segment_bits)
                        segment_bits[segment] = (number // 64, number % 64)
                    required_lists.append((i, segment_bits[segment]))
                ref = q.model_reference
            model_refs.append(ref)
            if ref:
                model_lists.setdefault(ref, []).append(i)
            if (b := offer.budget) is not None:
                if b.max_impressions is not None:
                    max_impressions[i] = b.max_impressions
                if b.max_daily_budget_micros is not None:
                    daily_budget[i] = b.max_daily_budget_micros
                cost[i] = b.cost_per_action_micros

        category_archived = np.array([o.category_id in archived_categories for o in active], np.bool_)
        words = max(1, (len(segment_bits) + 63) // 64)
        required = np.zeros((n, words), np.uint64)
        for i, (word, bit) in required_lists:
            required[i, word] |= np.uint64(1) << np.uint64(bit)

        # One integer per offer that orders ties: priority score descending,
        # then created_at ascending, then id ascending (offers are sorted by id).
        tiebreak = np.empty(n, np.int64)
        tiebreak[np.lexsort((np.arange(n), created, -priority_score))] = np.arange(n)

        def as_index(lists: dict[str, list[int]]) -> dict[str, IntArray]:
            return {key: np.array(values, np.int64) for key, values in lists.items()}

        by_category, by_sub_category = as_index(category_lists), as_index(sub_category_lists)
        meta = {o.id: (o.category_id, o.sub_category_id, o.tags) for o in offers}
        policy_set = compile_policies(
            policies or [], active, meta, {"category": by_category, "sub_category": by_sub_category}, generation
        )

        return cls(
            generation=generation,
            offers=active,
            index=index,
            tenant_zone=tenant_zone,
            zones=zones,
            zone_of=zone_of,
            start_us=start_us,
            end_us=end_us,
            days_mask=days_mask,
            has_window=has_window,
            window_start=window_start,
            window_end=window_end,
            window_wraps=has_window & (window_end < window_start),
            segment_bits=segment_bits,
            required_segments=required,
            threshold=threshold,
            recency_us=recency_us,
            model_refs=model_refs,
            by_model=as_index(model_lists),
            max_impressions=max_impressions,
            daily_budget_micros=daily_budget,
            cost_micros=cost,
            mandatory=mandatory,
            priority_score=priority_score,
            tiebreak=tiebreak,
            by_category=by_category,
            by_sub_category=by_sub_category,
            by_tag=as_index(tag_lists),
            any_dates=bool((start_us != EARLIEST).any() or (end_us != NO_CAP).any()),
            any_days=bool((days_mask != ALL_DAYS).any()),
            any_window=bool(has_window.any()),
            any_segments=bool(required_lists),
            any_threshold=bool(np.isfinite(threshold).any()),
            any_recency=bool((recency_us > 0).any()),
            any_max_impressions=bool((max_impressions != NO_CAP).any()),
            any_daily_budget=bool((daily_budget != NO_CAP).any()),
            category_archived=category_archived,
            computed_fields={k: v for k, v in (computed_fields or {}).items() if v.fields},
            policies=policy_set,
            any_archived=bool(category_archived.any()),
            optional_threshold=np.where(mandatory, -np.inf, threshold),
            optional_max_impressions=np.where(mandatory, NO_CAP, max_impressions),
            optional_daily_budget=np.where(mandatory, NO_CAP, daily_budget),
            optional_recency_us=np.where(mandatory, 0, recency_us),
            score_factor=priority_score / 100.0,
            date_boundaries=np.unique(
                np.concatenate([start_us[start_us != EARLIEST], end_us[end_us != NO_CAP] + 1])
            ).astype(np.int64),
        )
