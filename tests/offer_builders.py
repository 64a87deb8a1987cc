"""Shared builders for the Offer API tests: the business hierarchy, the seed's create body, offers, dict helpers."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from arbiter.client import Client, offer_to_dict
from arbiter.v1 import offers_pb2

# The "Request body" of "Create an Offer" in /work/shared/seed/offers-overview.txt, verbatim.
SEED_CREATE_BODY: dict[str, Any] = {
    "name": "Premium Credit Card Upgrade",
    "shortDesc": "Upgrade to our premium rewards card with 3x points",
    "categoryId": "cat_credit_cards",
    "subCategoryId": "sub_premium",
    "priority": "high",
    "mandatory": False,
    "status": "draft",
    "tags": ["rewards", "upgrade", "q1-campaign"],
    "qualification": {
        "propensityThreshold": 0.65,
        "recency": 30,
        "requiredSegments": ["high_value", "credit_eligible"],
        "modelReference": "model_propensity_cc_v3",
    },
    "budget": {
        "maxImpressions": 50000,
        "maxDailyBudget": 2500.00,
        "costPerAction": 1.50,
    },
    "schedule": {
        "startDate": "2026-03-15T00:00:00Z",
        "endDate": "2026-06-15T23:59:59Z",
        "daysOfWeek": [1, 2, 3, 4, 5],
        "timeWindow": {
            "start": "08:00",
            "end": "20:00",
        },
    },
    "customFields": {
        "base_rate": 19.99,
        "annual_fee": 95,
        "rewards_multiplier": 3,
    },
}

OUTPUT_ONLY_KEYS = ("id", "createdAt", "updatedAt")

# The custom-field schema of every category in HIERARCHY: the seed's three numbers, and a field of each
# other type for the tests that store values of every kind. No field is required and none has a default,
# so an offer's custom fields are stored exactly as sent, and an offer keeps them when it moves between
# these categories.
CUSTOM_FIELDS: list[dict[str, Any]] = [
    {"key": "base_rate", "type": "number"},
    {"key": "annual_fee", "type": "number"},
    {"key": "rewards_multiplier", "type": "number"},
    {"key": "apr", "type": "number"},
    {"key": "note", "type": "text"},
    {"key": "flag", "type": "boolean"},
    {"key": "tier", "type": "select", "options": ["gold", "silver"]},
    {"key": "launch", "type": "date"},
]

# The longest ids a category and a sub-category can have ("cat_"/"sub_" and 64 characters).
LONGEST_CATEGORY_ID = "cat_" + "c" * 64
LONGEST_SUB_CATEGORY_ID = "sub_" + "s" * 64

# The categories the tests refer to, each with its sub-categories. Offers must name real ones: the seed's
# cat_credit_cards/sub_premium exist because ensure_hierarchy creates them with those ids.
HIERARCHY: dict[str, tuple[str, ...]] = {
    "cat_credit_cards": ("sub_premium",),
    "cat_other": ("sub_other",),
    "cat_loans": (),
    "cat_x": (),
    "cat_a": ("sub_a1", "sub_a2"),
    "cat_b": ("sub_b1", "sub_b2"),
    "cat_cards": ("sub_gold",),
    LONGEST_CATEGORY_ID: (LONGEST_SUB_CATEGORY_ID,),
}


class _Deleted:
    def __repr__(self) -> str:
        return "DELETED"


# A value for `with_changes`: the key disappears (the field is unset / cleared).
DELETED: Any = _Deleted()


def ensure_hierarchy(client: Client, *category_ids: str) -> None:
    """Create the named categories of HIERARCHY (none named: all), with their sub-categories, unless they exist."""
    existing = {c.id for c in client.list_categories(page_size=1000).categories}
    for category_id in category_ids or HIERARCHY:
        if category_id in existing:
            continue
        client.create_category({"name": category_id, "customFields": CUSTOM_FIELDS}, category_id=category_id)
        for sub_id in HIERARCHY[category_id]:
            client.create_sub_category({"categoryId": category_id, "name": sub_id}, sub_category_id=sub_id)


def seed_body() -> dict[str, Any]:
    """A fresh copy of the seed's create body (its fixed name is fine: every test has its own tenant)."""
    return copy.deepcopy(SEED_CREATE_BODY)


def unique_name(prefix: str = "offer") -> str:
    return f"{prefix} {uuid.uuid4().hex[:12]}"


def valid_offer(**fields: Any) -> dict[str, Any]:
    """The smallest valid create body: a fresh unique name, then `fields` (camelCase keys) on top."""
    return {"name": unique_name(), **fields}


def full_offer(**fields: Any) -> dict[str, Any]:
    """A valid create body with every field set (the seed's, plus a timezone and mandatory)."""
    body = seed_body()
    body["name"] = unique_name("full")
    body["mandatory"] = True
    body["schedule"]["timezone"] = "Europe/Paris"
    body.update(fields)
    return body


def merged(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `patch` on top: nested dicts merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def with_changes(body: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with each dotted path ("budget.maxImpressions") set to its value, or removed if DELETED."""
    out = copy.deepcopy(dict(body))
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETED:
            del node[leaf]
        else:
            node[leaf] = copy.deepcopy(value)
    return out


def project(actual: Any, like: Any) -> Any:
    """`actual` cut down to the keys that `like` has, recursively through dicts."""
    if isinstance(like, Mapping) and isinstance(actual, Mapping):
        return {key: project(actual[key], value) for key, value in like.items() if key in actual}
    return actual


def body_of(offer: offers_pb2.Offer) -> dict[str, Any]:
    """The seed-shape dict of an offer without its output-only fields."""
    body = offer_to_dict(offer)
    for key in OUTPUT_ONLY_KEYS:
        body.pop(key, None)
    return body


def all_offers(client: Client) -> list[offers_pb2.Offer]:
    """Every offer of the client's tenant, in list order."""
    return list(client.iter_offers(page_size=1000))


def other_client(client: Client) -> Client:
    """A client on the same server acting for a different, fresh tenant (close it after use)."""
    return Client(client.target, tenant="t-" + uuid.uuid4().hex[:16])


def create_in_status(client: Client, status: str, body: Mapping[str, Any] | None = None) -> offers_pb2.Offer:
    """Create an offer (default: `valid_offer()`) and move it to `status` by legal moves only."""
    body = dict(valid_offer() if body is None else body)
    if status in ("draft", "active"):
        return client.create_offer({**body, "status": status})
    offer = client.create_offer({**body, "status": "active"})
    return client.set_offer_status(offer.id, status)
