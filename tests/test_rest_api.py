"""The seed's REST API end to end: a real server, real HTTP, the seed's bodies as they are."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from offer_builders import seed_body, unique_name
from rest_helpers import RestClient, make_seed_hierarchy
from serverproc import ServerProcess

from arbiter.client import Client

ACTIONS = "/api/v1/actions"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def rest(server: ServerProcess, tenant: str) -> RestClient:
    return RestClient(server.http_url, tenant=tenant)


@pytest.fixture
def seeded(rest: RestClient) -> RestClient:
    """A tenant holding the seed example's category and sub-category."""
    make_seed_hierarchy(rest)
    return rest


def _create(rest: RestClient, **fields: Any) -> dict[str, Any]:
    answer = rest.post(ACTIONS, {"name": unique_name(), **fields})
    assert answer.status == 201, answer.body
    return answer.body


# --- the seed's calls, as the seed shows them -------------------------------------------------------------


def test_the_seeds_create_body_as_it_is_answers_201_with_the_seeds_response(seeded: RestClient) -> None:
    answer = seeded.post(ACTIONS, seed_body())

    assert answer.status == 201
    offer = answer.body
    assert answer.headers["location"] == f"{ACTIONS}/{offer['id']}"
    assert re.fullmatch(r"act_[0-9a-f]+", offer["id"])
    expected = {k: v for k, v in seed_body().items() if k not in ("qualification", "budget", "schedule")}
    assert {k: offer[k] for k in expected} == expected
    assert offer["qualification"] == seed_body()["qualification"]
    assert offer["schedule"]["timeWindow"] == {"start": "08:00", "end": "20:00"}
    assert RFC3339_UTC.match(offer["createdAt"]) and offer["createdAt"] == offer["updatedAt"]
    # Integers and money as JSON numbers, whole ones without ".0"; custom fields keep their JSON type.
    text = answer.raw.decode()
    assert '"annual_fee":95' in text and '"maxImpressions":50000' in text and '"maxDailyBudget":2500' in text
    assert isinstance(offer["customFields"]["annual_fee"], int)
    assert offer["customFields"]["base_rate"] == 19.99


def test_list_answers_data_and_pagination_and_filters_by_status_category_and_tags(seeded: RestClient) -> None:
    seeded.post("/api/v1/categories?categoryId=cat_other", {"name": "Other"})
    a = _create(seeded, categoryId="cat_credit_cards", tags=["x", "y"], status="active", customFields={"base_rate": 1})
    b = _create(seeded, categoryId="cat_other", tags=["x"])
    c = _create(seeded, tags=["y"])

    everything = seeded.get(ACTIONS)
    assert everything.status == 200
    assert [o["id"] for o in everything.body["data"]] == [a["id"], b["id"], c["id"]]
    assert everything.body["pagination"] == {"hasMore": False}

    def ids(query: str) -> list[str]:
        answer = seeded.get(f"{ACTIONS}?{query}")
        assert answer.status == 200, answer.body
        return [o["id"] for o in answer.body["data"]]

    assert ids("status=active") == [a["id"]]
    assert ids("categoryId=cat_credit_cards,cat_other") == [a["id"], b["id"]]
    assert ids("categoryId=cat_credit_cards&categoryId=cat_other") == [a["id"], b["id"]]
    assert ids("tags=x,y") == [a["id"]]
    assert ids("tags=x&tags=y") == [a["id"]]


def test_list_pages_with_limit_and_cursor_until_has_more_is_false(rest: RestClient) -> None:
    made = [_create(rest)["id"] for _ in range(5)]
    seen: list[str] = []
    query = f"{ACTIONS}?limit=2"
    pages = 0
    while True:
        answer = rest.get(query)
        assert answer.status == 200
        seen.extend(o["id"] for o in answer.body["data"])
        pages += 1
        pagination = answer.body["pagination"]
        if not pagination["hasMore"]:
            assert "nextCursor" not in pagination
            break
        query = f"{ACTIONS}?limit=2&cursor={pagination['nextCursor']}"
    assert seen == made and pages == 3


