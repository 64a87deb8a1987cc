"""Unit tests of the REST door's JSON <-> protobuf mapping and the update masks PUT bodies stand for."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from offer_builders import seed_body

from arbiter.server.transport.http.gateway import update_paths
from arbiter.server.transport.http.json_mapping import (
    enum_number,
    enum_words,
    message_from_json,
    message_to_json,
    number_to_json,
)
from arbiter.v1 import contact_policies_pb2, decisions_pb2, offers_pb2


def _offer(body: dict[str, Any]) -> tuple[offers_pb2.Offer, dict[str, str]]:
    message = offers_pb2.Offer()
    problems = message_from_json(body, message)
    return message, {p.field: p.description for p in problems}


def test_the_seed_body_round_trips_exactly() -> None:
    message, problems = _offer(seed_body())

    assert problems == {}
    out = message_to_json(message)
    assert {k: out[k] for k in seed_body()} == {**seed_body(), "schedule": {**seed_body()["schedule"], "timezone": ""}}


def test_enum_words_are_the_values_without_prefix_in_lowercase() -> None:
    priority = offers_pb2.Offer.DESCRIPTOR.fields_by_name["priority"].enum_type

    assert enum_words(priority) == ["low", "medium", "high", "critical"]
    assert enum_number(priority, "high") == offers_pb2.PRIORITY_HIGH
    assert enum_number(priority, "PRIORITY_HIGH") == offers_pb2.PRIORITY_HIGH
    assert enum_number(priority, "unspecified") is None
    assert enum_number(priority, "High") is None


def test_proto_json_spellings_are_accepted_too() -> None:
    message, problems = _offer({"short_desc": "x", "priority": "PRIORITY_LOW"})

    assert problems == {}
    assert message.short_desc == "x" and message.priority == offers_pb2.PRIORITY_LOW


def test_every_problem_is_reported_with_its_path() -> None:
    _, problems = _offer({"name": 1, "qualification": {"recency": "x", "nope": 1}, "tags": [1, "a", None]})

    assert set(problems) == {"name", "qualification.recency", "qualification.nope", "tags[0]", "tags[2]"}


def test_two_members_of_a_oneof_are_refused() -> None:
    message = contact_policies_pb2.ContactPolicy()

    problems = message_from_json({"cooldown": {"minHours": 1}, "frequencyCap": {"maxPerDay": 1}}, message)

    assert [p.field for p in problems] == ["frequencyCap"]


def test_maps_and_free_form_objects() -> None:
    message = decisions_pb2.DecideRequest()

    problems = message_from_json(
        {"offerPropensities": {"act_1": 0.5, "act_2": "high"}, "attributes": {"age": 40, "tier": ["a", 1.5]}},
        message,
    )

    assert [p.field for p in problems] == ["offerPropensities.act_2"]
    assert message_to_json(message)["attributes"] == {"age": 40, "tier": ["a", 1.5]}


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_whole_numbers_are_written_without_a_fraction_and_keep_their_value(value: float) -> None:
    written = number_to_json(value)

    assert written == value
    if value.is_integer() and abs(value) < 2**53:
        assert isinstance(written, int)


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"name": "x"}, ["name"]),
        ({"budget": {"maxImpressions": 1, "costPerAction": None}}, ["budget.maxImpressions", "budget.costPerAction"]),
        ({"budget": None}, ["budget"]),
        ({"schedule": {"timeWindow": {"start": "08:00"}}}, ["schedule.timeWindow.start"]),
        ({"customFields": {"fee": 1, "old": None}}, ["customFields.fee", "customFields.old"]),
        ({"tags": None, "id": "act_x", "createdAt": "2020-01-01T00:00:00Z"}, ["tags"]),
        ({"schedule": {"startDate": "2026-01-01T00:00:00Z"}}, ["schedule.startDate"]),
    ],
)
def test_a_merge_body_names_its_leaves(body: dict[str, Any], paths: list[str]) -> None:
    named, cleaned = update_paths(body, offers_pb2.Offer.DESCRIPTOR, ("id", "createdAt"))

    assert named == paths
    assert "id" not in cleaned and "createdAt" not in cleaned


def test_a_merge_body_drops_nulls_so_the_named_fields_are_unset() -> None:
    _, cleaned = update_paths(
        {"budget": {"maxImpressions": None, "costPerAction": 2}, "customFields": {"fee": None, "a": 1}, "tags": None},
        offers_pb2.Offer.DESCRIPTOR,
    )

    assert cleaned == {"budget": {"costPerAction": 2}, "customFields": {"a": 1}}


def test_a_oneof_key_names_the_oneof() -> None:
    named, _ = update_paths({"cooldown": {"minHours": 2}, "name": "x"}, contact_policies_pb2.ContactPolicy.DESCRIPTOR)

    assert named == ["rule", "name"]
