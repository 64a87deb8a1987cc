"""The use cases on the in-memory fakes: roles, tenancy, offers, catalogue, policies, settings, keys, outcomes."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from core_helpers import ADMIN, START, TENANT, CoreUnderTest, make_core, run
from hypothesis import given, settings
from hypothesis import strategies as st

from arbiter.server.app.auth import Credentials
from arbiter.server.app.keys import KeyRequest
from arbiter.server.app.paging import PageRequest
from arbiter.server.app.ports import OfferQuery
from arbiter.server.domain.access import ApiKey, Principal, Role
from arbiter.server.domain.catalog import Category, CategoryStatus, SubCategory
from arbiter.server.domain.decisions import DecisionRequest
from arbiter.server.domain.errors import (
    AlreadyExists,
    Decoded,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from arbiter.server.domain.offers import Budget, Offer, OfferStatus, Priority, Qualification
from arbiter.server.domain.outcomes import OutcomeInput, OutcomeRecord, OutcomeType
from arbiter.server.domain.policies import ContactPolicy, FrequencyCap, PolicyScope, PolicyStatus
from arbiter.server.domain.tenants import SettingsPatch
from arbiter.server.domain.timekeeping import to_epoch_micros

OTHER = Principal("other", Role.ADMIN)
ID_PATTERN = re.compile(r"^act_[0-9a-f]{16}$")


def fields_of(error: InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


def outcome(
    offer_id: str,
    key: str,
    kind: OutcomeType | None = OutcomeType.IMPRESSION,
    *,
    customer: str = "c-1",
    decision_id: str = "",
) -> OutcomeInput:
    return OutcomeInput(customer, offer_id, kind, decision_id=decision_id, idempotency_key=key)


async def record_bulk(
    t: CoreUnderTest, outcomes: list[OutcomeInput], principal: Principal = ADMIN
) -> list[OutcomeRecord]:
    return await t.core.outcomes.record(principal, Decoded(outcomes), bulk=True)


async def set_status(t: CoreUnderTest, offer_id: str, status: OfferStatus) -> Offer:
    return await t.core.offers.update(ADMIN, Decoded(Offer(id=offer_id, status=status)), ["status"])


async def offer_in(t: CoreUnderTest, status: OfferStatus, name: str = "Moving") -> Offer:
    """An offer in any status, reached by legal moves."""
    start = OfferStatus.ACTIVE if status in (OfferStatus.ACTIVE, OfferStatus.PAUSED) else OfferStatus.DRAFT
    offer = await t.offer(name, status=start)
    if status in (OfferStatus.PAUSED, OfferStatus.ARCHIVED):
        offer = await set_status(t, offer.id, status)
    assert offer.status is status
    return offer


# -- the role table ------------------------------------------------------------------------------------------


@dataclass
class Resources:
    offer: Offer
    category: Category
    empty_category: Category
    sub: SubCategory
    empty_sub: SubCategory
    policy: ContactPolicy
    key: ApiKey


async def resources(t: CoreUnderTest) -> Resources:
    category = await t.category("Cards")
    empty = await t.category("Empty")
    sub = await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=category.id, name="Gold"), "")
    empty_sub = await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=category.id, name="Bare"), "")
    offer = await t.offer("Card", category_id=category.id, sub_category_id=sub.id)
    cap = ContactPolicy(name="daily", scope=PolicyScope.GLOBAL, rule=FrequencyCap(max_per_day=3))
    policy = await t.core.policies.create(ADMIN, Decoded(cap))
    key, _ = await t.core.keys.create(ADMIN, Decoded(KeyRequest(name="ops", role=Role.DECIDE)))
    return Resources(offer, category, empty, sub, empty_sub, policy, key)


Call = Callable[[CoreUnderTest, Principal, Resources], Awaitable[object]]


CALLS: dict[str, tuple[frozenset[Role], Call]] = {}
WRITERS = frozenset({Role.ADMIN, Role.EDITOR})
EVERYONE = frozenset(Role)
DECIDERS = frozenset({Role.ADMIN, Role.DECIDE})
ADMINS = frozenset({Role.ADMIN})


def call(name: str, roles: frozenset[Role]) -> Callable[[Call], Call]:
    def register(fn: Call) -> Call:
        CALLS[name] = (roles, fn)
        return fn

    return register


@call("create offer", WRITERS)
async def _create_offer(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.offers.create(p, Decoded(Offer(name="New")))


@call("update offer", WRITERS)
async def _update_offer(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.offers.update(p, Decoded(Offer(id=r.offer.id, short_desc="changed")), None)


@call("delete offer", WRITERS)
async def _delete_offer(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    await t.core.offers.delete(p, r.offer.id, force=False)
    return None


@call("get offer", EVERYONE)
async def _get_offer(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return t.core.offers.get(p, r.offer.id)


@call("list offers", EVERYONE)
async def _list_offers(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.offers.list_offers(p, Decoded(OfferQuery()), PageRequest())


@call("create category", WRITERS)
async def _create_category(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.catalog.create_category(p, Decoded(Category(name="Loans")), "")


@call("update category", WRITERS)
async def _update_category(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.catalog.update_category(p, Decoded(Category(id=r.category.id, description="x")), None)


@call("delete category", WRITERS)
async def _delete_category(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    await t.core.catalog.delete_category(p, r.empty_category.id)
    return None


@call("get category", WRITERS)
async def _get_category(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return t.core.catalog.get_category(p, r.category.id)


@call("list categories", WRITERS)
async def _list_categories(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.catalog.list_categories(p, Decoded(None), PageRequest())


@call("create sub-category", WRITERS)
async def _create_sub(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.catalog.create_sub_category(p, SubCategory(category_id=r.category.id, name="Silver"), "")


@call("update sub-category", WRITERS)
async def _update_sub(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.catalog.update_sub_category(p, SubCategory(id=r.sub.id, description="x"), None)


@call("delete sub-category", WRITERS)
async def _delete_sub(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    await t.core.catalog.delete_sub_category(p, r.empty_sub.id)
    return None


@call("get sub-category", WRITERS)
async def _get_sub(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return t.core.catalog.get_sub_category(p, r.sub.id)


@call("list sub-categories", WRITERS)
async def _list_subs(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.catalog.list_sub_categories(p, r.category.id, PageRequest())


@call("create policy", WRITERS)
async def _create_policy(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    policy = ContactPolicy(name="weekly", scope=PolicyScope.GLOBAL, rule=FrequencyCap(max_per_week=5))
    return await t.core.policies.create(p, Decoded(policy))


@call("update policy", WRITERS)
async def _update_policy(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.policies.update(p, Decoded(ContactPolicy(id=r.policy.id, priority=7)), None)


@call("delete policy", WRITERS)
async def _delete_policy(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    await t.core.policies.delete(p, r.policy.id)
    return None


@call("get policy", WRITERS)
async def _get_policy(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return t.core.policies.get(p, r.policy.id)


@call("list policies", WRITERS)
async def _list_policies(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.policies.list_policies(p, Decoded(None), PageRequest())


@call("decide", DECIDERS)
async def _decide(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.decisions.decide(p, Decoded(DecisionRequest(customer_id="c-1", decision_us=t.now_us)))


@call("record outcome", DECIDERS)
async def _record_outcome(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.outcomes.record(p, Decoded([outcome(r.offer.id, "one")]), bulk=False)


@call("record outcomes", DECIDERS)
async def _record_outcomes(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await record_bulk(t, [outcome(r.offer.id, "a"), outcome(r.offer.id, "b")], p)


@call("get offer stats", EVERYONE)
async def _offer_stats(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.decisions.offer_stats(p, r.offer.id)


@call("get tenant settings", WRITERS)
async def _get_settings(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return t.core.tenants.get_settings(p)


@call("update tenant settings", ADMINS)
async def _update_settings(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.tenants.update_settings(p, Decoded(SettingsPatch(timezone="Europe/Paris")), ["timezone"])


@call("create key", ADMINS)
async def _create_key(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.keys.create(p, Decoded(KeyRequest(name="new", role=Role.EDITOR)))


@call("get key", ADMINS)
async def _get_key(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return t.core.keys.get(p, r.key.id)


@call("list keys", ADMINS)
async def _list_keys(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.keys.list_keys(p, PageRequest())


@call("revoke key", ADMINS)
async def _revoke_key(t: CoreUnderTest, p: Principal, r: Resources) -> object:
    return await t.core.keys.revoke(p, r.key.id)


def state(t: CoreUnderTest) -> tuple[int, int, dict[str, ApiKey]]:
    """What a refused call must leave as it was: the configuration, the outcomes and the keys."""
    return (t.core.views.current(TENANT).version, len(t.db.outcomes[TENANT]), dict(t.db.keys))


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("name", list(CALLS))
def test_each_role_may_make_exactly_the_calls_of_the_role_table(name: str, role: Role) -> None:
    async def scenario() -> None:
        t = make_core()
        r = await resources(t)
        allowed, fn = CALLS[name]
        principal = Principal(TENANT, role)
        if role in allowed:
            await fn(t, principal, r)
        else:
            before = state(t)
            with pytest.raises(PermissionDenied) as info:
                await fn(t, principal, r)
            assert info.value.reason == "ROLE_NOT_ALLOWED"
            assert state(t) == before

    run(scenario())


def test_permission_is_checked_before_the_input() -> None:
    async def scenario() -> None:
        t = make_core()
        bad = Decoded(Offer(name=""), (FieldViolation("priority", "unknown priority value 9"),))
        with pytest.raises(PermissionDenied):
            await t.core.offers.create(Principal(TENANT, Role.DECIDE), bad)
        with pytest.raises(PermissionDenied):
            await t.core.decisions.decide(Principal(TENANT, Role.EDITOR), Decoded(DecisionRequest(customer_id="")))

    run(scenario())


# -- tenancy -------------------------------------------------------------------------------------------------

FOREIGN: dict[str, tuple[str, Call]] = {
    "get offer": ("OFFER_NOT_FOUND", _get_offer),
    "update offer": ("OFFER_NOT_FOUND", _update_offer),
    "delete offer": ("OFFER_NOT_FOUND", _delete_offer),
    "offer stats": ("OFFER_NOT_FOUND", _offer_stats),
    "record outcome": ("OFFER_NOT_FOUND", _record_outcome),
    "get category": ("CATEGORY_NOT_FOUND", _get_category),
    "update category": ("CATEGORY_NOT_FOUND", _update_category),
    "delete category": ("CATEGORY_NOT_FOUND", _delete_category),
    "get sub-category": ("SUB_CATEGORY_NOT_FOUND", _get_sub),
    "update sub-category": ("SUB_CATEGORY_NOT_FOUND", _update_sub),
    "delete sub-category": ("SUB_CATEGORY_NOT_FOUND", _delete_sub),
    "get policy": ("POLICY_NOT_FOUND", _get_policy),
    "update policy": ("POLICY_NOT_FOUND", _update_policy),
    "delete policy": ("POLICY_NOT_FOUND", _delete_policy),
    "get key": ("KEY_NOT_FOUND", _get_key),
    "revoke key": ("KEY_NOT_FOUND", _revoke_key),
}


@pytest.mark.parametrize("name", list(FOREIGN))
def test_another_tenants_resource_is_not_found(name: str) -> None:
    async def scenario() -> None:
        t = make_core()
        r = await resources(t)
        reason, fn = FOREIGN[name]
        with pytest.raises(NotFound) as info:
            await fn(t, OTHER, r)
        assert info.value.reason == reason
        # ... and it is still there, unchanged, for its own tenant.
        assert t.core.offers.get(ADMIN, r.offer.id) == r.offer
        assert t.core.policies.get(ADMIN, r.policy.id) == r.policy
        assert t.core.keys.get(ADMIN, r.key.id) == r.key

    run(scenario())


def test_tenants_see_only_their_own_catalogue_names_and_keys() -> None:
    async def scenario() -> None:
        t = make_core()
        r = await resources(t)
        await t.outcome("c-1", r.offer.id, OutcomeType.IMPRESSION, "shared-key")
        assert (await t.core.offers.list_offers(OTHER, Decoded(OfferQuery()), PageRequest())).items == []
        assert (await t.core.catalog.list_categories(OTHER, Decoded(None), PageRequest())).items == []
        assert (await t.core.policies.list_policies(OTHER, Decoded(None), PageRequest())).items == []
        assert (await t.core.keys.list_keys(OTHER, PageRequest())).items == []
        decision = await t.core.decisions.decide(OTHER, Decoded(DecisionRequest("c-1", decision_us=t.now_us)))
        assert decision.result.offers == []
        # Names and idempotency keys are per tenant.
        theirs = await t.core.offers.create(OTHER, Decoded(Offer(name=r.offer.name, status=OfferStatus.ACTIVE)))
        [record] = await t.core.outcomes.record(OTHER, Decoded([outcome(theirs.id, "shared-key")]), bulk=False)
        assert not record.duplicate
        # Another tenant's category or policy scope is unknown to a write.
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.create(OTHER, Decoded(Offer(name="Foreign", category_id=r.category.id)))
        assert fields_of(info.value) == ["categoryId"]
        scoped = ContactPolicy(name="x", scope=PolicyScope.OFFER, scope_id=r.offer.id, rule=FrequencyCap(max_per_day=1))
        with pytest.raises(InvalidArgument) as info:
            await t.core.policies.create(OTHER, Decoded(scoped))
        assert fields_of(info.value) == ["scopeId"]

    run(scenario())


# -- offers --------------------------------------------------------------------------------------------------


def test_a_new_offer_is_a_medium_draft_with_an_id_and_timestamps() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.core.offers.create(ADMIN, Decoded(Offer(name="Plain")))
        assert (offer.status, offer.priority) == (OfferStatus.DRAFT, Priority.MEDIUM)
        assert ID_PATTERN.match(offer.id)
        assert offer.created_at == offer.updated_at == START
        assert t.core.offers.get(ADMIN, offer.id) == offer
        assert t.ids(await t.decide()) == []  # drafts are not decided

    run(scenario())


@pytest.mark.parametrize("status", [OfferStatus.PAUSED, OfferStatus.ARCHIVED])
def test_a_new_offer_cannot_start_paused_or_archived(status: OfferStatus) -> None:
    async def scenario() -> None:
        t = make_core()
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.create(ADMIN, Decoded(Offer(name="Late", status=status)))
        assert fields_of(info.value) == ["status"]
        assert t.core.views.current(TENANT).offers == {}

    run(scenario())


def test_offer_names_are_unique_per_tenant_archived_included() -> None:
    async def scenario() -> None:
        t = make_core()
        first = await offer_in(t, OfferStatus.ARCHIVED, "Same")
        with pytest.raises(AlreadyExists) as info:
            await t.core.offers.create(ADMIN, Decoded(Offer(name="Same")))
        assert (info.value.reason, info.value.metadata["id"]) == ("OFFER_NAME_TAKEN", first.id)
        other = await t.offer("same")  # exact match: another case is another name
        with pytest.raises(AlreadyExists) as info:
            await t.core.offers.update(ADMIN, Decoded(Offer(id=other.id, name="Same")), None)
        assert info.value.reason == "OFFER_NAME_TAKEN"
        renamed_to_itself = await t.core.offers.update(ADMIN, Decoded(Offer(id=other.id, name="same")), None)
        assert renamed_to_itself == other

    run(scenario())


STATUSES = list(OfferStatus)
LEGAL_MOVES = {
    (OfferStatus.DRAFT, OfferStatus.ACTIVE),
    (OfferStatus.ACTIVE, OfferStatus.PAUSED),
    (OfferStatus.PAUSED, OfferStatus.ACTIVE),
    (OfferStatus.DRAFT, OfferStatus.ARCHIVED),
    (OfferStatus.ACTIVE, OfferStatus.ARCHIVED),
    (OfferStatus.PAUSED, OfferStatus.ARCHIVED),
}
MOVES = list(itertools.permutations(STATUSES, 2))


@pytest.mark.parametrize(("old", "new"), MOVES, ids=[f"{a.value}->{b.value}" for a, b in MOVES])
def test_lifecycle_moves_are_the_specs_and_an_illegal_one_names_both_states(old: OfferStatus, new: OfferStatus) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await offer_in(t, old)
        t.clock.advance(timedelta(minutes=1))
        if (old, new) in LEGAL_MOVES:
            moved = await set_status(t, offer.id, new)
            assert moved.status is new and moved.updated_at == t.clock.now()
            assert moved == replace(offer, status=new, updated_at=moved.updated_at)
        else:
            with pytest.raises(FailedPrecondition) as info:
                await set_status(t, offer.id, new)
            assert info.value.reason == "INVALID_STATUS_TRANSITION"
            assert info.value.metadata == {"from": old.value, "to": new.value}
            assert old.value in info.value.message and new.value in info.value.message
            assert t.core.offers.get(ADMIN, offer.id) == offer

    run(scenario())


@pytest.mark.parametrize("status", [OfferStatus.DRAFT, OfferStatus.ACTIVE, OfferStatus.PAUSED])
def test_setting_the_status_an_offer_has_changes_nothing(status: OfferStatus) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await offer_in(t, status)
        t.clock.advance(timedelta(minutes=1))
        assert await set_status(t, offer.id, status) == offer  # updatedAt included

    run(scenario())


def test_an_archived_offer_is_read_only_but_can_be_deleted() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await offer_in(t, OfferStatus.ARCHIVED)
        with pytest.raises(FailedPrecondition) as info:
            await t.core.offers.update(ADMIN, Decoded(Offer(id=offer.id, short_desc="again")), None)
        assert info.value.reason == "OFFER_ARCHIVED"
        await t.core.offers.delete(ADMIN, offer.id, force=False)
        with pytest.raises(NotFound):
            t.core.offers.get(ADMIN, offer.id)

    run(scenario())


async def _rich_offer(t: CoreUnderTest) -> Offer:
    return await t.offer(
        "Rich",
        short_desc="before",
        priority=Priority.HIGH,
        tags=("a", "b"),
        qualification=Qualification(propensity_threshold=0.2, recency=3),
        budget=Budget(max_impressions=10, max_daily_budget=5.0, cost_per_action=0.5),
    )


def test_an_update_without_a_mask_changes_the_fields_that_are_set_and_merges_configs() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await _rich_offer(t)
        t.clock.advance(timedelta(minutes=5))
        patch = Offer(id=offer.id, short_desc="after", budget=Budget(max_impressions=0))
        updated = await t.core.offers.update(ADMIN, Decoded(patch), None)
        assert updated.short_desc == "after"
        # 0 is a value: the cap changes, the other budget fields stay.
        assert updated.budget == Budget(max_impressions=0, max_daily_budget=5.0, cost_per_action=0.5)
        assert (updated.name, updated.priority, updated.tags) == ("Rich", Priority.HIGH, ("a", "b"))
        assert updated.qualification == offer.qualification
        assert (updated.created_at, updated.updated_at) == (START, START + timedelta(minutes=5))
        assert t.core.offers.get(ADMIN, offer.id) == updated

    run(scenario())


def test_an_update_with_a_mask_changes_exactly_the_named_paths_clearing_unset_ones() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await _rich_offer(t)
        patch = Offer(id=offer.id, name="ignored: not in the mask", tags=("c",))
        updated = await t.core.offers.update(ADMIN, Decoded(patch), ["shortDesc", "budget.max_impressions", "tags"])
        assert (updated.name, updated.short_desc, updated.tags) == ("Rich", "", ("c",))
        assert updated.budget == Budget(max_impressions=None, max_daily_budget=5.0, cost_per_action=0.5)
        assert updated.qualification == offer.qualification

    run(scenario())


@pytest.mark.parametrize(
    ("mask", "field"),
    [(["nonsense"], "updateMask"), (["created_at"], "updateMask"), (["id"], "updateMask"), (["priority"], "priority")],
)
def test_a_bad_mask_is_invalid_and_changes_nothing(mask: list[str], field: str) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await _rich_offer(t)
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.update(ADMIN, Decoded(Offer(id=offer.id, short_desc="x")), mask)
        assert fields_of(info.value) == [field]
        assert t.core.offers.get(ADMIN, offer.id) == offer

    run(scenario())


def test_an_update_that_changes_nothing_keeps_updated_at_and_a_bad_one_changes_nothing() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await _rich_offer(t)
        t.clock.advance(timedelta(minutes=5))
        same = Offer(id=offer.id, short_desc="before", priority=Priority.HIGH)
        assert await t.core.offers.update(ADMIN, Decoded(same), None) == offer
        bad = Offer(id=offer.id, short_desc="not applied", qualification=Qualification(propensity_threshold=1.5))
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.update(ADMIN, Decoded(bad), None)
        assert fields_of(info.value) == ["qualification.propensityThreshold"]
        assert t.core.offers.get(ADMIN, offer.id) == offer
        with pytest.raises(NotFound) as missing:
            await t.core.offers.update(ADMIN, Decoded(Offer(id="act_0000000000000000", short_desc="x")), None)
        assert missing.value.reason == "OFFER_NOT_FOUND"

    run(scenario())


def test_an_offer_with_history_is_deleted_only_with_force_and_its_outcomes_stay() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown", budget=Budget(max_impressions=5))
        fresh = await t.offer("Never shown")
        await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, "seen")
        with pytest.raises(FailedPrecondition) as info:
            await t.core.offers.delete(ADMIN, offer.id, force=False)
        assert (info.value.reason, info.value.metadata) == ("OFFER_HAS_HISTORY", {"id": offer.id})
        assert t.core.offers.get(ADMIN, offer.id) == offer
        await t.core.offers.delete(ADMIN, fresh.id, force=False)
        await t.core.offers.delete(ADMIN, offer.id, force=True)
        for gone in (offer, fresh):
            with pytest.raises(NotFound) as missing:
                t.core.offers.get(ADMIN, gone.id)
            assert missing.value.reason == "OFFER_NOT_FOUND"
        assert [o.offer_id for o in t.db.outcomes[TENANT]] == [offer.id]
        assert not t.db.ledger
        with pytest.raises(NotFound):
            await t.core.offers.delete(ADMIN, offer.id, force=True)

    run(scenario())


# -- bad input in one answer ---------------------------------------------------------------------------------

DECODED_PRIORITY = FieldViolation("priority", "unknown priority value 9")


def test_decode_violations_come_first_then_every_rule_violation() -> None:
    async def scenario() -> None:
        t = make_core()
        value = Offer(name="", budget=Budget(max_impressions=-1), tags=("x", "x"))
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.create(ADMIN, Decoded(value, (DECODED_PRIORITY,)))
        assert info.value.violations[0] == DECODED_PRIORITY
        assert fields_of(info.value) == ["priority", "name", "tags[1]", "budget.maxImpressions"]
        assert t.core.views.current(TENANT).offers == {}

    run(scenario())


def test_a_decode_violation_alone_rejects_an_otherwise_valid_write() -> None:
    async def scenario() -> None:
        t = make_core()
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.create(ADMIN, Decoded(Offer(name="Fine"), (DECODED_PRIORITY,)))
        assert info.value.violations == (DECODED_PRIORITY,)
        offer = await t.offer("Target")
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.update(ADMIN, Decoded(Offer(id=offer.id), (DECODED_PRIORITY,)), ["name"])
        assert fields_of(info.value) == ["priority", "name"]
        assert t.core.offers.get(ADMIN, offer.id) == offer

    run(scenario())


def test_a_field_that_failed_to_decode_is_not_reported_again_by_the_rules() -> None:
    async def scenario() -> None:
        t = make_core()
        # The decoder left `type` unset; "is required" would only repeat its problem.
        bad_type = FieldViolation("outcomes[0].type", "unknown outcome type value 42")
        offer = await t.offer("Shown")
        items = [outcome(offer.id, "k-0", None), outcome(offer.id, "")]
        with pytest.raises(InvalidArgument) as info:
            await t.core.outcomes.record(ADMIN, Decoded(items, (bad_type,)), bulk=True)
        assert fields_of(info.value) == ["outcomes[0].type", "outcomes[1].idempotencyKey"]
        assert info.value.violations[0] == bad_type
        decoded_time = FieldViolation("decisionTime", "bad timestamp")
        request = DecisionRequest(customer_id="", limit=51)
        with pytest.raises(InvalidArgument) as info:
            await t.core.decisions.decide(ADMIN, Decoded(request, (decoded_time,)))
        assert fields_of(info.value) == ["decisionTime", "customerId", "limit"]
        decoded_scope = FieldViolation("scope", "unknown scope value 7")
        policy = ContactPolicy(name="", rule=FrequencyCap(max_per_day=1))
        with pytest.raises(InvalidArgument) as info:
            await t.core.policies.create(ADMIN, Decoded(policy, (decoded_scope,)))
        assert fields_of(info.value) == ["scope", "name"]

    run(scenario())


# -- categories and sub-categories ---------------------------------------------------------------------------


def test_a_category_is_created_active_read_updated_and_deleted() -> None:
    async def scenario() -> None:
        t = make_core()
        created = await t.core.catalog.create_category(ADMIN, Decoded(Category(name="Cards")), "cat_cards")
        assert (created.id, created.status, created.created_at) == ("cat_cards", CategoryStatus.ACTIVE, START)
        assert t.core.catalog.get_category(ADMIN, "cat_cards") == created
        t.clock.advance(timedelta(minutes=1))
        patch = Category(id="cat_cards", name="Credit cards", description="kept out of the mask")
        updated = await t.core.catalog.update_category(ADMIN, Decoded(patch), ["name"])
        assert (updated.category.name, updated.category.description) == ("Credit cards", "")
        assert updated.category.updated_at == START + timedelta(minutes=1)
        assert updated.nonconforming_offers == 0
        await t.core.catalog.delete_category(ADMIN, "cat_cards")
        with pytest.raises(NotFound) as info:
            t.core.catalog.get_category(ADMIN, "cat_cards")
        assert info.value.reason == "CATEGORY_NOT_FOUND"

    run(scenario())


@pytest.mark.parametrize(
    ("chosen", "error", "reason"),
    [("bad-id", InvalidArgument, "INVALID_ARGUMENT"), ("cat_taken", AlreadyExists, "CATEGORY_EXISTS")],
)
def test_a_caller_chosen_category_id_must_be_well_formed_and_free(
    chosen: str, error: type[DomainError], reason: str
) -> None:
    async def scenario() -> None:
        t = make_core()
        await t.core.catalog.create_category(ADMIN, Decoded(Category(name="Taken")), "cat_taken")
        with pytest.raises(error) as info:
            await t.core.catalog.create_category(ADMIN, Decoded(Category(name="New")), chosen)
        assert info.value.reason == reason
        assert set(t.core.views.current(TENANT).categories) == {"cat_taken"}

    run(scenario())


def test_category_names_are_unique() -> None:
    async def scenario() -> None:
        t = make_core()
        first = await t.category("Cards")
        with pytest.raises(AlreadyExists) as info:
            await t.category("Cards")
        assert (info.value.reason, info.value.metadata["id"]) == ("CATEGORY_NAME_TAKEN", first.id)

    run(scenario())


def test_a_category_is_deleted_only_once_it_holds_no_offers_and_no_sub_categories() -> None:
    async def scenario() -> None:
        t = make_core()
        category = await t.category("Cards")
        offers = [await t.offer(f"Card {i}", category_id=category.id) for i in range(2)]
        sub = await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=category.id, name="Gold"), "")
        with pytest.raises(FailedPrecondition) as info:
            await t.core.catalog.delete_category(ADMIN, category.id)
        assert (info.value.reason, info.value.metadata["offers"]) == ("CATEGORY_HAS_OFFERS", "2")
        for offer in offers:
            await t.core.offers.delete(ADMIN, offer.id, force=False)
        with pytest.raises(FailedPrecondition) as info:
            await t.core.catalog.delete_category(ADMIN, category.id)
        assert (info.value.reason, info.value.metadata["subCategories"]) == ("CATEGORY_HAS_SUB_CATEGORIES", "1")
        await t.core.catalog.delete_sub_category(ADMIN, sub.id)
        await t.core.catalog.delete_category(ADMIN, category.id)
        assert t.core.views.current(TENANT).categories == {}

    run(scenario())


def test_an_archived_category_takes_no_new_offers_but_keeps_its_own() -> None:
    async def scenario() -> None:
        t = make_core()
        category = await t.category("Cards")
        kept = await t.offer("Kept", category_id=category.id)
        elsewhere = await t.offer("Elsewhere")
        archived = Category(id=category.id, status=CategoryStatus.ARCHIVED)
        await t.core.catalog.update_category(ADMIN, Decoded(archived), ["status"])
        with pytest.raises(InvalidArgument) as info:
            await t.offer("New", category_id=category.id)
        assert fields_of(info.value) == ["categoryId"]
        with pytest.raises(InvalidArgument) as info:
            await t.core.offers.update(ADMIN, Decoded(Offer(id=elsewhere.id, category_id=category.id)), None)
        assert fields_of(info.value) == ["categoryId"]
        updated = await t.core.offers.update(ADMIN, Decoded(Offer(id=kept.id, short_desc="still editable")), None)
        assert updated.short_desc == "still editable"
        reactivated = Category(id=category.id, status=CategoryStatus.ACTIVE)
        await t.core.catalog.update_category(ADMIN, Decoded(reactivated), ["status"])
        assert (await t.offer("New", category_id=category.id)).category_id == category.id

    run(scenario())


def test_sub_categories_belong_to_one_category_with_names_unique_within_it() -> None:
    async def scenario() -> None:
        t = make_core()
        cards, loans = await t.category("Cards"), await t.category("Loans")
        gold = await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=cards.id, name="Gold"), "")
        assert t.core.catalog.get_sub_category(ADMIN, gold.id) == gold
        with pytest.raises(AlreadyExists) as info:
            await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=cards.id, name="Gold"), "")
        assert (info.value.reason, info.value.metadata["id"]) == ("SUB_CATEGORY_NAME_TAKEN", gold.id)
        loans_gold = await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=loans.id, name="Gold"), "")
        assert loans_gold.category_id == loans.id
        with pytest.raises(InvalidArgument) as bad:
            await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id="cat_nowhere", name="X"), "")
        assert fields_of(bad.value) == ["categoryId"]
        with pytest.raises(InvalidArgument) as bad:
            await t.core.catalog.update_sub_category(ADMIN, SubCategory(id=gold.id, category_id=loans.id), None)
        assert fields_of(bad.value) == ["categoryId"]
        renamed = await t.core.catalog.update_sub_category(ADMIN, SubCategory(id=gold.id, name="Platinum"), None)
        assert (renamed.name, renamed.category_id) == ("Platinum", cards.id)
        with pytest.raises(InvalidArgument) as bad:
            await t.offer("Mismatch", category_id=loans.id, sub_category_id=gold.id)
        assert fields_of(bad.value) == ["subCategoryId"]

    run(scenario())


def test_a_sub_category_is_deleted_only_once_it_holds_no_offers() -> None:
    async def scenario() -> None:
        t = make_core()
        cards = await t.category("Cards")
        gold = await t.core.catalog.create_sub_category(ADMIN, SubCategory(category_id=cards.id, name="Gold"), "")
        offer = await t.offer("Gold card", category_id=cards.id, sub_category_id=gold.id)
        with pytest.raises(FailedPrecondition) as info:
            await t.core.catalog.delete_sub_category(ADMIN, gold.id)
        assert (info.value.reason, info.value.metadata["offers"]) == ("SUB_CATEGORY_HAS_OFFERS", "1")
        await t.core.offers.update(ADMIN, Decoded(Offer(id=offer.id)), ["sub_category_id"])
        await t.core.catalog.delete_sub_category(ADMIN, gold.id)
        with pytest.raises(NotFound) as missing:
            t.core.catalog.get_sub_category(ADMIN, gold.id)
        assert missing.value.reason == "SUB_CATEGORY_NOT_FOUND"

    run(scenario())


# -- contact policies ----------------------------------------------------------------------------------------

CAP = ContactPolicy(name="one a day", scope=PolicyScope.GLOBAL, rule=FrequencyCap(max_per_day=1))


def test_a_policy_is_created_active_read_updated_listed_and_deleted() -> None:
    async def scenario() -> None:
        t = make_core()
        created = await t.core.policies.create(ADMIN, Decoded(CAP))
        assert created.status is PolicyStatus.ACTIVE and created.id.startswith("cp_")
        assert t.core.policies.get(ADMIN, created.id) == created
        t.clock.advance(timedelta(minutes=1))
        updated = await t.core.policies.update(ADMIN, Decoded(ContactPolicy(id=created.id, priority=40)), None)
        assert (updated.priority, updated.rule, updated.name) == (40, created.rule, created.name)
        assert updated.updated_at == START + timedelta(minutes=1)
        listed = await t.core.policies.list_policies(ADMIN, Decoded(PolicyStatus.ACTIVE), PageRequest())
        assert listed.items == [updated]
        await t.core.policies.delete(ADMIN, created.id)
        with pytest.raises(NotFound) as info:
            t.core.policies.get(ADMIN, created.id)
        assert info.value.reason == "POLICY_NOT_FOUND"

    run(scenario())


def test_an_archived_policy_is_read_only_but_can_be_deleted() -> None:
    async def scenario() -> None:
        t = make_core()
        created = await t.core.policies.create(ADMIN, Decoded(CAP))
        archive = ContactPolicy(id=created.id, status=PolicyStatus.ARCHIVED)
        archived = await t.core.policies.update(ADMIN, Decoded(archive), ["status"])
        for patch in (
            ContactPolicy(id=created.id, priority=9),
            ContactPolicy(id=created.id, status=PolicyStatus.ACTIVE),
        ):
            with pytest.raises(FailedPrecondition) as info:
                await t.core.policies.update(ADMIN, Decoded(patch), None)
            assert info.value.reason == "POLICY_ARCHIVED"
        assert t.core.policies.get(ADMIN, created.id) == archived
        await t.core.policies.delete(ADMIN, created.id)
        assert t.core.views.current(TENANT).policies == {}

    run(scenario())


def test_paused_and_archived_policies_are_not_evaluated() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown")
        policy = await t.core.policies.create(ADMIN, Decoded(CAP))
        await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, "seen")
        assert t.ids(await t.decide()) == []
        for status in (PolicyStatus.PAUSED, PolicyStatus.ARCHIVED):
            await t.core.policies.update(ADMIN, Decoded(ContactPolicy(id=policy.id, status=status)), ["status"])
            assert t.ids(await t.decide()) == [offer.id]

    run(scenario())


def test_policy_refusals_name_their_fields() -> None:
    async def scenario() -> None:
        t = make_core()
        await t.core.policies.create(ADMIN, Decoded(CAP))
        with pytest.raises(AlreadyExists) as taken:
            await t.core.policies.create(ADMIN, Decoded(CAP))
        assert taken.value.reason == "POLICY_NAME_TAKEN"
        cap = FrequencyCap(max_per_day=1)
        cases = [
            (ContactPolicy(name="a", scope=PolicyScope.OFFER, scope_id="act_0000000000000000", rule=cap), ["scopeId"]),
            (ContactPolicy(name="b", scope=PolicyScope.GLOBAL, scope_id="act_1", rule=cap), ["scopeId"]),
            (ContactPolicy(name="c", scope=PolicyScope.GLOBAL, priority=101, rule=FrequencyCap()), None),
        ]
        for policy, expected in cases:
            with pytest.raises(InvalidArgument) as info:
                await t.core.policies.create(ADMIN, Decoded(policy))
            assert fields_of(info.value) == (expected or ["priority", "frequencyCap.maxPerDay"])
        assert len(t.core.views.current(TENANT).policies) == 1

    run(scenario())


# -- tenant settings -----------------------------------------------------------------------------------------


def test_tenant_settings_default_to_utc_and_change_by_mask() -> None:
    async def scenario() -> None:
        t = make_core()
        settings = t.core.tenants.get_settings(ADMIN)
        assert (settings.tenant, settings.timezone, settings.updated_at) == (TENANT, "UTC", None)
        t.clock.advance(timedelta(minutes=1))
        changed = await t.core.tenants.update_settings(ADMIN, Decoded(SettingsPatch(timezone="Asia/Tokyo")), None)
        assert (changed.timezone, changed.updated_at) == ("Asia/Tokyo", START + timedelta(minutes=1))
        assert t.core.tenants.get_settings(ADMIN) == changed
        assert t.core.tenants.get_settings(OTHER).timezone == "UTC"
        restored = await t.core.tenants.update_settings(ADMIN, Decoded(SettingsPatch()), ["timezone"])
        assert restored.timezone == "UTC"

    run(scenario())


@pytest.mark.parametrize(
    ("patch", "mask", "field"),
    [
        (SettingsPatch(timezone="Mars/Olympus"), None, "timezone"),
        (SettingsPatch(timezone=" UTC"), ["timezone"], "timezone"),
        (SettingsPatch(timezone="UTC"), ["*"], "updateMask"),
        (SettingsPatch(timezone="UTC"), ["tenant_id"], "updateMask"),
    ],
)
def test_bad_settings_are_invalid_and_change_nothing(patch: SettingsPatch, mask: list[str] | None, field: str) -> None:
    async def scenario() -> None:
        t = make_core()
        before = await t.core.tenants.update_settings(ADMIN, Decoded(SettingsPatch(timezone="Europe/Paris")), None)
        with pytest.raises(InvalidArgument) as info:
            await t.core.tenants.update_settings(ADMIN, Decoded(patch), mask)
        assert fields_of(info.value) == [field]
        assert t.core.tenants.get_settings(ADMIN) == before

    run(scenario())


# -- API keys ------------------------------------------------------------------------------------------------


def test_a_key_is_shown_once_stored_hashed_and_authenticates_until_revoked() -> None:
    async def scenario() -> None:
        t = make_core()
        key, secret = await t.core.keys.create(ADMIN, Decoded(KeyRequest(name="svc", role=Role.DECIDE)))
        match = re.fullmatch(r"arb_([0-9a-f]{16})_[A-Za-z0-9_-]{43}", secret)
        assert match is not None and key.id == "key_" + match.group(1)
        assert key.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        assert (key.tenant, key.role, key.created_at, key.revoked_at) == (TENANT, Role.DECIDE, START, None)
        assert t.core.keys.get(ADMIN, key.id) == key
        assert (await t.core.keys.list_keys(ADMIN, PageRequest())).items == [key]
        principal = t.core.auth.authenticate(Credentials(authorization=f"bearer {secret}", tenant="ignored"))
        assert principal == Principal(TENANT, Role.DECIDE, key.id)
        t.clock.advance(timedelta(minutes=1))
        revoked = await t.core.keys.revoke(ADMIN, key.id)
        assert revoked.revoked_at == START + timedelta(minutes=1)
        t.clock.advance(timedelta(minutes=1))
        assert await t.core.keys.revoke(ADMIN, key.id) == revoked  # revoking again changes nothing
        with pytest.raises(Unauthenticated) as info:
            t.core.auth.authenticate(Credentials(api_key=secret))
        assert info.value.reason == "KEY_REVOKED"

    run(scenario())


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (KeyRequest(name="no role"), "role"),
        (KeyRequest(name="expired", role=Role.ADMIN, expires_at=START), "expiresAt"),
        (KeyRequest(name="x" * 256, role=Role.ADMIN), "name"),
    ],
)
def test_a_bad_key_request_is_invalid(request_: KeyRequest, field: str) -> None:
    async def scenario() -> None:
        t = make_core()
        with pytest.raises(InvalidArgument) as info:
            await t.core.keys.create(ADMIN, Decoded(request_))
        assert fields_of(info.value) == [field]
        assert t.db.keys == {}

    run(scenario())


def test_a_key_expires_at_its_instant() -> None:
    async def scenario() -> None:
        t = make_core()
        expires = START + timedelta(hours=1)
        _, secret = await t.core.keys.create(ADMIN, Decoded(KeyRequest(role=Role.EDITOR, expires_at=expires)))
        t.clock.set(expires - timedelta(microseconds=1))
        assert t.core.auth.authenticate(Credentials(api_key=secret)).role is Role.EDITOR
        t.clock.set(expires)
        with pytest.raises(Unauthenticated) as info:
            t.core.auth.authenticate(Credentials(api_key=secret))
        assert info.value.reason == "KEY_EXPIRED"

    run(scenario())


# -- outcomes ------------------------------------------------------------------------------------------------


def test_a_repeated_idempotency_key_is_a_duplicate_with_the_first_result_and_counts_once() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown", qualification=Qualification(model_reference="m"))
        first = await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, "k")
        assert not first.duplicate and first.recorded_us == t.now_us
        t.clock.advance(timedelta(minutes=1))
        # Whatever the payload: another type, another customer.
        again = await t.outcome("c-2", offer.id, OutcomeType.CLICK, "k")
        assert again == type(first)(first.outcome_id, first.recorded_us, duplicate=True)
        assert len(t.db.outcomes[TENANT]) == 1
        stats = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert (stats.counts.lifetime_impressions, stats.counts.model_trials, stats.counts.model_positives) == (1, 1, 0)

    run(scenario())


def test_a_bulk_call_reports_recorded_or_duplicate_per_item() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown")
        [earlier] = await t.core.outcomes.record(ADMIN, Decoded([outcome(offer.id, "k-1")]), bulk=False)
        records = await record_bulk(t, [outcome(offer.id, "k-1"), outcome(offer.id, "k-2"), outcome(offer.id, "k-2")])
        assert [r.duplicate for r in records] == [True, False, True]
        assert records[0].outcome_id == earlier.outcome_id
        assert records[2].outcome_id == records[1].outcome_id
        assert (await t.core.decisions.offer_stats(ADMIN, offer.id)).counts.lifetime_impressions == 2

    run(scenario())


def test_one_bad_item_rejects_the_whole_batch_and_records_nothing() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown")
        items = [outcome(offer.id, "k-0"), outcome("act_0000000000000000", "k-1"), outcome(offer.id, "")]
        with pytest.raises(InvalidArgument) as info:
            await record_bulk(t, items)
        assert fields_of(info.value) == ["outcomes[1].offerId", "outcomes[2].idempotencyKey"]
        assert t.db.outcomes[TENANT] == [] and not t.db.ledger
        assert (await t.core.decisions.offer_stats(ADMIN, offer.id)).counts.lifetime_impressions == 0
        # The good item was not kept aside either: its key is still free.
        [record] = await record_bulk(t, [outcome(offer.id, "k-0")])
        assert not record.duplicate

    run(scenario())


@pytest.mark.parametrize(("count", "ok"), [(0, False), (1, True), (1_000, True), (1_001, False)])
def test_a_batch_holds_1_to_1000_outcomes(count: int, ok: bool) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown")
        items = [outcome(offer.id, f"k-{i}") for i in range(count)]
        if ok:
            assert len(await record_bulk(t, items)) == count
        else:
            with pytest.raises(InvalidArgument) as info:
                await record_bulk(t, items)
            assert fields_of(info.value) == ["outcomes"]
            assert t.db.outcomes[TENANT] == []

    run(scenario())


def test_a_single_outcome_for_an_unknown_or_deleted_offer_is_not_found() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Deleted soon")
        await t.core.offers.delete(ADMIN, offer.id, force=False)
        for offer_id in ("act_0000000000000000", offer.id):
            with pytest.raises(NotFound) as info:
                await t.outcome("c-1", offer_id, OutcomeType.CLICK, "k")
            assert (info.value.reason, info.value.metadata) == ("OFFER_NOT_FOUND", {"id": offer_id})
        with pytest.raises(InvalidArgument) as bad:
            await t.core.outcomes.record(ADMIN, Decoded([outcome(offer.id, "k", customer="")]), bulk=False)
        assert fields_of(bad.value) == ["outcome.customerId"]
        assert t.db.outcomes[TENANT] == []

    run(scenario())


@pytest.mark.parametrize("status", [OfferStatus.DRAFT, OfferStatus.PAUSED, OfferStatus.ARCHIVED])
def test_offers_that_are_not_active_accept_late_outcomes(status: OfferStatus) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await offer_in(t, status)
        record = await t.outcome("c-1", offer.id, OutcomeType.CONVERSION, "late")
        assert not record.duplicate and len(t.db.outcomes[TENANT]) == 1

    run(scenario())


def test_an_impression_recorded_by_decide_reported_again_is_a_duplicate() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown")
        decision = await t.decide(record_impressions=True)
        again = outcome(offer.id, "another key", decision_id=decision.decision_id)
        [record] = await t.core.outcomes.record(ADMIN, Decoded([again]), bulk=False)
        assert record.duplicate
        assert (await t.core.decisions.offer_stats(ADMIN, offer.id)).counts.lifetime_impressions == 1

    run(scenario())


def test_an_outcome_without_a_time_happened_when_the_server_received_it() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Shown")
        t.clock.advance(timedelta(hours=3))
        await t.core.outcomes.record(ADMIN, Decoded([outcome(offer.id, "now")]), bulk=False)
        [stored] = t.db.outcomes[TENANT]
        assert stored.occurred_us == stored.recorded_us == to_epoch_micros(START + timedelta(hours=3))

    run(scenario())


# -- GetOfferStats -------------------------------------------------------------------------------------------


async def _counted_offer(t: CoreUnderTest) -> Offer:
    """Three impressions (one yesterday), one click after one of today's."""
    budget = Budget(max_impressions=10, max_daily_budget=5.0, cost_per_action=0.5)
    offer = await t.offer("Counted", budget=budget, qualification=Qualification(model_reference="m"))
    await t.outcome("c-0", offer.id, OutcomeType.IMPRESSION, "yesterday", at=START - timedelta(days=1))
    await t.outcome("c-1", offer.id, OutcomeType.IMPRESSION, "today-1")
    await t.outcome("c-2", offer.id, OutcomeType.IMPRESSION, "today-2")
    await t.outcome("c-1", offer.id, OutcomeType.CLICK, "click", at=START + timedelta(minutes=1))
    await t.outcome("c-3", offer.id, OutcomeType.DISMISS, "dismiss")
    return offer


