"""The one name rule, and that offers, categories, sub-categories and policies all follow it (unit, no I/O)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbiter.server.domain.catalog import (
    Category,
    CategoryStatus,
    SubCategory,
    sub_category_violations,
    validate_category,
)
from arbiter.server.domain.errors import InvalidArgument
from arbiter.server.domain.names import MAX_NAME_LENGTH, name_problem
from arbiter.server.domain.offer_rules import validate_offer
from arbiter.server.domain.offers import Offer, OfferStatus, Priority
from arbiter.server.domain.policies import BudgetExhausted, ContactPolicy, PolicyScope, PolicyStatus, validate_policy

# Characters a name cannot be made of alone: controls, spaces of every script, invisible format characters.
BLANK = st.characters(categories=["Cc", "Zs", "Zl", "Zp", "Cf"]) | st.sampled_from("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85")


@pytest.mark.parametrize(
    "name",
    ["\x00", "\x00\x00\x00\x00", " ", " \t\n", "\u3000", "\u200b\u200d", "\x7f", "\x9f", "Gold\x00card", "Gold\n"],
)
def test_names_of_controls_or_blanks_and_names_holding_controls_are_refused(name: str) -> None:
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["Gold card", "Café", "\u0661\u0662 offer", "👩\u200d💻 Devs", "x" * MAX_NAME_LENGTH])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert name_problem(name) is None


def test_messages_say_what_to_change() -> None:
    assert name_problem("") == "is required"
    assert name_problem("x" * (MAX_NAME_LENGTH + 1)) == f"must be at most {MAX_NAME_LENGTH} characters, got 256"
    assert name_problem("ab\x00") == "must not contain control characters: U+0000 at position 3"
    assert name_problem("  ") == "is required and must not be only whitespace or invisible characters"


@given(st.text(BLANK, min_size=1, max_size=20))
def test_no_name_made_only_of_blanks_is_accepted(name: str) -> None:
    assert name_problem(name) is not None


@given(st.text(max_size=40))
def test_an_accepted_name_has_a_visible_character_and_no_control(name: str) -> None:
    if name_problem(name) is None:
        assert 0 < len(name) <= MAX_NAME_LENGTH
        assert not any(unicodedata.category(c) == "Cc" for c in name)
        assert any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf") for c in name)


NUL = "\x00\x00\x00"


def test_offers_categories_sub_categories_and_policies_share_the_rule() -> None:
    offer = Offer(name=NUL, priority=Priority.MEDIUM, status=OfferStatus.DRAFT)
    assert [v.field for v in validate_offer(offer)] == ["name"]
    with pytest.raises(InvalidArgument) as caught:
        validate_category(Category(name=NUL, status=CategoryStatus.ACTIVE))
    assert [v.field for v in caught.value.violations] == ["name"]
    assert [v.field for v in sub_category_violations(SubCategory(name=NUL))] == ["name"]
    policy = ContactPolicy(name=NUL, status=PolicyStatus.ACTIVE, scope=PolicyScope.GLOBAL, rule=BudgetExhausted())
    assert [v.field for v in validate_policy(policy).violations] == ["name"]
    expected = name_problem(NUL)
    assert {v.description for v in validate_offer(offer)} == {expected}
    assert {v.description for v in validate_policy(policy).violations} == {expected}