@pytest.mark.parametrize(("limit", "field"), [("-1", "limit"), ("two", "limit")])
def test_a_bad_limit_is_400_naming_limit(rest: RestClient, limit: str, field: str) -> None:
    answer = rest.get(f"{ACTIONS}?limit={limit}")

    assert answer.status == 400
    assert field in answer.violations()


def test_limit_zero_means_fifty_and_above_a_thousand_means_a_thousand(rest: RestClient) -> None:
    for _ in range(51):
        _create(rest)

    assert len(rest.get(f"{ACTIONS}?limit=0").body["data"]) == 50
    assert len(rest.get(f"{ACTIONS}?limit=5000").body["data"]) == 51


def test_get_answers_the_offer_and_an_unknown_id_is_404_in_the_error_shape(rest: RestClient) -> None:
    offer = _create(rest)

    assert rest.get(f"{ACTIONS}/{offer['id']}").body == offer
    missing = rest.get(f"{ACTIONS}/act_00000000")
    assert missing.status == 404
    assert missing.error["code"] == 404 and missing.error["status"] == "NOT_FOUND"
    assert missing.reason() == "OFFER_NOT_FOUND"


# --- partial updates --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_an_update_changes_only_the_keys_present_merging_nested_objects(seeded: RestClient, method: str) -> None:
    offer = seeded.post(ACTIONS, seed_body()).body

    answer = seeded.call(
        method,
        f"{ACTIONS}/{offer['id']}",
        {"shortDesc": "new words", "budget": {"maxImpressions": 10}, "customFields": {"annual_fee": 0}},
    )

    assert answer.status == 200, answer.body
    updated = answer.body
    assert updated["shortDesc"] == "new words"
    assert updated["budget"] == {"maxImpressions": 10, "maxDailyBudget": 2500, "costPerAction": 1.5}
    assert updated["customFields"] == {"base_rate": 19.99, "annual_fee": 0, "rewards_multiplier": 3}
    unchanged = ("name", "priority", "tags", "qualification", "schedule", "createdAt")
    assert {k: updated[k] for k in unchanged} == {k: offer[k] for k in unchanged}
    assert updated["updatedAt"] > offer["updatedAt"]


def test_json_null_clears_a_field_a_nested_field_and_a_whole_section(seeded: RestClient) -> None:
    offer = seeded.post(ACTIONS, seed_body()).body

    answer = seeded.put(
        f"{ACTIONS}/{offer['id']}", {"tags": None, "qualification": {"recency": None}, "schedule": None}
    )

    assert answer.status == 200, answer.body
    updated = answer.body
    assert updated["tags"] == []
    assert "recency" not in updated["qualification"]
    assert updated["qualification"]["propensityThreshold"] == 0.65
    assert "schedule" not in updated


def test_output_only_keys_in_a_body_are_ignored_and_the_url_names_the_target(rest: RestClient) -> None:
    offer = _create(rest)
    other = _create(rest)

    answer = rest.put(
        f"{ACTIONS}/{offer['id']}",
        {"id": other["id"], "createdAt": "2000-01-01T00:00:00Z", "shortDesc": "only this"},
    )

    assert answer.status == 200
    assert answer.body["id"] == offer["id"] and answer.body["createdAt"] == offer["createdAt"]
    assert rest.get(f"{ACTIONS}/{other['id']}").body == other


def test_lifecycle_moves_are_status_updates_and_an_illegal_one_is_409_naming_both_states(rest: RestClient) -> None:
    offer = _create(rest)
    path = f"{ACTIONS}/{offer['id']}"

    assert rest.put(path, {"status": "active"}).body["status"] == "active"
    assert rest.patch(path, {"status": "paused"}).body["status"] == "paused"
    refused = rest.patch(path, {"status": "draft"})

    assert refused.status == 409
    assert refused.error["status"] == "FAILED_PRECONDITION"
    assert "paused" in refused.error["message"] and "draft" in refused.error["message"]


def test_an_update_that_names_nothing_is_400(rest: RestClient) -> None:
    offer = _create(rest)

    answer = rest.put(f"{ACTIONS}/{offer['id']}", {})

    assert answer.status == 400
    assert "body" in answer.violations()


# --- delete and stats -------------------------------------------------------------------------------------