def test_offer_stats_count_impressions_spend_and_the_model() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await _counted_offer(t)
        stats = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert (stats.today, stats.timezone, stats.model_reference) == (date(2026, 6, 3), "UTC", "m")
        counts = stats.counts
        assert (counts.lifetime_impressions, counts.today_impressions, counts.today_spend_micros) == (3, 2, 1_000_000)
        assert (counts.model_trials, counts.model_positives) == (3, 1)
        assert stats.model_estimate == pytest.approx(2 / 5)
        assert (stats.remaining_impressions, stats.remaining_daily_budget_micros) == (7, 4_000_000)
        # The next day starts with the whole daily budget.
        t.clock.set(datetime(2026, 6, 4, 0, 0, tzinfo=UTC))
        tomorrow = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert (tomorrow.today, tomorrow.counts.today_impressions, tomorrow.remaining_daily_budget_micros) == (
            date(2026, 6, 4),
            0,
            5_000_000,
        )
        assert tomorrow.counts.lifetime_impressions == 3

    run(scenario())


def test_a_time_zone_change_moves_today_but_not_past_impressions() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await _counted_offer(t)
        # Noon UTC on June 3 is already June 4 in Kiritimati (UTC+14).
        patch = SettingsPatch(timezone="Pacific/Kiritimati")
        await t.core.tenants.update_settings(ADMIN, Decoded(patch), ["timezone"])
        stats = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert (stats.today, stats.timezone) == (date(2026, 6, 4), "Pacific/Kiritimati")
        assert (stats.counts.today_impressions, stats.counts.today_spend_micros) == (0, 0)
        assert stats.counts.lifetime_impressions == 3
        await t.outcome("c-4", offer.id, OutcomeType.IMPRESSION, "after the change")
        assert (await t.core.decisions.offer_stats(ADMIN, offer.id)).counts.today_impressions == 1
        await t.core.tenants.update_settings(ADMIN, Decoded(SettingsPatch()), ["timezone"])
        back = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert (back.today, back.counts.today_impressions, back.counts.lifetime_impressions) == (date(2026, 6, 3), 2, 4)

    run(scenario())


