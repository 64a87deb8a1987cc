"""Builders shared by the contact-policy tests: offers, policies, impressions and explain read-outs."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from arbiter.client import Client
from arbiter.v1 import contact_policies_pb2, decisions_pb2

# A Wednesday, 12:00 UTC (13:00 in Paris): the pinned clock of every policy test.
T0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

CONTACT_POLICY = decisions_pb2.DROP_REASON_CONTACT_POLICY
_names = itertools.count(1)


def category(client: Client, category_id: str) -> str:
    """Create a category with a chosen id (offers with a categoryId need it to exist)."""
    return client.create_category({"name": category_id.removeprefix("cat_")}, category_id=category_id).id


def sub_category(client: Client, category_id: str, sub_category_id: str) -> str:
    body = {"categoryId": category_id, "name": sub_category_id.removeprefix("sub_")}
    return client.create_sub_category(body, sub_category_id=sub_category_id).id


def active_offer(client: Client, name: str, **fields: Any) -> str:
    """Create an active offer (seed JSON shape: priority="high", categoryId=..., mandatory=True ...); its id."""
    body: dict[str, Any] = {"name": name, "status": "active", **fields}
    return client.create_offer(body).id


def policy(
    client: Client,
    rule_field: str,
    rule: dict[str, Any],
    *,
    scope: str = "global",
    scope_id: str = "",
    priority: int = 50,
    **fields: Any,
) -> contact_policies_pb2.ContactPolicy:
    """Create a policy whose rule is `rule_field` (camelCase oneof name, e.g. "frequencyCap") set to `rule`."""
    body: dict[str, Any] = {
        "name": f"{rule_field} #{next(_names)}",
        "scope": scope,
        "priority": priority,
        rule_field: rule,
        **fields,
    }
    if scope_id:
        body["scopeId"] = scope_id
    return client.create_contact_policy(body)


def record(
    client: Client, customer: str, offer_id: str, at: datetime, type: str = "impression", *, channel: str = ""
) -> None:
    """Record one outcome (an impression unless told) that occurred at `at`."""
    client.record_outcome(customer, offer_id, type, uuid.uuid4().hex, occurred_at=at, channel=channel)


def decide(client: Client, customer: str, at: datetime, **kwargs: Any) -> decisions_pb2.DecideResponse:
    """Decide at `at` with explain and room for every offer (limit 50) unless told otherwise."""
    kwargs.setdefault("limit", 50)
    return client.decide(customer, decision_time=at, explain=True, **kwargs)


def shown(client: Client, customer: str, at: datetime, **kwargs: Any) -> list[str]:
    """Decide at `at` recording the impressions of what is returned; the returned ids in order."""
    answer = decide(client, customer, at, record_impressions=True, **kwargs)
    return ids(answer)


def ids(answer: decisions_pb2.DecideResponse) -> list[str]:
    return [o.offer_id for o in answer.offers]


def fate(answer: decisions_pb2.DecideResponse, offer_id: str) -> decisions_pb2.Candidate:
    (candidate,) = [c for c in answer.candidates if c.offer_id == offer_id]
    return candidate


def policy_drops(answer: decisions_pb2.DecideResponse) -> dict[str, str]:
    """Offer id -> message of every candidate a contact policy dropped."""
    return {c.offer_id: c.message for c in answer.candidates if c.reason == CONTACT_POLICY}


def blocked_by(answer: decisions_pb2.DecideResponse, offer_id: str) -> str:
    """The id of the policy that dropped the offer (the message's first word); fails if none did."""
    candidate = fate(answer, offer_id)
    assert candidate.reason == CONTACT_POLICY, (candidate.reason, candidate.message)
    return candidate.message.split(" ", 1)[0]


def policy_ids(policies: Iterable[contact_policies_pb2.ContactPolicy]) -> list[str]:
    return [p.id for p in policies]