def test_delete_answers_204_and_the_offer_is_gone(rest: RestClient) -> None:
    offer = _create(rest)

    answer = rest.delete(f"{ACTIONS}/{offer['id']}")

    assert answer.status == 204 and answer.raw == b""
    assert rest.get(f"{ACTIONS}/{offer['id']}").status == 404


def test_deleting_an_offer_with_history_suggests_archiving_unless_forced(rest: RestClient) -> None:
    offer = _create(rest, status="active")
    recorded = rest.post(
        "/api/v1/outcomes",
        {"customerId": "c1", "offerId": offer["id"], "type": "impression"},
        headers={"Idempotency-Key": "i-1"},
    )
    assert recorded.status == 200, recorded.body

    refused = rest.delete(f"{ACTIONS}/{offer['id']}")
    assert refused.status == 409
    assert refused.reason() == "OFFER_HAS_HISTORY" and "archive" in refused.error["message"]

    assert rest.delete(f"{ACTIONS}/{offer['id']}?force=true").status == 204
    assert rest.get(f"{ACTIONS}/{offer['id']}").status == 404


def test_stats_answers_the_bare_stats_object_with_numbers(rest: RestClient) -> None:
    offer = _create(rest, status="active", budget={"maxImpressions": 10})
    rest.post(
        "/api/v1/outcomes",
        {"customerId": "c1", "offerId": offer["id"], "type": "impression"},
        headers={"Idempotency-Key": "i-1"},
    )

    stats = rest.get(f"{ACTIONS}/{offer['id']}/stats").body

    assert stats["offerId"] == offer["id"]
    assert stats["lifetimeImpressions"] == 1 and stats["remainingImpressions"] == 9
    assert isinstance(stats["lifetimeImpressions"], int)


# --- the other resources ----------------------------------------------------------------------------------


def test_categories_and_sub_categories_take_caller_chosen_ids_and_answer_with_location(rest: RestClient) -> None:
    category = rest.post(
        "/api/v1/categories?categoryId=cat_loans",
        {"name": "Loans", "customFields": [{"key": "apr", "type": "number", "required": True}]},
    )
    assert category.status == 201, category.body
    assert category.headers["location"] == "/api/v1/categories/cat_loans"
    assert category.body["customFields"][0] == {
        "key": "apr",
        "label": "",
        "type": "number",
        "required": True,
        "options": [],
        "formula": "",
    }
    sub = rest.post("/api/v1/categories/cat_loans/sub-categories?subCategoryId=sub_car", {"name": "Car"})
    assert sub.status == 201, sub.body
    assert sub.body["categoryId"] == "cat_loans"
    assert sub.headers["location"] == "/api/v1/categories/cat_loans/sub-categories/sub_car"

    listed = rest.get("/api/v1/categories/cat_loans/sub-categories").body["data"]
    assert [s["id"] for s in listed] == ["sub_car"]
    renamed = rest.patch("/api/v1/categories/cat_loans/sub-categories/sub_car", {"name": "Cars"})
    assert renamed.status == 200 and renamed.body["name"] == "Cars"
    archived = rest.put("/api/v1/categories/cat_loans", {"status": "archived"})
    assert archived.status == 200 and archived.body["status"] == "archived"
    assert archived.body["customFields"] == category.body["customFields"]


def test_a_sub_category_is_found_only_under_its_own_category(rest: RestClient) -> None:
    rest.post("/api/v1/categories?categoryId=cat_a", {"name": "A"})
    rest.post("/api/v1/categories?categoryId=cat_b", {"name": "B"})
    rest.post("/api/v1/categories/cat_a/sub-categories?subCategoryId=sub_a1", {"name": "A1"})

    for method in ("GET", "PUT", "DELETE"):
        answer = rest.call(method, "/api/v1/categories/cat_b/sub-categories/sub_a1", {"name": "x"})
        assert answer.status == 404, (method, answer.body)
    assert rest.get("/api/v1/categories/cat_a/sub-categories/sub_a1").body["name"] == "A1"


def test_a_bad_caller_chosen_id_is_400_naming_the_query_parameter(rest: RestClient) -> None:
    answer = rest.post("/api/v1/categories?categoryId=Not-An-Id", {"name": "Bad"})

    assert answer.status == 400
    assert "categoryId" in answer.violations()


