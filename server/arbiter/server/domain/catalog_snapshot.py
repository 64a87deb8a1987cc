"""The precompiled, immutable view of a tenant's active offers that Decide reads (domain layer).

Every per-offer condition the funnel checks is decoded once, here, into a
numpy column, so that a decision filters and scores the whole catalogue with
a few vectorised operations instead of a Python loop per offer.
"""

from __future__ import annotations

import bisect
import operator
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from .arrays import BoolArray, FloatArray, IntArray
from .formulas import ComputedFields
from .offers import Offer, OfferStatus
from .policies import ContactPolicy
from .policy_engine import OfferMeta, PolicySet, compile_policies
from .timekeeping import load_timezone, parse_hhmm, to_epoch_micros

OPEN_MEMO_SIZE = 8
SEGMENT_MEMO_SIZE = 1_024
NO_CAP = np.iinfo(np.int64).max
EARLIEST = np.iinfo(np.int64).min
ALL_DAYS = 0b111_1111
US_PER_DAY = 86_400 * 1_000_000
T = TypeVar("T")


class _Row(NamedTuple):
    """One offer's conditions decoded for the columns (computed once per version of the offer)."""

    category_id: str
    sub_category_id: str
    tags: tuple[str, ...]
    timezone: str
    required_segments: tuple[str, ...]
    model_ref: str
    # the numeric columns, in NUMERIC order
    start_us: int
    end_us: int
    days_mask: int
    has_window: bool
    window_start: int
    window_end: int
    threshold: float
    recency_us: int
    max_impressions: int
    daily_budget: int
    cost: int
    mandatory: bool
    priority_score: float
    created_us: int


NUMERIC: dict[str, type] = {
    "start_us": np.int64,
    "end_us": np.int64,
    "days_mask": np.int64,
    "has_window": np.bool_,
    "window_start": np.int64,
    "window_end": np.int64,
    "threshold": np.float64,
    "recency_us": np.int64,
    "max_impressions": np.int64,
    "daily_budget": np.int64,
    "cost": np.int64,
    "mandatory": np.bool_,
    "priority_score": np.float64,
    "created_us": np.int64,
}


def _decode(offer: Offer) -> _Row:
    s, q, b = offer.schedule, offer.qualification, offer.budget
    window = s.time_window if s is not None else None
    daily = b.max_daily_budget_micros if b is not None else None
    return _Row(
        category_id=offer.category_id,
        sub_category_id=offer.sub_category_id,
        tags=offer.tags,
        timezone=s.timezone if s is not None else "",
        required_segments=q.required_segments if q is not None else (),
        model_ref=q.model_reference if q is not None else "",
        start_us=to_epoch_micros(s.start_date) if s is not None and s.start_date is not None else EARLIEST,
        end_us=to_epoch_micros(s.end_date) if s is not None and s.end_date is not None else NO_CAP,
        days_mask=sum(1 << d for d in set(s.days_of_week)) if s is not None and s.days_of_week else ALL_DAYS,
        has_window=window is not None,
        window_start=(parse_hhmm(window.start) or 0) if window is not None else 0,
        window_end=(parse_hhmm(window.end) or 0) if window is not None else 0,
        threshold=q.propensity_threshold if q is not None and q.propensity_threshold is not None else -np.inf,
        recency_us=q.recency * US_PER_DAY if q is not None and q.recency else 0,
        max_impressions=b.max_impressions if b is not None and b.max_impressions is not None else NO_CAP,
        daily_budget=daily if daily is not None else NO_CAP,
        cost=b.cost_per_action_micros if b is not None else 0,
        mandatory=offer.mandatory,
        priority_score=float(offer.priority_score),
        created_us=to_epoch_micros(offer.created_at) if offer.created_at else 0,
    )


