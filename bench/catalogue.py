"""The synthetic tenant of the benchmark: N active offers, customer histories and a Decide body.

Everything is derived from a seeded `random.Random`, so two runs with the
same seed and size build the same catalogue (dates are relative to the
moment given, so schedules look the same whenever the benchmark runs).

The spread follows the issue's brief ("realistically"): about 30% of offers
require segments from a pool of 20, 30% have propensity thresholds, 20% have a
recency rule (so Decide has to read the customer's history), 40% have budgets
(impression caps, daily budgets with a cost per action), 30% have schedules
(dates, days of week, time windows, some wrapping midnight, a few non-UTC
zones), 70% name one of 10 models, and a handful are mandatory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format

from arbiter.client import Client, outcome
from arbiter.v1 import decisions_pb2

SEGMENTS = tuple(
    f"seg-{name}"
    for name in (
        "affluent",
        "student",
        "homeowner",
        "renter",
        "parent",
        "retired",
        "young-adult",
        "credit-eligible",
        "high-value",
        "churn-risk",
        "new-customer",
        "digital-first",
        "branch-user",
        "saver",
        "investor",
        "traveller",
        "small-business",
        "commuter",
        "gamer",
        "pet-owner",
    )
)
MODELS = tuple(
    f"model-{name}-v{version}"
    for name, version in zip(
        ("cc", "mortgage", "savings", "loan", "insurance", "invest", "travel", "retention", "upsell", "service"),
        (3, 1, 2, 4, 1, 2, 1, 5, 2, 1),
        strict=True,
    )
)
CATEGORIES: dict[str, tuple[str, ...]] = {
    "cat_cards": ("sub_premium", "sub_cashback", "sub_entry"),
    "cat_mortgages": ("sub_remortgage", "sub_first_home"),
    "cat_savings": ("sub_easy_access", "sub_fixed", "sub_kids"),
    "cat_loans": ("sub_personal", "sub_car"),
    "cat_insurance": ("sub_home", "sub_travel", "sub_pet"),
    "cat_investments": ("sub_isa", "sub_pension"),
    "cat_service": ("sub_notices", "sub_security"),
    "cat_engagement": ("sub_app", "sub_paperless"),
}
# Every category's schema: a rate offers set, and two computed fields Decide
# evaluates for each returned offer.
CATEGORY_FIELDS: list[dict[str, Any]] = [
    {"key": "rate", "type": "number", "required": True},
    {"key": "label", "type": "text", "defaultValue": "Offer"},
    {
        "key": "personal_rate",
        "type": "computed",
        "outputType": "number",
        "formula": "round(rate * (1 - coalesce(customer.loyalty_score, 0) * 0.01), 2)",
    },
    {
        "key": "headline",
        "type": "computed",
        "outputType": "text",
        "formula": 'concat(label, " at ", personal_rate, "%", offer.priority >= 70 ? " (featured)" : "")',
    },
]
TAGS = (
    "rewards",
    "upgrade",
    "q1-campaign",
    "q2-campaign",
    "cashback",
    "no-fee",
    "retention",
    "content",
    "rate",
    "family",
    "compliance",
    "security",
    "digital",
    "seasonal",
    "partner",
)
# Most schedules read the tenant's zone (UTC); a few name their own.
TIMEZONES = ("", "", "", "UTC", "Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
PRIORITIES = ("low", "medium", "high", "critical")
PRIORITY_WEIGHTS = (25, 40, 25, 10)
MANDATORY_OFFERS = 3
OUTCOME_TYPES = ("impression", "click", "conversion", "dismiss", "not_interested")
OUTCOME_WEIGHTS = (70, 15, 5, 7, 3)


def build_offers(count: int, *, now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """`count` active offers in the seed's JSON shape, with the spread the module docstring describes."""
    rng = random.Random(seed)
    offers = [_offer(rng, i, now) for i in range(count)]
    # A few compliance notices, not a share of the catalogue: real tenants
    # have a handful however many offers they run. Spread them out.
    for k in range(min(MANDATORY_OFFERS, count)):
        offer = offers[(k * count) // MANDATORY_OFFERS]
        offer.update(mandatory=True, priority="critical", categoryId="cat_service", subCategoryId="sub_notices")
        offer["tags"] = ["compliance"]
    return offers


def _offer(rng: random.Random, index: int, now: datetime) -> dict[str, Any]:
    return random_offer(
        rng, now, name=f"Bench offer {index:05d}", short_desc=f"Synthetic offer number {index} for the benchmark tenant"
    )


def random_offer(rng: random.Random, now: datetime, *, name: str, short_desc: str) -> dict[str, Any]:
    """One active, non-mandatory offer with the spread the module docstring describes (seed JSON shape)."""
    category = rng.choice(list(CATEGORIES))
    offer: dict[str, Any] = {
        "name": name,
        "shortDesc": short_desc,
        "categoryId": category,
        "subCategoryId": rng.choice(CATEGORIES[category]),
        "priority": rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
        "status": "active",
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "customFields": {"rate": round(rng.uniform(1.0, 25.0), 2)},
    }
    qualification: dict[str, Any] = {}
    if rng.random() < 0.30:
        qualification["requiredSegments"] = rng.sample(SEGMENTS, rng.choice((1, 1, 2)))
    if rng.random() < 0.30:
        qualification["propensityThreshold"] = round(rng.uniform(0.05, 0.6), 2)
    if rng.random() < 0.20:
        qualification["recency"] = rng.choice((1, 3, 7, 14, 30))
    if rng.random() < 0.70:
        qualification["modelReference"] = rng.choice(MODELS)
    if qualification:
        offer["qualification"] = qualification
    if rng.random() < 0.40:
        offer["budget"] = _budget(rng)
    if rng.random() < 0.30:
        offer["schedule"] = _schedule(rng, now)
    return offer


def _budget(rng: random.Random) -> dict[str, Any]:
    kind = rng.random()
    budget: dict[str, Any] = {}
    if kind < 0.7:  # impression caps alone, or with a daily budget
        budget["maxImpressions"] = rng.choice((1_000, 10_000, 50_000, 100_000, 1_000_000))
    if kind >= 0.5:  # a daily budget needs a cost per action
        budget["maxDailyBudget"] = float(rng.choice((100, 250, 1_000, 5_000, 20_000)))
        budget["costPerAction"] = rng.choice((0.05, 0.1, 0.25, 0.5, 1.5))
    return budget


def _schedule(rng: random.Random, now: datetime) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    if rng.random() < 0.7:
        # Mostly running now; a few not started yet or already over.
        start = now - timedelta(days=rng.randint(1, 120))
        end = now + timedelta(days=rng.randint(7, 365))
        roll = rng.random()
        if roll < 0.05:
            start, end = now + timedelta(days=10), now + timedelta(days=40)
        elif roll < 0.10:
            start, end = now - timedelta(days=60), now - timedelta(days=5)
        schedule["startDate"] = _rfc3339(start)
        schedule["endDate"] = _rfc3339(end)
    if rng.random() < 0.4:
        schedule["daysOfWeek"] = sorted(rng.sample(range(7), rng.randint(3, 6)))
    if rng.random() < 0.4:
        if rng.random() < 0.15:  # an evening window that wraps midnight
            schedule["timeWindow"] = {"start": "22:00", "end": "02:00"}
        else:
            opens = rng.randint(5, 12)
            closes = rng.randint(opens + 4, 23)
            schedule["timeWindow"] = {"start": f"{opens:02d}:00", "end": f"{closes:02d}:30"}
    zone = rng.choice(TIMEZONES)
    if zone:
        schedule["timezone"] = zone
    if not schedule:
        schedule["daysOfWeek"] = [1, 2, 3, 4, 5]
    return schedule


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SyntheticTenant:
    """A tenant loaded into a server: its offers and the customer the Decide body names."""

    tenant: str
    api_key: str
    offer_ids: list[str]
    decide_customer: str
    decide_segments: list[str]
    customers: int
    outcomes_recorded: int
    offers: list[dict[str, Any]] = field(repr=False, default_factory=list)

    def decide_body(self) -> dict[str, Any]:
        """The Decide request of the throughput and latency runs, in proto3 JSON."""
        return {
            "customerId": self.decide_customer,
            "segments": self.decide_segments,
            "attributes": DECIDE_ATTRIBUTES,
            "channel": "web",
            "limit": 5,
        }

    def decide_request(self) -> decisions_pb2.DecideRequest:
        return json_format.ParseDict(self.decide_body(), decisions_pb2.DecideRequest())


DECIDE_ATTRIBUTES = {"loyalty_score": 12, "first_name": "Ada"}


def create_hierarchy(client: Client, *, computed_fields: bool = True) -> None:
    """The categories (with computed fields unless told not to) and sub-categories the offers name."""
    fields = [f for f in CATEGORY_FIELDS if computed_fields or f["type"] != "computed"]
    for category_id, subs in CATEGORIES.items():
        client.create_category(
            {"name": category_id.removeprefix("cat_").title(), "customFields": fields},
            category_id=category_id,
        )
        for sub in subs:
            client.create_sub_category({"categoryId": category_id, "name": sub}, sub_category_id=sub)


def build_policies(count: int) -> list[dict[str, Any]]:
    """`count` active contact policies of mixed types and scopes (the first 20 differ; more repeat them).

    Strict enough to do real work on every decision, loose enough that the
    benchmark customer still gets offers.
    """
    categories = list(CATEGORIES)
    templates: list[dict[str, Any]] = [
        {"scope": "global", "frequencyCap": {"maxPerDay": 40, "maxPerWeek": 200}},
        {"scope": "category", "scopeId": categories[0], "frequencyCap": {"maxPerWeek": 25}},
        {"scope": "category", "scopeId": categories[1], "cooldown": {"minHours": 2}},
        {
            "scope": "channel",
            "scopeId": "email",
            "customerTotalCap": {"maxImpressions": 5, "windowDays": 7, "channel": "email"},
        },
        {"scope": "global", "outcomeSuppression": {"outcomeTypes": ["complaint"], "minCount": 1, "windowDays": 90}},
        {
            "scope": "category",
            "scopeId": categories[2],
            "outcomeSuppression": {"outcomeTypes": ["conversion"], "minCount": 2, "windowDays": 30},
        },
        {"scope": "category", "scopeId": categories[3], "categorySuppression": {"hours": 1}},
        {"scope": "global", "mutualExclusion": {"tag": "q1-campaign", "windowDays": 0}},
        {"scope": "global", "mutualExclusion": {"tag": "seasonal", "windowDays": 3}},
        {"scope": "global", "segmentExclusion": {"segments": ["seg-churn-risk"]}},
        {"scope": "category", "scopeId": categories[4], "segmentExclusion": {"segments": ["seg-student"]}},
        {"scope": "global", "timeWindow": {"start": "00:00", "end": "23:59"}},
        {"scope": "category", "scopeId": categories[5], "timeWindow": {"daysOfWeek": [0, 1, 2, 3, 4, 5, 6]}},
        {"scope": "global", "budgetExhausted": {}, "bypassable": False},
        {"scope": "category", "scopeId": "cat_service", "allowOverride": {}},
        {"scope": "sub_category", "scopeId": CATEGORIES[categories[0]][0], "frequencyCap": {"maxPerMonth": 60}},
        {"scope": "sub_category", "scopeId": CATEGORIES[categories[6]][1], "cooldown": {"minHours": 0.5}},
        {"scope": "channel", "scopeId": "app", "frequencyCap": {"maxPerDay": 20}},
        {"scope": "category", "scopeId": categories[7], "frequencyCap": {"maxPerDay": 6}},
        {"scope": "global", "customerTotalCap": {"maxImpressions": 300, "windowDays": 30}},
    ]
    return [
        {"name": f"Bench policy {i:02d}", "priority": (i * 37) % 101, **templates[i % len(templates)]}
        for i in range(count)
    ]


def customer_id(index: int) -> str:
    return f"cust-{index:07d}"


def create_offers(client: Client, offers: Sequence[dict[str, Any]], threads: int = 16) -> list[str]:
    """Create the offers through the real client (CreateOffer RPCs); returns their ids in order.

    Threads keep several calls in flight: each CreateOffer waits for its own
    commit, and the server's writer commits the waiting ones together.
    """
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [offer.id for offer in pool.map(client.create_offer, offers)]


def history_outcomes(
    rng: random.Random,
    offer_ids: Sequence[str],
    customers: int,
    per_customer: int,
    *,
    now: datetime,
    key_prefix: str,
) -> Iterator[decisions_pb2.Outcome]:
    """Outcomes of the last 60 days for `customers` distinct customers, about `per_customer` each."""
    serial = 0
    for index in range(customers):
        for _ in range(rng.randint(1, 2 * per_customer - 1)):
            serial += 1
            yield outcome(
                customer_id(index),
                rng.choice(offer_ids),
                rng.choices(OUTCOME_TYPES, OUTCOME_WEIGHTS)[0],
                f"{key_prefix}-{serial}",
                channel=rng.choice(("web", "app", "email")),
                occurred_at=now - timedelta(seconds=rng.randint(60, 60 * 86_400)),
            )


def record_in_batches(client: Client, outcomes: Iterator[decisions_pb2.Outcome], batch: int = 1_000) -> int:
    """Record outcomes with RecordOutcomes, `batch` per call; returns how many were recorded."""
    total = 0
    chunk: list[decisions_pb2.Outcome] = []
    for item in outcomes:
        chunk.append(item)
        if len(chunk) == batch:
            total += len(client.record_outcomes(chunk, timeout=60))
            chunk = []
    if chunk:
        total += len(client.record_outcomes(chunk, timeout=60))
    return total


def load_tenant(
    target: str,
    tenant: str,
    api_key: str,
    offer_count: int,
    *,
    customers: int = 5_000,
    per_customer: int = 3,
    seed: int = 7,
    policies: int = 0,
    computed_fields: bool = True,
    now: datetime | None = None,
) -> SyntheticTenant:
    """Build the synthetic tenant in a running server and return what the scenarios need."""
    now = now or datetime.now(UTC)
    rng = random.Random(seed + 1)
    offers = build_offers(offer_count, now=now, seed=seed)
    with Client(target, api_key=api_key, timeout=60) as client:
        create_hierarchy(client, computed_fields=computed_fields)
        offer_ids = create_offers(client, offers)
        for body in build_policies(policies):
            client.create_contact_policy(body)
        recorded = record_in_batches(
            client,
            history_outcomes(rng, offer_ids, customers, per_customer, now=now, key_prefix=f"hist-{seed}"),
        )
        # The Decide customer gets a richer history, weighted to offers with a
        # recency rule, so the funnel's recency step has work to do.
        decide_customer = customer_id(0)
        with_recency = [oid for oid, body in zip(offer_ids, offers, strict=True) if _has_recency(body)]
        extra = [
            outcome(
                decide_customer,
                rng.choice(with_recency or offer_ids),
                "impression",
                f"hist-{seed}-decide-{i}",
                channel="web",
                occurred_at=now - timedelta(hours=rng.randint(1, 24 * 20)),
            )
            for i in range(40)
        ]
        recorded += len(client.record_outcomes(extra, timeout=60))
    return SyntheticTenant(
        tenant=tenant,
        api_key=api_key,
        offer_ids=offer_ids,
        decide_customer=decide_customer,
        decide_segments=[SEGMENTS[2], SEGMENTS[7], SEGMENTS[13]],
        customers=customers,
        outcomes_recorded=recorded,
        offers=offers,
    )


def _has_recency(offer: dict[str, Any]) -> bool:
    return "recency" in offer.get("qualification", {})