def test_contact_policies_take_lowercase_words_and_a_rule_key_replaces_the_rule(rest: RestClient) -> None:
    created = rest.post(
        "/api/v1/contact-policies",
        {"name": "three a day", "scope": "global", "frequencyCap": {"maxPerDay": 3}},
    )
    assert created.status == 201, created.body
    policy = created.body
    assert policy["scope"] == "global" and policy["status"] == "active"
    assert policy["frequencyCap"] == {"maxPerDay": 3}

    updated = rest.patch(f"/api/v1/contact-policies/{policy['id']}", {"cooldown": {"minHours": 12}})
    assert updated.status == 200, updated.body
    assert updated.body["cooldown"] == {"minHours": 12} and "frequencyCap" not in updated.body

    both = rest.post(
        "/api/v1/contact-policies",
        {"name": "two rules", "scope": "global", "frequencyCap": {"maxPerDay": 1}, "cooldown": {"minHours": 1}},
    )
    assert both.status == 400
    assert "cooldown" in both.violations()
    assert rest.delete(f"/api/v1/contact-policies/{policy['id']}").status == 204


def test_tenant_settings_read_and_change(rest: RestClient, tenant: str) -> None:
    assert rest.get("/api/v1/tenant/settings").body["tenantId"] == tenant

    answer = rest.put("/api/v1/tenant/settings", {"timezone": "Europe/Paris"})

    assert answer.status == 200
    assert answer.body["timezone"] == "Europe/Paris"
    bad = rest.put("/api/v1/tenant/settings", {"timezone": "Mars/Olympus"})
    assert bad.status == 400 and "timezone" in bad.violations()


def test_api_keys_are_created_once_with_their_secret_listed_without_it_and_revoked(rest: RestClient) -> None:
    created = rest.post("/api/v1/api-keys", {"name": "ci", "role": "decide"})
    assert created.status == 201, created.body
    key = created.body["apiKey"]
    assert created.body["secret"].startswith("arb_") and key["role"] == "decide"
    assert created.headers["location"] == f"/api/v1/api-keys/{key['id']}"

    listed = rest.get("/api/v1/api-keys").body["data"]
    assert [k["id"] for k in listed] == [key["id"]] and "secret" not in listed[0]
    revoked = rest.delete(f"/api/v1/api-keys/{key['id']}")
    assert revoked.status == 200 and "revokedAt" in revoked.body


# --- decide and outcomes ----------------------------------------------------------------------------------


def test_decide_takes_the_decide_request_in_camel_case_and_explains_each_candidate(rest: RestClient) -> None:
    shown = _create(rest, status="active", priority="high")
    gated = _create(rest, status="active", qualification={"requiredSegments": ["vip"]})

    answer = rest.post("/api/v1/decide", {"customerId": "c1", "explain": True, "dryRun": True, "limit": 3})

    assert answer.status == 200, answer.body
    body = answer.body
    assert body["decisionId"].startswith("dec_") and RFC3339_UTC.match(body["decisionTime"])
    assert [o["offerId"] for o in body["offers"]] == [shown["id"]]
    assert body["offers"][0]["rank"] == 1 and body["offers"][0]["priorityScore"] == 70
    fates = {c["offerId"]: c for c in body["candidates"]}
    assert fates[shown["id"]]["selected"] is True
    assert fates[gated["id"]]["reason"] == "missing_segments" and "vip" in fates[gated["id"]]["message"]


def test_an_outcome_with_an_idempotency_key_header_is_recorded_once(rest: RestClient) -> None:
    offer = _create(rest, status="active")
    outcome = {"customerId": "c1", "offerId": offer["id"], "type": "click"}

    first = rest.post("/api/v1/outcomes", outcome, headers={"Idempotency-Key": "k-1"})
    again = rest.post("/api/v1/outcomes", outcome, headers={"Idempotency-Key": "k-1"})

    assert first.status == 200 and first.body["status"] == "recorded"
    assert again.status == 200 and again.body["status"] == "duplicate"
    assert again.body["outcomeId"] == first.body["outcomeId"]