def expected_positives(events: list[tuple[int, OutcomeType]]) -> int:
    """rules.md: in event time, a click or conversion takes one earlier unmatched impression (same instant: earlier)."""
    waiting = matched = 0
    for _, kind in sorted(events, key=lambda e: (e[0], e[1] is not OutcomeType.IMPRESSION)):
        if kind is OutcomeType.IMPRESSION:
            waiting += 1
        elif waiting:
            waiting, matched = waiting - 1, matched + 1
    return matched


model_events = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from([OutcomeType.IMPRESSION, OutcomeType.CLICK, OutcomeType.CONVERSION])),
    max_size=12,
)


@settings(max_examples=50)
@given(events=model_events, order=st.randoms(use_true_random=False))
def test_the_adaptive_model_counts_positives_in_event_time_whatever_the_arrival_order(
    events: list[tuple[int, OutcomeType]], order: random.Random
) -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Learning", qualification=Qualification(model_reference="m"))
        arrivals = list(enumerate(events))
        order.shuffle(arrivals)
        for n, (minute, kind) in arrivals:
            await t.outcome("c-1", offer.id, kind, f"e-{n}", at=START + timedelta(minutes=minute))
        counts = (await t.core.decisions.offer_stats(ADMIN, offer.id)).counts
        impressions = sum(kind is OutcomeType.IMPRESSION for _, kind in events)
        assert (counts.model_trials, counts.model_positives) == (impressions, expected_positives(events))
        [decided] = (await t.decide("c-2")).result.offers
        assert decided.propensity == pytest.approx((expected_positives(events) + 1) / (impressions + 2))

    run(scenario())


def test_stats_of_an_offer_without_caps_or_model_leave_those_unset() -> None:
    async def scenario() -> None:
        t = make_core()
        offer = await t.offer("Plain")
        stats = await t.core.decisions.offer_stats(ADMIN, offer.id)
        assert (stats.remaining_impressions, stats.remaining_daily_budget_micros, stats.model_reference) == (
            None,
            None,
            "",
        )
        assert stats.model_estimate == 0.5

    run(scenario())