class OfferRows:
    """Decoded rows by offer id, kept from one build to the next; an offer is decoded again only when it changed.

    Offers are immutable, so "changed" is "another object": the cache holds
    the offer it decoded and compares identity (never id(), which a freed
    object's successor may reuse). Builds of one tenant run one at a time.
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[Offer, _Row]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, offer: Offer) -> _Row:
        cached = self._rows.get(offer.id)
        if cached is not None and cached[0] is offer:
            return cached[1]
        row = _decode(offer)
        self._rows[offer.id] = (offer, row)
        return row

    def forget(self, offer_ids: Iterable[str]) -> None:
        for offer_id in offer_ids:
            self._rows.pop(offer_id, None)

    def retain(self, offers: list[Offer]) -> None:
        """Keep only these offers' rows (a full build: what it does not use is gone or inactive)."""
        keep = {o.id for o in offers}
        self._rows = {offer_id: entry for offer_id, entry in self._rows.items() if offer_id in keep}


class _Codes:
    """Small integers for the strings of one categorical column (categories, tags, zones …), append-only.

    A patched table extends a copy, so a published snapshot's codes never change under it.
    """

    def __init__(self, names: list[str] | None = None) -> None:
        self.names: list[str] = names if names is not None else []
        self._numbers = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def extended(self, more: Iterable[str]) -> _Codes:
        new = [name for name in dict.fromkeys(more) if name not in self._numbers]
        return _Codes([*self.names, *new]) if new else self

    def of(self, name: str) -> int:
        return self._numbers[name]