def test_an_idempotency_key_header_that_differs_from_the_body_is_400(rest: RestClient) -> None:
    offer = _create(rest, status="active")
    outcome = {"customerId": "c1", "offerId": offer["id"], "type": "click", "idempotencyKey": "body-key"}

    answer = rest.post("/api/v1/outcomes", outcome, headers={"Idempotency-Key": "header-key"})

    assert answer.status == 400
    assert "idempotencyKey" in answer.violations()


def test_bulk_outcomes_answer_per_item_results_and_one_bad_item_rejects_the_batch(rest: RestClient) -> None:
    offer = _create(rest, status="active")
    good = {"customerId": "c1", "offerId": offer["id"], "type": "impression", "idempotencyKey": "i-1"}

    recorded = rest.post(
        "/api/v1/outcomes", {"outcomes": [good, {**good, "customerId": "c2", "idempotencyKey": "i-2"}]}
    )
    assert recorded.status == 200, recorded.body
    assert [r["status"] for r in recorded.body["results"]] == ["recorded", "recorded"]

    refused = rest.post(
        "/api/v1/outcomes", {"outcomes": [{**good, "idempotencyKey": "i-3"}, {**good, "type": "stared"}]}
    )
    assert refused.status == 400
    assert "outcomes[1].type" in refused.violations()
    assert rest.get(f"{ACTIONS}/{offer['id']}/stats").body["lifetimeImpressions"] == 2


def test_a_single_outcome_names_its_fields_without_a_prefix(rest: RestClient) -> None:
    bad = rest.post("/api/v1/outcomes", {"customerId": "c1", "offerId": "act_1", "idempotencyKey": "i-1"})

    assert bad.status == 400
    assert set(bad.violations()) == {"type"}


# --- both doors, one core ---------------------------------------------------------------------------------


def test_a_rest_write_is_seen_by_the_next_grpc_decide(rest: RestClient, client: Client) -> None:
    offer = _create(rest, status="active")

    decided = client.decide("c1", explain=True)

    assert [o.offer_id for o in decided.offers] == [offer["id"]]
    paused = rest.patch(f"{ACTIONS}/{offer['id']}", {"status": "paused"})
    assert paused.status == 200
    assert list(client.decide("c1").offers) == []


def test_a_grpc_write_is_seen_by_the_next_rest_read(rest: RestClient, client: Client) -> None:
    created = client.create_offer({"name": unique_name(), "priority": "critical"})

    read = rest.get(f"{ACTIONS}/{created.id}")

    assert read.status == 200 and read.body["priority"] == "critical"
    client.update_offer({"id": created.id, "shortDesc": "changed over gRPC"}, update_mask=["short_desc"])
    assert rest.get(f"{ACTIONS}/{created.id}").body["shortDesc"] == "changed over gRPC"


# --- bad input: a 4xx naming the problem, never a 500, nothing written ------------------------------------


