"""A category's computed fields are bounded: count, token budget and text cap (unit, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbiter.server.domain.catalog import (
    FIELD_KEY_PATTERN,
    Category,
    CategoryStatus,
    FieldDefinition,
    FieldType,
    OutputType,
    compile_category,
    validate_category,
)
from arbiter.server.domain.errors import InvalidArgument
from arbiter.server.domain.formulas import MAX_COMPUTED_FIELDS, MAX_TEXT_LENGTH, MAX_TOKENS, tokenize
from arbiter.server.domain.names import MAX_NAME_LENGTH
from arbiter.server.domain.offer_rules import MAX_SHORT_DESC_LENGTH, MAX_TAG_LENGTH, MAX_TAGS
from arbiter.v1 import decisions_pb2

CLIENT_RECEIVE_LIMIT = 4 * 1024 * 1024  # grpc's default max_receive_message_length
LIMIT = 50  # the most offers one Decide returns


def computed(key: str, formula: str, output: OutputType = OutputType.NUMBER) -> FieldDefinition:
    return FieldDefinition(key=key, type=FieldType.COMPUTED, formula=formula, output_type=output)


def category(*fields: FieldDefinition, name: str = "Cards") -> Category:
    base = FieldDefinition(key="rate", type=FieldType.NUMBER)
    return Category(name=name, status=CategoryStatus.ACTIVE, custom_fields=(base, *fields))


def tokens(formula: str) -> int:
    return len(tokenize(formula)) - 1


def sum_of(n: int) -> str:
    """A formula of exactly n tokens (n odd): 1 + 1 + ... + 1."""
    assert n % 2 == 1
    return " + ".join(["1"] * ((n + 1) // 2))


def violations(cat: Category) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate_category(cat)
    return {v.field: v.description for v in caught.value.violations}


def test_the_formulas_of_a_category_share_one_token_budget() -> None:
    # 12 fields: 11 of 13 tokens and one with the rest make exactly the budget.
    rest = MAX_TOKENS - 11 * 13
    exact = [computed(f"c{i}", sum_of(13)) for i in range(11)] + [computed("c11", sum_of(rest))]
    assert sum(tokens(f.formula) for f in exact) == MAX_TOKENS
    assert len(validate_category(category(*exact)).fields) == 12

    over = [*exact[:-1], computed("c11", sum_of(rest + 2))]
    assert violations(category(*over)) == {
        "customFields[12].formula": f"has {rest + 2} tokens, which brings the category's formulas to "
        f"{MAX_TOKENS + 2}; all the formulas of a category may have at most {MAX_TOKENS} tokens together"
    }


def test_at_most_twelve_computed_fields() -> None:
    fields = [computed(f"c{i}", "rate") for i in range(MAX_COMPUTED_FIELDS + 1)]
    assert violations(category(*fields)) == {
        "customFields": f"must hold at most {MAX_COMPUTED_FIELDS} computed fields, got {MAX_COMPUTED_FIELDS + 1}"
    }
    assert len(validate_category(category(*fields[:-1])).fields) == MAX_COMPUTED_FIELDS


def test_the_issues_ninety_nine_long_formulas_are_refused() -> None:
    long = " + ".join(["rate * 2"] * 80)  # 319 tokens, within the old 500 per formula
    found = violations(category(*(computed(f"c{i}", long) for i in range(99))))
    assert found["customFields"] == f"must hold at most {MAX_COMPUTED_FIELDS} computed fields, got 99"
    assert found["customFields[1].formula"].startswith(f"formula has more than {MAX_TOKENS} tokens")


@given(st.lists(st.integers(1, 60), min_size=1, max_size=MAX_COMPUTED_FIELDS))
def test_an_accepted_category_costs_at_most_the_budget_per_offer(sizes: list[int]) -> None:
    fields = [computed(f"c{i}", sum_of(2 * size - 1)) for i, size in enumerate(sizes)]
    cat = category(*fields)
    try:
        compiled = validate_category(cat)
    except InvalidArgument:
        assert sum(2 * size - 1 for size in sizes) > MAX_TOKENS
        return
    _, steps = compiled.evaluate({"rate": 1.0}, {}, {})
    assert steps <= compiled.token_count <= MAX_TOKENS


def test_a_category_stored_over_the_limits_still_loads_with_the_rest_null() -> None:
    # Stored before the budget: 20 fields; "total" reads the first one, "bad" no longer compiles.
    fields = [computed("total", "c0 * 2"), computed("bad", "١٢ + 1")]
    fields += [computed(f"c{i}", sum_of(31)) for i in range(20)]
    stored = category(*fields, name="\x00")  # and a name the name rule now refuses
    compiled = compile_category(stored)
    fit = (MAX_TOKENS - 31 - 3) // 31  # after c0 (31 tokens) and total (3), fields of 31 tokens
    kept = [f.key for f in compiled.fields]
    assert kept == ["c0", "total"] + [f"c{i}" for i in range(1, fit + 1)]  # evaluation order, within budget
    values, _ = compiled.evaluate({}, {}, {})
    assert values["total"] == 32.0 and values[f"c{fit}"] == 16.0
    assert {key for key, value in values.items() if value is None} == {"bad"} | {f"c{i}" for i in range(fit + 1, 20)}
    assert len(values) == 22


def test_the_worst_decide_answer_fits_a_clients_default_receive_limit() -> None:
    # docs/rules.md has this arithmetic; here it is built, with 4-byte characters everywhere text is free.
    wide = "\U0001d11e"  # 4 bytes in UTF-8
    answer = decisions_pb2.DecideResponse(decision_id="dec_" + "f" * 16)
    answer.decision_time.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    for rank in range(1, LIMIT + 1):
        offer = answer.offers.add(
            rank=rank,
            offer_id="act_" + "f" * 16,
            name=wide * MAX_NAME_LENGTH,
            short_desc=wide * MAX_SHORT_DESC_LENGTH,
            score=0.1,
            propensity=0.1,
            propensity_source=decisions_pb2.PropensitySource.Value(decisions_pb2.PropensitySource.keys()[-1]),
            priority_score=90,
            mandatory=True,
            category_id=wide * 128,
            sub_category_id=wide * 128,
            tags=[wide * MAX_TAG_LENGTH] * MAX_TAGS,
        )
        for i in range(MAX_COMPUTED_FIELDS):
            key = (f"k{i}_" + "z" * 64)[:64]
            assert FIELD_KEY_PATTERN.match(key)
            offer.personalization[key] = wide * MAX_TEXT_LENGTH
    assert answer.ByteSize() <= CLIENT_RECEIVE_LIMIT
