"""ContactPolicyService over the wire: CRUD, validation of every field at once, and tenant isolation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from policy_helpers import T0, active_offer, category, decide, ids, policy, policy_ids, sub_category
from serverproc import ServerProcess

from arbiter.client import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    policy_to_dict,
)
from arbiter.v1 import contact_policies_pb2 as pb

BASE: dict[str, Any] = {"name": "cap", "scope": "global", "priority": 50}
CAP: dict[str, Any] = {**BASE, "frequencyCap": {"maxPerDay": 2}}


# -- create, get, delete ------------------------------------------------------------


def test_create_fills_defaults_and_get_returns_the_same(client: Client) -> None:
    created = client.create_contact_policy({"name": "cap", "scope": "global", "frequencyCap": {"maxPerDay": 2}})
    assert re.fullmatch(r"cp_[0-9a-f]{16}", created.id)
    assert created.status == pb.POLICY_STATUS_ACTIVE  # unset status means active
    assert created.priority == 0
    assert created.scope == pb.POLICY_SCOPE_GLOBAL
    assert created.scope_id == ""
    assert not created.HasField("bypassable")  # unset stays unset (it means true)
    assert created.WhichOneof("rule") == "frequency_cap"
    assert created.frequency_cap.max_per_day == 2
    assert not created.frequency_cap.HasField("max_per_week")
    assert created.HasField("created_at") and created.created_at == created.updated_at
    assert client.get_contact_policy(created.id) == created
    assert policy_to_dict(created)["scope"] == "global"


def test_create_ignores_output_only_fields(client: Client) -> None:
    created = client.create_contact_policy({**CAP, "id": "cp_0000000000000000", "createdAt": "2001-01-01T00:00:00Z"})
    assert created.id != "cp_0000000000000000"
    assert created.created_at.seconds > 978_307_200


def test_every_rule_type_round_trips(client: Client) -> None:
    category(client, "cat_cards")
    a = active_offer(client, "A", categoryId="cat_cards")
    rules: dict[str, dict[str, Any]] = {
        "frequencyCap": {"maxPerDay": 1, "maxPerWeek": 3, "maxPerMonth": 9},
        "cooldown": {"minHours": 1.5},
        "customerTotalCap": {"maxImpressions": 4, "windowDays": 7, "channel": "email"},
        "outcomeSuppression": {"outcomeTypes": ["dismiss", "complaint"], "minCount": 2, "windowDays": 30},
        "categorySuppression": {"hours": 12},
        "mutualExclusion": {"offerIds": [a], "tag": "exclusive", "windowDays": 3},
        "segmentExclusion": {"segments": ["minors"]},
        "timeWindow": {"daysOfWeek": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"},
        "budgetExhausted": {},
        "allowOverride": {},
    }
    for field, rule in rules.items():
        created = policy(client, field, rule, scope="category", scope_id="cat_cards", bypassable=False)
        body = policy_to_dict(client.get_contact_policy(created.id))
        expected = dict(rule)
        if field == "outcomeSuppression":  # enum words come back as proto names
            expected["outcomeTypes"] = ["OUTCOME_TYPE_DISMISS", "OUTCOME_TYPE_COMPLAINT"]
        assert body[field] == expected
        assert body["scope"] == "category" and body["scopeId"] == "cat_cards" and body["bypassable"] is False
    assert len(client.list_contact_policies().contact_policies) == len(rules)


def test_unset_bypassable_means_bypassable(client: Client) -> None:
    mandatory = active_offer(client, "Notice", mandatory=True)
    plain = active_offer(client, "Plain")
    blocker = client.create_contact_policy(
        {"name": "no minors", "scope": "global", "priority": 50, "segmentExclusion": {"segments": ["minors"]}}
    )
    assert not blocker.HasField("bypassable")
    answer = decide(client, "c", T0, segments=["minors"])
    assert ids(answer) == [mandatory]  # a mandatory offer skips it...
    assert blocker.id in {c.offer_id: c.message for c in answer.candidates}[plain]
    policy(client, "allowOverride", {}, scope="offer", scope_id=plain, priority=0)
    assert ids(decide(client, "c", T0, segments=["minors"])) == [mandatory, plain]  # ...and so does an override


def test_delete_is_permanent_and_stops_evaluation(client: Client) -> None:
    offer = active_offer(client, "A")
    blocker = policy(client, "segmentExclusion", {"segments": ["minors"]})
    assert ids(decide(client, "c", T0, segments=["minors"])) == []
    client.delete_contact_policy(blocker.id)
    with pytest.raises(NotFoundError) as caught:
        client.get_contact_policy(blocker.id)
    assert caught.value.reason == "POLICY_NOT_FOUND"
    with pytest.raises(NotFoundError) as missing:
        client.delete_contact_policy(blocker.id)
    assert missing.value.reason == "POLICY_NOT_FOUND"
    assert client.list_contact_policies().contact_policies == []
    assert ids(decide(client, "c", T0, segments=["minors"])) == [offer]


def test_get_and_delete_unknown_ids_are_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.get_contact_policy("cp_0123456789abcdef")
    assert missing.value.reason == "POLICY_NOT_FOUND"
    with pytest.raises(NotFoundError) as missing:
        client.delete_contact_policy("cp_0123456789abcdef")
    assert missing.value.reason == "POLICY_NOT_FOUND"
    with pytest.raises(NotFoundError) as missing:
        client.update_contact_policy({"id": "cp_0123456789abcdef", "priority": 3})
    assert missing.value.reason == "POLICY_NOT_FOUND"


# -- list ------------------------------------------------------------------------------


def test_list_filters_by_status_and_pages_in_creation_order(client: Client) -> None:
    created = [policy(client, "segmentExclusion", {"segments": [f"s{i}"]}) for i in range(5)]
    client.update_contact_policy({"id": created[1].id, "status": "paused"})
    client.update_contact_policy({"id": created[3].id, "status": "archived"})

    assert policy_ids(client.list_contact_policies().contact_policies) == policy_ids(created)
    assert policy_ids(client.list_contact_policies(status="paused").contact_policies) == [created[1].id]
    assert policy_ids(client.list_contact_policies(status="archived").contact_policies) == [created[3].id]
    active = [created[0].id, created[2].id, created[4].id]
    assert policy_ids(client.list_contact_policies(status="active").contact_policies) == active

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = client.list_contact_policies(page_size=2, page_token=token)
        assert len(page.contact_policies) <= 2
        seen.extend(policy_ids(page.contact_policies))
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert (seen, pages) == (policy_ids(created), 3)

    first = client.list_contact_policies(status="active", page_size=2)
    assert policy_ids(first.contact_policies) == active[:2] and first.next_page_token
    rest = client.list_contact_policies(status="active", page_size=2, page_token=first.next_page_token)
    assert policy_ids(rest.contact_policies) == active[2:] and rest.next_page_token == ""


def test_list_rejects_negative_page_sizes_and_foreign_tokens(client: Client) -> None:
    for _ in range(3):
        policy(client, "cooldown", {"minHours": 1})
    with pytest.raises(InvalidArgumentError) as caught:
        client.list_contact_policies(page_size=-1)
    assert caught.value.fields == ["pageSize"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.list_contact_policies(status=9)
    assert caught.value.fields == ["status"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.list_contact_policies(page_token="not-a-token")
    assert caught.value.fields == ["pageToken"]
    token = client.list_contact_policies(page_size=1).next_page_token
    with pytest.raises(InvalidArgumentError):  # a token only continues the query that issued it
        client.list_contact_policies(status="paused", page_size=1, page_token=token)


# -- update ----------------------------------------------------------------------------


def test_update_without_mask_changes_only_the_fields_set(client: Client) -> None:
    created = client.create_contact_policy({**CAP, "description": "two a day"})
    changed = client.update_contact_policy({"id": created.id, "priority": 80})
    assert changed.priority == 80
    assert (changed.name, changed.description, changed.status) == ("cap", "two a day", pb.POLICY_STATUS_ACTIVE)
    assert changed.frequency_cap.max_per_day == 2
    assert changed.created_at == created.created_at
    assert changed.updated_at.ToDatetime() > created.updated_at.ToDatetime()
    assert client.get_contact_policy(created.id) == changed

    # A rule in a mask-less update replaces the rule, whatever its type.
    replaced = client.update_contact_policy({"id": created.id, "cooldown": {"minHours": 6}})
    assert replaced.WhichOneof("rule") == "cooldown" and replaced.cooldown.min_hours == 6
    assert replaced.priority == 80 and replaced.description == "two a day"

    # An empty update changes nothing.
    assert client.update_contact_policy({"id": created.id}) == replaced


def test_update_with_mask_sets_and_clears_exactly_the_named_paths(client: Client) -> None:
    created = client.create_contact_policy({**CAP, "description": "d", "bypassable": False})
    # Priority 0 and an empty description can only be written through the mask.
    cleared = client.update_contact_policy({"id": created.id, "name": "ignored"}, ["priority", "description"])
    assert (cleared.priority, cleared.description, cleared.name) == (0, "", "cap")
    assert cleared.bypassable is False and cleared.HasField("bypassable")

    unset = client.update_contact_policy({"id": created.id}, ["bypassable"])
    assert not unset.HasField("bypassable")

    # "rule" replaces the whole rule: the new frequency cap keeps none of the old maxima.
    swapped = client.update_contact_policy({"id": created.id, "frequencyCap": {"maxPerWeek": 5}}, ["rule"])
    assert swapped.frequency_cap.max_per_week == 5
    assert not swapped.frequency_cap.HasField("max_per_day")
    typed = client.update_contact_policy({"id": created.id, "timeWindow": {"start": "08:00", "end": "20:00"}}, ["rule"])
    assert typed.WhichOneof("rule") == "time_window"

    camel = client.update_contact_policy(
        {"id": created.id, "scope": "channel", "scopeId": "email"}, ["scope", "scopeId"]
    )
    assert (camel.scope, camel.scope_id) == (pb.POLICY_SCOPE_CHANNEL, "email")

    replacement = {"id": created.id, "name": "renamed", "scope": "global", "segmentExclusion": {"segments": ["x"]}}
    with pytest.raises(InvalidArgumentError) as caught:  # "*" names status, which is unset here
        client.update_contact_policy(replacement, ["*"])
    assert caught.value.fields == ["status"]
    everything = client.update_contact_policy({**replacement, "status": "paused"}, ["*"])
    assert (everything.name, everything.priority, everything.scope_id) == ("renamed", 0, "")
    assert everything.status == pb.POLICY_STATUS_PAUSED and not everything.HasField("bypassable")
    assert everything.WhichOneof("rule") == "segment_exclusion"
    assert client.get_contact_policy(created.id) == everything


def test_update_mask_and_value_errors_change_nothing(client: Client) -> None:
    created = client.create_contact_policy(CAP)
    client.create_contact_policy({**CAP, "name": "taken"})
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_contact_policy({"id": created.id, "priority": 3}, ["nickname"])
    assert caught.value.fields == ["updateMask"]
    for output_only in (["id"], ["created_at"], ["updateTime"], ["updated_at"]):
        with pytest.raises(InvalidArgumentError) as caught:
            client.update_contact_policy({"id": created.id}, output_only)
        assert caught.value.fields == ["updateMask"]
    with pytest.raises(InvalidArgumentError) as caught:  # _UNSPECIFIED named in a mask
        client.update_contact_policy({"id": created.id}, ["status"])
    assert caught.value.fields == ["status"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_contact_policy({"id": created.id}, ["scope"])
    assert caught.value.fields == ["scope"]
    with pytest.raises(InvalidArgumentError) as caught:  # clearing the rule leaves none
        client.update_contact_policy({"id": created.id}, ["rule"])
    assert caught.value.fields == ["rule"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_contact_policy({"id": created.id, "priority": 101, "cooldown": {"minHours": 0}})
    assert sorted(caught.value.fields) == ["cooldown.minHours", "priority"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_contact_policy({"id": created.id, "scope": "category", "scopeId": "cat_nope"})
    assert caught.value.fields == ["scopeId"]
    with pytest.raises(AlreadyExistsError):
        client.update_contact_policy({"id": created.id, "name": "taken"})
    with pytest.raises(InvalidArgumentError) as caught:
        client.update_contact_policy({"priority": 3})
    assert caught.value.fields == ["id"]
    assert client.get_contact_policy(created.id) == created


def test_archived_policies_are_read_only_but_deletable(client: Client) -> None:
    created = client.create_contact_policy(CAP)
    paused = client.update_contact_policy({"id": created.id, "status": "paused"})
    assert paused.status == pb.POLICY_STATUS_PAUSED
    resumed = client.update_contact_policy({"id": created.id, "status": "active"})  # paused is not terminal
    assert resumed.status == pb.POLICY_STATUS_ACTIVE
    archived = client.update_contact_policy({"id": created.id, "status": "archived"}, ["status"])
    assert archived.status == pb.POLICY_STATUS_ARCHIVED
    for change, mask in (
        ({"id": created.id, "description": "x"}, None),
        ({"id": created.id, "status": "active"}, ["status"]),
        ({"id": created.id, "cooldown": {"minHours": 1}}, ["rule"]),
    ):
        with pytest.raises(FailedPreconditionError) as caught:
            client.update_contact_policy(change, mask)
        assert caught.value.reason == "POLICY_ARCHIVED"
    assert client.get_contact_policy(created.id) == archived
    client.delete_contact_policy(created.id)
    with pytest.raises(NotFoundError) as missing:
        client.get_contact_policy(created.id)
    assert missing.value.reason == "POLICY_NOT_FOUND"


def test_names_are_unique_per_tenant_archived_included(client: Client, server: ServerProcess, tenant: str) -> None:
    first = client.create_contact_policy(CAP)
    with pytest.raises(AlreadyExistsError) as caught:
        client.create_contact_policy({**BASE, "cooldown": {"minHours": 1}})
    assert caught.value.reason == "POLICY_NAME_TAKEN"
    client.update_contact_policy({"id": first.id, "status": "archived"})
    with pytest.raises(AlreadyExistsError):
        client.create_contact_policy(CAP)
    assert client.create_contact_policy({**CAP, "name": "Cap"}).name == "Cap"  # exact match only
    with Client(server.target, tenant=tenant + "-other") as other:
        assert other.create_contact_policy(CAP).name == "cap"
    assert len(client.list_contact_policies().contact_policies) == 2


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({**CAP, "priority": 101}, ["priority"], id="priority-above-100"),
        pytest.param({**CAP, "priority": -1}, ["priority"], id="priority-negative"),
        pytest.param({**CAP, "name": ""}, ["name"], id="name-missing"),
        pytest.param({**CAP, "name": "   "}, ["name"], id="name-whitespace"),
        pytest.param({**CAP, "name": "x" * 256}, ["name"], id="name-too-long"),
        pytest.param({**CAP, "description": "d" * 2001}, ["description"], id="description-too-long"),
        pytest.param({"name": "x", "frequencyCap": {"maxPerDay": 1}}, ["scope"], id="scope-missing"),
        pytest.param({**CAP, "scope": 9}, ["scope"], id="scope-unknown-value"),
        pytest.param({**CAP, "status": 9}, ["status"], id="status-unknown-value"),
        pytest.param({**CAP, "scope": "category"}, ["scopeId"], id="category-without-id"),
        pytest.param({**CAP, "scope": "sub_category"}, ["scopeId"], id="sub-category-without-id"),
        pytest.param({**CAP, "scope": "offer"}, ["scopeId"], id="offer-without-id"),
        pytest.param({**CAP, "scope": "channel"}, ["scopeId"], id="channel-without-id"),
        pytest.param({**CAP, "scopeId": "email"}, ["scopeId"], id="global-with-id"),
        pytest.param({**CAP, "scope": "category", "scopeId": "cat_nope"}, ["scopeId"], id="unknown-category"),
        pytest.param({**CAP, "scope": "sub_category", "scopeId": "sub_nope"}, ["scopeId"], id="unknown-sub-category"),
        pytest.param({**CAP, "scope": "offer", "scopeId": "act_0123456789abcdef"}, ["scopeId"], id="unknown-offer"),
        pytest.param({"name": "x", "scope": "global"}, ["rule"], id="rule-missing"),
        pytest.param({**CAP, "frequencyCap": {}}, ["frequencyCap*"], id="frequency-cap-without-caps"),
        pytest.param({**CAP, "frequencyCap": {"maxPerWeek": -1}}, ["frequencyCap.maxPerWeek"], id="negative-cap"),
        pytest.param({**BASE, "cooldown": {"minHours": 0}}, ["cooldown.minHours"], id="cool-0"),
        pytest.param({**BASE, "cooldown": {"minHours": -2}}, ["cooldown.minHours"], id="cool-neg"),
        pytest.param({**BASE, "cooldown": {"minHours": 8761}}, ["cooldown.minHours"], id="cool-366-days"),
        pytest.param(
            {**BASE, "customerTotalCap": {"maxImpressions": 3, "windowDays": 366}},
            ["customerTotalCap.windowDays"],
            id="total-cap-366-days",
        ),
        pytest.param(
            {**BASE, "customerTotalCap": {"maxImpressions": -1, "windowDays": 0}},
            ["customerTotalCap.maxImpressions", "customerTotalCap.windowDays"],
            id="total-cap-negative-and-no-window",
        ),
        pytest.param(
            {**BASE, "outcomeSuppression": {"minCount": 0, "windowDays": 400}},
            ["outcomeSuppression.outcomeTypes", "outcomeSuppression.minCount", "outcomeSuppression.windowDays"],
            id="suppression-without-types-count-0-long-window",
        ),
        pytest.param(
            {**BASE, "outcomeSuppression": {"outcomeTypes": ["click"], "minCount": 1}},
            ["outcomeSuppression.windowDays"],
            id="suppression-without-window",
        ),
        pytest.param(
            {**BASE, "categorySuppression": {"hours": 0}},
            ["categorySuppression.hours"],
            id="category-suppression-0h",
        ),
        pytest.param(
            {**BASE, "categorySuppression": {"hours": 8761}},
            ["categorySuppression.hours"],
            id="category-suppression-366-days",
        ),
        pytest.param(
            {**BASE, "mutualExclusion": {"offerIds": ["act_0123456789abcdef"]}},
            ["mutualExclusion.offerIds[0]"],
            id="exclusion-unknown-offer",
        ),
        pytest.param(
            {**BASE, "mutualExclusion": {"tag": "x", "windowDays": 366}},
            ["mutualExclusion.windowDays"],
            id="exclusion-366-days",
        ),
        pytest.param(
            {**BASE, "segmentExclusion": {}},
            ["segmentExclusion.segments"],
            id="segment-exclusion-empty",
        ),
        pytest.param(
            {**BASE, "timeWindow": {"start": "24:00", "end": "9:30"}},
            ["timeWindow.start", "timeWindow.end"],
            id="time-window-bad-hhmm",
        ),
        pytest.param(
            {**BASE, "timeWindow": {"start": "09:00"}},
            ["timeWindow.end"],
            id="time-window-without-end",
        ),
        pytest.param(
            {**BASE, "timeWindow": {"start": "09:00", "end": "09:00"}},
            ["timeWindow.end"],
            id="time-window-empty",
        ),
        pytest.param(
            {**BASE, "timeWindow": {"daysOfWeek": [7]}},
            ["timeWindow.daysOfWeek[0]"],
            id="time-window-day-7",
        ),
        pytest.param(
            {"name": "", "priority": 101, "cooldown": {"minHours": 0}},
            ["name", "priority", "scope", "cooldown.minHours"],
            id="every-field-at-once",
        ),
        pytest.param(
            {
                "name": "x",
                "priority": -5,
                "scope": "offer",
                "scopeId": "act_0123456789abcdef",
                "mutualExclusion": {"offerIds": ["act_0123456789abcdef"], "windowDays": 400},
            },
            ["priority", "scopeId", "mutualExclusion.offerIds[0]", "mutualExclusion.windowDays"],
            id="every-field-at-once-with-references",
        ),
        pytest.param(
            {"name": "x", "scope": "sub_category", "priority": 200},
            ["priority", "scopeId", "rule"],
            id="scope-id-and-rule-missing",
        ),
    ],
)
def test_invalid_policies_report_every_field(client: Client, body: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_contact_policy(body)
    got = sorted(caught.value.fields)
    exact = sorted(f for f in fields if not f.endswith("*"))
    prefixes = [f[:-1] for f in fields if f.endswith("*")]
    assert [f for f in got if not any(f.startswith(p) for p in prefixes)] == exact, got
    for prefix in prefixes:
        assert [f for f in got if f.startswith(prefix)], got
    assert all(v.description for v in caught.value.field_violations)
    assert client.list_contact_policies().contact_policies == []


def test_scope_ids_and_members_must_name_this_tenants_resources(client: Client) -> None:
    category(client, "cat_cards")
    category(client, "cat_loans")
    sub_category(client, "cat_cards", "sub_gold")
    offer = active_offer(client, "A", categoryId="cat_cards")
    # Existing ones pass, whatever kind they are.
    for scope, scope_id in (("category", "cat_cards"), ("sub_category", "sub_gold"), ("offer", offer)):
        created = client.create_contact_policy({**CAP, "name": scope, "scope": scope, "scopeId": scope_id})
        assert created.scope_id == scope_id
    channel = client.create_contact_policy({**CAP, "name": "any channel", "scope": "channel", "scopeId": "pigeon"})
    assert channel.scope_id == "pigeon"  # a channel is a free name
    # A real id of the wrong kind names nothing.
    for scope, scope_id in (("category", "sub_gold"), ("sub_category", "cat_cards"), ("offer", "cat_cards")):
        with pytest.raises(InvalidArgumentError) as caught:
            client.create_contact_policy({**CAP, "name": "wrong kind", "scope": scope, "scopeId": scope_id})
        assert caught.value.fields == ["scopeId"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_contact_policy({**BASE, "mutualExclusion": {"offerIds": [offer, "act_0123456789abcdef"]}})
    assert caught.value.fields == ["mutualExclusion.offerIds[1]"]


def test_policies_of_one_tenant_are_invisible_and_inert_for_another(
    client: Client, server: ServerProcess, tenant: str
) -> None:
    category(client, "cat_cards")
    offer = active_offer(client, "A", categoryId="cat_cards")
    mine = policy(client, "segmentExclusion", {"segments": ["minors"]}, scope="offer", scope_id=offer)
    assert ids(decide(client, "c", T0, segments=["minors"])) == []
    with Client(server.target, tenant=tenant + "-other") as other:
        with pytest.raises(NotFoundError) as missing:
            other.get_contact_policy(mine.id)
        assert missing.value.reason == "POLICY_NOT_FOUND"
        with pytest.raises(NotFoundError) as missing:
            other.update_contact_policy({"id": mine.id, "status": "paused"})
        assert missing.value.reason == "POLICY_NOT_FOUND"
        with pytest.raises(NotFoundError) as missing:
            other.delete_contact_policy(mine.id)
        assert missing.value.reason == "POLICY_NOT_FOUND"
        assert other.list_contact_policies().contact_policies == []
        # Its ids name nothing here: not my offer, not my category.
        for scope, scope_id in (("offer", offer), ("category", "cat_cards")):
            with pytest.raises(InvalidArgumentError) as caught:
                other.create_contact_policy({**CAP, "scope": scope, "scopeId": scope_id})
            assert caught.value.fields == ["scopeId"]
        with pytest.raises(InvalidArgumentError) as caught:
            other.create_contact_policy({"name": "x", "scope": "global", "mutualExclusion": {"offerIds": [offer]}})
        assert caught.value.fields == ["mutualExclusion.offerIds[0]"]
        # My policy does not bind their decisions.
        theirs = active_offer(other, "A")
        assert ids(decide(other, "c", T0, segments=["minors"])) == [theirs]
        other.create_contact_policy({"name": "all", "scope": "global", "segmentExclusion": {"segments": ["adults"]}})
    assert client.get_contact_policy(mine.id) == mine
    assert policy_ids(client.list_contact_policies().contact_policies) == [mine.id]
    assert ids(decide(client, "c", T0, segments=["adults"])) == [offer]