def _nothing_written(rest: RestClient) -> bool:
    return rest.get(ACTIONS).body["data"] == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": 3}, "name", "must be a string"),
        ({"name": "x", "priority": "urgent"}, "priority", "low, medium, high, critical"),
        ({"name": "x", "status": "live"}, "status", "draft, active, paused, archived"),
        ({"name": "x", "colour": "red"}, "colour", "unknown field"),
        ({"name": "x", "budget": {"maxImpressions": 1.5}}, "budget.maxImpressions", "whole number"),
        ({"name": "x", "budget": {"maxImpressions": 2**70}}, "budget.maxImpressions", "between"),
        ({"name": "x", "budget": {"maxDailyBudget": "100"}}, "budget.maxDailyBudget", "must be a number"),
        ({"name": "x", "mandatory": "yes"}, "mandatory", "true or false"),
        ({"name": "x", "tags": "a,b"}, "tags", "must be a list"),
        ({"name": "x", "tags": ["a", 2]}, "tags[1]", "must be a string"),
        ({"name": "x", "schedule": {"startDate": "15/03/2026"}}, "schedule.startDate", "RFC 3339"),
        ({"name": "x", "schedule": []}, "schedule", "JSON object"),
        ({"name": "x", "qualification": {"propensityThreshold": 1.5}}, "qualification.propensityThreshold", "0"),
    ],
)
def test_a_bad_create_body_is_400_naming_the_field(rest: RestClient, body: Any, field: str, words: str) -> None:
    answer = rest.post(ACTIONS, body)

    assert answer.status == 400, answer.body
    assert answer.error["status"] == "INVALID_ARGUMENT"
    violations = answer.violations()
    assert field in violations, violations
    assert words in violations[field]
    assert _nothing_written(rest)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"name": ', "not valid JSON"),
        (b'{"name": NaN}', "not valid JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(rest: RestClient, raw: bytes, words: str) -> None:
    answer = rest.post(ACTIONS, raw=raw, headers={"Content-Type": "application/json"})

    assert answer.status == 400
    assert words in answer.violations()["body"]
    assert _nothing_written(rest)


def test_free_form_objects_nested_too_deeply_are_400(rest: RestClient) -> None:
    deep: Any = 1
    for _ in range(40):
        deep = {"d": deep}

    answer = rest.post("/api/v1/decide", {"customerId": "c1", "attributes": deep})

    assert answer.status == 400
    assert any(field.startswith("attributes") for field in answer.violations())


def test_a_body_without_the_json_content_type_is_415(rest: RestClient) -> None:
    answer = rest.post(ACTIONS, raw=b'{"name": "x"}', headers={"Content-Type": "text/plain"})

    assert answer.status == 415
    assert "application/json" in answer.error["message"]
    assert _nothing_written(rest)


def test_an_unknown_query_parameter_is_400_naming_it(rest: RestClient) -> None:
    answer = rest.get(f"{ACTIONS}?colour=red")

    assert answer.status == 400
    assert "colour" in answer.violations()


def test_a_bad_enum_word_in_the_query_lists_the_allowed_words(rest: RestClient) -> None:
    answer = rest.get(f"{ACTIONS}?status=live")

    assert answer.status == 400
    assert "draft, active, paused, archived" in answer.violations()["status"]


def test_unknown_routes_and_methods_answer_in_the_error_shape(rest: RestClient) -> None:
    missing = rest.get("/api/v1/nothing-here")
    wrong = rest.call("PUT", "/api/v1/decide", {})

    assert missing.status == 404 and missing.error["status"] == "NOT_FOUND"
    assert wrong.status == 405 and "POST" in wrong.headers["allow"]


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "small.db", ["--max-message-bytes", "2048"], http=True) as process:
        yield process


def test_a_body_larger_than_max_message_bytes_is_413_and_the_server_keeps_serving(
    small_server: ServerProcess,
) -> None:
    rest = RestClient(small_server.http_url, tenant="t-" + uuid.uuid4().hex[:8])

    answer = rest.post(ACTIONS, {"name": "x", "shortDesc": "y" * 5000})

    assert answer.status == 413
    assert "2048" in answer.error["message"]
    assert rest.post(ACTIONS, {"name": "small"}).status == 201


def test_answers_are_json_numbers_never_strings_for_64_bit_integers(rest: RestClient) -> None:
    offer = _create(rest, budget={"maxImpressions": 2**40})

    assert json.loads(rest.get(f"{ACTIONS}/{offer['id']}").raw)["budget"]["maxImpressions"] == 2**40


def test_an_empty_query_value_means_not_given(rest: RestClient) -> None:
    offer = _create(rest)

    answer = rest.get(f"{ACTIONS}?status=&categoryId=&limit=")

    assert answer.status == 200, answer.body
    assert [o["id"] for o in answer.body["data"]] == [offer["id"]]


def test_put_accepts_the_seeds_create_body_as_it_is(seeded: RestClient) -> None:
    offer = seeded.post(ACTIONS, seed_body()).body
    body = seed_body()
    body["shortDesc"] = "the same body, one key changed"

    answer = seeded.put(f"{ACTIONS}/{offer['id']}", body)

    assert answer.status == 200, answer.body
    assert answer.body["shortDesc"] == "the same body, one key changed"
    assert {k: v for k, v in answer.body.items() if k not in ("shortDesc", "updatedAt")} == {
        k: v for k, v in offer.items() if k not in ("shortDesc", "updatedAt")
    }