@dataclass(frozen=True, eq=False)
class _Table:
    """The active offers' rows in id order, kept with the snapshot so the next one can be patched from it.

    Categorical columns hold codes (`categories`, `sub_categories`, `models`,
    `tags`, `zones`): grouping rows by them is a sort of integers, not a
    Python loop. Tags are (row, tag) pairs, sorted by row.
    """

    offers: list[Offer]
    ids: list[str]
    numeric: dict[str, npt.NDArray[Any]]
    category: IntArray
    sub_category: IntArray
    model: IntArray
    zone: IntArray
    tag_rows: IntArray
    tag_codes: IntArray
    required: npt.NDArray[np.uint64]  # (rows, words): bit b of word w is segment 64 w + b
    categories: _Codes
    sub_categories: _Codes
    models: _Codes
    tags: _Codes
    zone_names: _Codes  # "" (the tenant's zone) is code 0
    segments: _Codes
    moved_from: IntArray | None = None  # each row's row in the table patched from (-1: a new or changed offer)

    @classmethod
    def empty(cls) -> _Table:
        none = np.zeros(0, np.int64)
        return cls(
            offers=[],
            ids=[],
            numeric={name: np.zeros(0, dtype) for name, dtype in NUMERIC.items()},
            category=none,
            sub_category=none,
            model=none,
            zone=none,
            tag_rows=none,
            tag_codes=none,
            required=np.zeros((0, 1), np.uint64),
            categories=_Codes(),
            sub_categories=_Codes(),
            models=_Codes([""]),
            tags=_Codes(),
            zone_names=_Codes([""]),
            segments=_Codes(),
        )

    def patched(
        self, removed: Sequence[str], added: list[Offer], rows: OfferRows, index: Mapping[str, int] | None = None
    ) -> _Table:
        """This table without the rows of `removed` (offer ids) and with `added` (active offers), in id order.

        Only the added offers are decoded; every other row is moved with numpy
        (concatenate, then take in the new order). `index` maps this table's
        ids to rows (the snapshot has it; built here when not given).
        """
        n = len(self.ids)
        if index is None:
            index = {offer_id: i for i, offer_id in enumerate(self.ids)} if removed else {}
        gone = np.array(sorted(index[i] for i in removed if i in index), np.int64)
        added = sorted(added, key=lambda o: o.id)
        decoded = [rows.row(o) for o in added]
        keep = np.ones(n, np.bool_)
        keep[gone] = False
        kept = np.flatnonzero(keep)
        # Where each added offer goes among the kept rows (ids are unique: no ties).
        slots = np.array([bisect.bisect_left(self.ids, o.id) for o in added], np.int64)
        slots -= np.searchsorted(gone, slots)
        order = np.insert(kept, slots, n + np.arange(len(added), dtype=np.int64))  # new row -> old row or n + j
        position = np.empty(n + len(added), np.int64)  # old row (or n + j) -> new row; removed rows: -1
        position[order] = np.arange(len(order))
        position[gone] = -1
        offers = _take(self.offers + added, order)

        categories = self.categories.extended(r.category_id for r in decoded)
        sub_categories = self.sub_categories.extended(r.sub_category_id for r in decoded)
        models = self.models.extended(r.model_ref for r in decoded)
        tags = self.tags.extended(t for r in decoded for t in r.tags)
        zone_names = self.zone_names.extended(r.timezone for r in decoded)
        segments = self.segments.extended(s for r in decoded for s in r.required_segments)

        def coded(old: IntArray, codes: _Codes, values: Iterable[str]) -> IntArray:
            return np.concatenate([old, np.array([codes.of(v) for v in values], np.int64)])[order]

        numeric = {
            name: np.concatenate([column, np.array([getattr(r, name) for r in decoded], column.dtype)])[order]
            for name, column in self.numeric.items()
        }
        kept_pairs = position[self.tag_rows] >= 0
        new_pairs = [(n + j, tags.of(t)) for j, r in enumerate(decoded) for t in r.tags]
        tag_rows = np.concatenate([position[self.tag_rows[kept_pairs]], position[[p for p, _ in new_pairs]]])
        tag_codes = np.concatenate([self.tag_codes[kept_pairs], np.array([c for _, c in new_pairs], np.int64)])
        by_row = np.argsort(tag_rows, kind="stable")
        words = max(1, (len(segments) + 63) // 64)
        required = np.zeros((n + len(added), words), np.uint64)
        required[:n, : self.required.shape[1]] = self.required
        for j, r in enumerate(decoded):
            for segment in r.required_segments:
                number = segments.of(segment)
                required[n + j, number // 64] |= np.uint64(1) << np.uint64(number % 64)
        return _Table(
            offers=offers,
            ids=_take(self.ids + [o.id for o in added], order),
            numeric=numeric,
            category=coded(self.category, categories, (r.category_id for r in decoded)),
            sub_category=coded(self.sub_category, sub_categories, (r.sub_category_id for r in decoded)),
            model=coded(self.model, models, (r.model_ref for r in decoded)),
            zone=coded(self.zone, zone_names, (r.timezone for r in decoded)),
            tag_rows=tag_rows[by_row],
            tag_codes=tag_codes[by_row],
            required=required[order],
            categories=categories,
            sub_categories=sub_categories,
            models=models,
            tags=tags,
            zone_names=zone_names,
            segments=segments,
            moved_from=np.where(order < n, order, -1),
        )


def _take(items: list[T], order: IntArray) -> list[T]:
    """items[order[0]], items[order[1]], … as a list (in C: itemgetter, not a Python loop)."""
    if len(order) == 0:
        return []
    if len(order) == 1:
        return [items[int(order[0])]]
    return list(operator.itemgetter(*order.tolist())(items))


def _groups(codes: IntArray, names: list[str], rows: IntArray | None = None) -> dict[str, IntArray]:
    """The rows (ascending) of each name that has any; `rows` gives the row of each code (default: its position)."""
    if not len(codes):
        return {}
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(names))
    members = (order if rows is None else rows[order]).astype(np.int64)
    parts = np.split(members, np.cumsum(counts)[:-1])
    return {names[code]: part for code, part in enumerate(parts) if len(part)}


@dataclass(frozen=True, slots=True)
class _Context:
    """What a snapshot is built with besides the offers; an offer-only change keeps it."""

    timezone: str
    archived: frozenset[str]
    computed_fields: Mapping[str, ComputedFields]
    policies: tuple[ContactPolicy, ...]


@dataclass(frozen=True, eq=False)
class CatalogSnapshot:
    """Columns over the tenant's active offers; row i describes offers[i].

    `generation` identifies the snapshot for as long as the process lives
    (TenantView numbers them). What a customer's memoised views derive from
    has a generation of its own that lasts as long as it holds:
    `rows_generation` the row of each offer id (kept by edits that leave
    the active offers as they were), `policies.generation` every offer's
    category, sub-category and tags. Memos are keyed by those, never by id().
    """

    generation: int
    rows_generation: int
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
    # lineage: the snapshot this one was patched from (None: built from scratch), and where each
    # row was in it (-1: a new or changed offer), so live counters move along instead of being rebuilt
    patched_from: int | None
    moved_from: IntArray | None
    # what the next snapshot is patched from
    _table: _Table
    _context: _Context
    # memos of masks that depend only on the time, or only on the customer's segments
    _open_memo: list[tuple[int, int, tuple[BoolArray, IntArray]]] = field(default_factory=list)
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

    def open_mask(self, t_us: int, compute: Callable[[int], tuple[BoolArray, IntArray]]) -> tuple[BoolArray, IntArray]:
        """Rows whose schedule (and category) admit instant t, and why each other row does not
        (a DropReason number per row, 0 where open), memoised per stretch of time.

        Schedules change only at minute boundaries and at offers' start and
        end instants, so a mask holds from the last such change before t to
        the next one after it; `compute` makes it when no memo covers t.
        Callers must not modify the returned arrays.
        """
        for lo, hi, masks in self._open_memo:
            if lo <= t_us < hi:
                return masks
        minute = t_us - t_us % 60_000_000
        i = int(np.searchsorted(self.date_boundaries, t_us, side="right"))
        lo = max(minute, int(self.date_boundaries[i - 1]) if i > 0 else minute)
        hi = min(minute + 60_000_000, int(self.date_boundaries[i]) if i < len(self.date_boundaries) else NO_CAP)
        masks = compute(t_us)
        for array in masks:
            array.flags.writeable = False
        self._open_memo.insert(0, (lo, hi, masks))
        del self._open_memo[OPEN_MEMO_SIZE:]
        return masks

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
        rows: OfferRows | None = None,
    ) -> CatalogSnapshot:
        """Compile the active offers among `offers` (every offer of the tenant, any order) into a snapshot.

        `computed_fields` maps category ids to their compiled computed fields;
        `policies` are the tenant's contact policies (active ones are compiled).
        `rows` keeps each offer's decoded row for later builds.
        """
        active = [o for o in offers if o.status is OfferStatus.ACTIVE]
        meta: OfferMeta = {o.id: (o.category_id, o.sub_category_id, o.tags) for o in offers}
        rows = rows if rows is not None else OfferRows()
        table = _Table.empty().patched((), active, rows)
        rows.retain(active)
        context = _Context(tenant_timezone, archived_categories, computed_fields or {}, tuple(policies or ()))
        return cls._assemble(table, meta, context, generation)

    def with_offers(self, changed: Mapping[str, Offer | None], *, generation: int, rows: OfferRows) -> CatalogSnapshot:
        """This snapshot after some offers changed (None: deleted), everything else as it was.

        The result equals a full build over the changed catalogue; only the
        changed offers are decoded, the other rows move with numpy.
        """
        was_active = [offer_id for offer_id in changed if offer_id in self.index]
        now_active = [o for o in changed.values() if o is not None and o.status is OfferStatus.ACTIVE]
        meta = dict(self.policies.offer_meta)
        for offer_id, offer in changed.items():
            if offer is None:
                meta.pop(offer_id, None)
            else:
                meta[offer_id] = (offer.category_id, offer.sub_category_id, offer.tags)
        rows.forget(offer_id for offer_id, offer in changed.items() if offer is None)
        table = self._table.patched(was_active, now_active, rows, self.index)
        old_meta = self.policies.offer_meta
        # Histories hold events only of offers that existed, so a new offer changes no memoised grouping.
        same_meta = all(offer_id not in old_meta or meta.get(offer_id) == old_meta[offer_id] for offer_id in changed)
        return self._assemble(
            table,
            meta,
            self._context,
            generation,
            patched_from=self.generation,
            rows_generation=self.rows_generation if table.ids == self._table.ids else generation,
            meta_generation=self.policies.generation if same_meta else generation,
            previous=self,
            changed=changed.keys(),
        )

    @classmethod
    def _assemble(
        cls,
        table: _Table,
        meta: OfferMeta,
        context: _Context,
        generation: int,
        patched_from: int | None = None,
        rows_generation: int | None = None,
        meta_generation: int | None = None,
        previous: CatalogSnapshot | None = None,
        changed: Collection[str] = (),
    ) -> CatalogSnapshot:
        """Everything a snapshot derives from its table, in whole-column operations."""
        tenant_zone = load_timezone(context.timezone) or ZoneInfo("UTC")
        zones = [tenant_zone]
        zone_numbers = [0]
        for name in table.zone_names.names[1:]:
            zone = load_timezone(name) if name != context.timezone else None
            zone_numbers.append(len(zones) if zone is not None else 0)
            if zone is not None:
                zones.append(zone)
        c = table.numeric
        start_us, end_us, has_window = c["start_us"], c["end_us"], c["has_window"]
        window_start, window_end, days_mask = c["window_start"], c["window_end"], c["days_mask"]
        threshold, recency_us, mandatory = c["threshold"], c["recency_us"], c["mandatory"]
        max_impressions, daily_budget, priority_score = c["max_impressions"], c["daily_budget"], c["priority_score"]
        n = len(table.offers)
        index = dict(zip(table.ids, range(n), strict=True))
        archived_codes = [table.categories.of(a) for a in context.archived if a in table.categories.names]
        category_archived = np.isin(table.category, archived_codes)
        # One integer per offer that orders ties: priority score descending,
        # then created_at ascending, then id ascending (rows are in id order).
        tiebreak = np.empty(n, np.int64)
        tiebreak[np.lexsort((np.arange(n), c["created_us"], -priority_score))] = np.arange(n)
        by_category = _groups(table.category, table.categories.names)
        by_sub_category = _groups(table.sub_category, table.sub_categories.names)
        by_model = _groups(table.model, table.models.names)
        by_model.pop("", None)
        segments = table.segments.names
        policy_set = compile_policies(
            context.policies,
            table.offers,
            index,
            meta,
            {"category": by_category, "sub_category": by_sub_category},
            meta_generation or generation,
            previous.policies if previous is not None else None,
            changed,
        )
        return cls(
            generation=generation,
            rows_generation=rows_generation or generation,
            offers=table.offers,
            index=index,
            tenant_zone=tenant_zone,
            zones=zones,
            zone_of=np.array(zone_numbers, np.int64)[table.zone],
            start_us=start_us,
            end_us=end_us,
            days_mask=days_mask,
            has_window=has_window,
            window_start=window_start,
            window_end=window_end,
            window_wraps=has_window & (window_end < window_start),
            segment_bits={s: (i // 64, i % 64) for i, s in enumerate(segments)},
            required_segments=table.required,
            threshold=threshold,
            recency_us=recency_us,
            model_refs=[table.models.names[code] for code in table.model.tolist()],
            by_model=by_model,
            max_impressions=max_impressions,
            daily_budget_micros=daily_budget,
            cost_micros=c["cost"],
            mandatory=mandatory,
            priority_score=priority_score,
            tiebreak=tiebreak,
            by_category=by_category,
            by_sub_category=by_sub_category,
            by_tag=_groups(table.tag_codes, table.tags.names, table.tag_rows),
            any_dates=bool((start_us != EARLIEST).any() or (end_us != NO_CAP).any()),
            any_days=bool((days_mask != ALL_DAYS).any()),
            any_window=bool(has_window.any()),
            any_segments=bool(table.required.any()),
            any_threshold=bool(np.isfinite(threshold).any()),
            any_recency=bool((recency_us > 0).any()),
            any_max_impressions=bool((max_impressions != NO_CAP).any()),
            any_daily_budget=bool((daily_budget != NO_CAP).any()),
            category_archived=category_archived,
            computed_fields={k: v for k, v in context.computed_fields.items() if v.fields},
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
            patched_from=patched_from,
            moved_from=table.moved_from if patched_from is not None else None,
            _table=table,
            _context=context,
        )
