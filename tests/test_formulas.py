"""The formula language: parsing, checking, evaluation, null rules and hostile input (unit, no I/O)."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from arbiter.server.domain.formulas import (
    MAX_DEPTH,
    MAX_FORMULA_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_TOKENS,
    ComputedField,
    FormulaError,
    Scope,
    compile_formula,
    evaluate,
    order_computed_fields,
    round_half_away,
)

FIELDS = frozenset({"base_rate", "fee", "tier", "flag", "a", "b", "c"})


def run(source: str, fields: dict[str, Any] | None = None, customer: dict[str, Any] | None = None) -> Any:
    offer = {"id": "act_1", "name": "Gold", "priority": 70.0, "categoryId": "cat_cards", "tags": ["x", "y"]}
    return evaluate(compile_formula(source, FIELDS), Scope(fields or {}, customer or {}, offer))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("10 - 4 - 3", 3.0),  # left associative
        ("64 / 4 / 2", 8.0),  # left associative
        ("-2 * 3", -6.0),
        ("- - 2", 2.0),
        ("2 * -3", -6.0),
        ("1 + 2 < 4", True),  # arithmetic binds tighter than comparison
        ("1 < 2 and 2 < 1", False),
        ("1 < 2 or 2 < 1 and false", True),  # and binds tighter than or
        ("not 1 < 2", False),  # comparison binds tighter than not
        ("not true or true", True),  # not binds tighter than or
        ("true ? 1 : 2", 1.0),
        ("false ? 1 : true ? 2 : 3", 2.0),  # the conditional associates right
        ("1 < 2 ? 10 : 20", 10.0),
        ('1 + 1 == 2 ? "yes" : "no"', "yes"),
    ],
)
def test_precedence_and_associativity(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("min(3, 1, 2)", 1.0),
        ("max(3, 1, 2)", 3.0),
        ("min(5)", 5.0),
        ("abs(-4.5)", 4.5),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),  # half away from zero
        ("round(0.5)", 1.0),
        ("round(2.4)", 2.0),
        ("round(1.005, 2)", 1.01),
        ("round(17.98995, 2)", 17.99),
        ("round(1234.5678, 1)", 1234.6),
        ("coalesce(null, 2, 3)", 2.0),
        ('coalesce(customer.missing, "x")', "x"),
        ("coalesce(null, null)", None),
        ('concat("a", "b", "c")', "abc"),
        ('concat("n=", 3, " f=", 2.5, " b=", true)', "n=3 f=2.5 b=true"),
        ("concat(offer.tags)", "x, y"),
    ],
)
def test_every_function(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "customer.missing + 1",
        "1 - null",
        "null * 2",
        "-null",
        "1 / 0",
        "0 / 0",
        "min(1, null)",
        "max(null)",
        "abs(null)",
        "round(null)",
        "round(1.5, null)",
        "round(1.5, 1.5)",
        'concat("a", null)',
        "null < 1",
        "null == null",
        '"a" + "b"',  # + does not join strings
        '"3" * 2',
        "true + 1",
        'abs("x")',
        "1e308 * 10",  # overflow is null, not infinity
    ],
)
def test_null_propagates_and_problems_are_null(source: str) -> None:
    assert run(source) is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("null ? 1 : 2", 2.0),  # null is false in a condition
        ("customer.missing ? 1 : 2", 2.0),
        ("null and true", False),
        ("null or true", True),
        ("not null", True),
        ("1 ? 1 : 2", 2.0),  # only true is true
    ],
)
def test_null_is_false_in_conditions(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"abc" == "abc"', True),
        ('"abc" != "abd"', True),
        ('"abc" < "abd"', True),
        ('"b" >= "a"', True),
        ('"3" == 3', False),  # different types are never equal
        ('"3" != 3', True),
        ('"3" < 3', None),  # and have no order
        ("true == true", True),
        ("true < false", None),
        ("2 <= 2", True),
        ("2 > 3", False),
        ('concat("say \\"hi\\"", "\\\\")', 'say "hi"\\'),
        ('"tab\\there"', "tab\there"),
    ],
)
def test_strings_and_comparisons(source: str, expected: Any) -> None:
    assert run(source) == expected


def test_names_resolve_in_their_namespaces() -> None:
    fields = {"base_rate": 19.99, "tier": "gold", "flag": True}
    assert run("base_rate", fields) == 19.99
    assert run('tier == "gold" and flag', fields) is True
    assert run("customer.loyalty_score", customer={"loyalty_score": 10}) == 10.0
    assert run("offer.priority / 10") == 7.0
    assert run('concat(offer.id, "/", offer.name, "/", offer.categoryId)') == "act_1/Gold/cat_cards"
    assert run("customer.profile", customer={"profile": {"a": 1}}) is None  # objects mean nothing here


def test_the_issue_example_personalises_the_rate() -> None:
    formula = compile_formula("base_rate * (1 - customer.loyalty_score * 0.01)", {"base_rate"})
    with_score = evaluate(formula, Scope({"base_rate": 19.99}, {"loyalty_score": 10}, {}))
    assert isinstance(with_score, float)
    assert round(with_score, 2) == 17.99
    assert evaluate(formula, Scope({"base_rate": 19.99}, {}, {})) is None


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("pow(2, 3)", "unknown function 'pow'", 1),
        ("1 + pow(2, 3)", "unknown function 'pow'", 5),
        ("base_rate + unknown_field", "unknown name 'unknown_field'", 13),
        ("offer.price", "unknown name 'offer.price'", 1),
        ("os.system", "unknown namespace 'os'", 1),
        ("customer.__class__.__name__", "unexpected '.'", 19),
        ("__import__", "unknown name '__import__'", 1),
        ("1 +", "unexpected end of formula", 4),
        ("(1 + 2", "expected ')'", 7),
        ("1 2", "unexpected '2'", 3),
        ("1 < 2 < 3", "comparisons do not chain", 7),
        ("true ? 1", "expected ':' of the conditional", 9),
        ('"open', "unterminated string", 1),
        ("1 $ 2", "unexpected character '$'", 3),
        ("abs(1, 2)", "function 'abs' takes 1 argument, got 2", 1),
        ("round()", "function 'round' takes 1 to 2 arguments, got 0", 1),
        ("min()", "function 'min' takes at least 1 argument, got 0", 1),
        ('"bad \\q escape"', "unknown escape \\q", 6),
    ],
)
def test_bad_formulas_are_errors_with_a_position(source: str, message: str, column: int) -> None:
    with pytest.raises(FormulaError) as caught:
        compile_formula(source, FIELDS)
    assert message in caught.value.reason
    assert caught.value.column == column
    assert f"at column {column}" in str(caught.value)


def test_empty_formula_is_an_error() -> None:
    with pytest.raises(FormulaError, match="empty"):
        compile_formula("   ", FIELDS)


def test_five_thousand_nested_parentheses_are_a_clean_error() -> None:
    with pytest.raises(FormulaError, match="limit is"):
        compile_formula("(" * 5000 + "1" + ")" * 5000, FIELDS)


def test_nesting_beyond_the_depth_limit_is_refused_before_python_recursion() -> None:
    depth = MAX_DEPTH + 1
    assert depth * 2 + 1 < MAX_FORMULA_LENGTH  # short enough that only depth can refuse it
    with pytest.raises(FormulaError, match="nests deeper"):
        compile_formula("(" * depth + "1" + ")" * depth, FIELDS)
    with pytest.raises(FormulaError, match="nests deeper"):
        compile_formula("-" * depth + "1", FIELDS)
    with pytest.raises(FormulaError, match="nests deeper"):
        compile_formula("not " * depth + "true", FIELDS)
    fine = MAX_DEPTH - 1
    assert run("(" * fine + "1" + ")" * fine) == 1.0


def test_token_and_length_limits() -> None:
    with pytest.raises(FormulaError, match="tokens"):
        compile_formula("+".join(["1"] * (MAX_TOKENS // 2 + 1)), FIELDS)
    with pytest.raises(FormulaError, match="characters long"):
        compile_formula("1" + " " * MAX_FORMULA_LENGTH, FIELDS)


def test_computed_fields_evaluate_in_dependency_order_and_cycles_are_refused() -> None:
    keys = {"base_rate", "rate", "label"}
    label = ComputedField("label", compile_formula('concat("APR ", rate, "%")', keys), "text")
    rate = ComputedField("rate", compile_formula("round(base_rate * 0.9, 2)", keys), "number")
    ordered = order_computed_fields([label, rate])
    assert [f.key for f in ordered.fields] == ["rate", "label"]
    values, steps = ordered.evaluate({"base_rate": 20.0}, {}, {})
    assert values == {"rate": 18.0, "label": "APR 18%"}
    assert steps == rate.formula.node_count + label.formula.node_count

    a = ComputedField("a", compile_formula("b + 1", {"a", "b"}), "number")
    b = ComputedField("b", compile_formula("a + 1", {"a", "b"}), "number")
    with pytest.raises(FormulaError, match="cycle: a -> b -> a"):
        order_computed_fields([a, b])


def test_a_result_of_the_wrong_output_type_is_null() -> None:
    keys = {"x"}
    as_number = order_computed_fields([ComputedField("x", compile_formula('"text"', keys), "number")])
    assert as_number.evaluate({}, {}, {})[0] == {"x": None}
    as_text = order_computed_fields([ComputedField("x", compile_formula("1 < 2", keys), "text")])
    assert as_text.evaluate({}, {}, {})[0] == {"x": None}


def test_round_half_away_from_zero_with_digits() -> None:
    assert round_half_away(0.125, 2) == 0.13
    assert round_half_away(-0.125, 2) == -0.13
    assert round_half_away(2.675, 2) == 2.68  # the decimal written, not the binary approximation


# -- hostile input -------------------------------------------------------------------

_ATOMS = [
    "1",
    "2.5",
    "0",
    "1e3",
    '"s"',
    '"',
    "true",
    "false",
    "null",
    "base_rate",
    "fee",
    "customer.x",
    "offer.id",
    "offer.tags",
    "offer.zzz",
    "nope",
    "x.y",
    "min",
    "max",
    "round",
    "abs",
    "coalesce",
    "concat",
    "pow",
    "+",
    "-",
    "*",
    "/",
    "(",
    ")",
    "?",
    ":",
    ",",
    ".",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "not",
    "$",
    "\\",
    "'",
    "\n",
    " ",
    "__class__",
    "import",
    "[",
    "]",
    "{",
    "}",
]


@given(
    st.lists(st.sampled_from(_ATOMS), max_size=60),
    st.dictionaries(
        st.sampled_from(["x", "base_rate"]),
        st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=5), st.booleans()),
        max_size=2,
    ),
)
def test_token_soup_only_ever_raises_formula_error(atoms: list[str], customer: dict[str, Any]) -> None:
    source = " ".join(atoms)
    try:
        formula = compile_formula(source, FIELDS)
    except FormulaError as exc:
        column = exc.column
        assert 0 <= column <= len(source) + 1
        return
    # Deterministic bounds, as counts: input length, nesting depth, evaluation steps.
    assert len(source) <= MAX_FORMULA_LENGTH
    assert formula.depth <= MAX_TOKENS
    scope = Scope({"base_rate": 19.99, "fee": None}, customer, {"id": "act_1", "tags": ["a"]})
    value = evaluate(formula, scope)
    assert scope.steps <= formula.node_count <= MAX_TOKENS
    assert value is None or isinstance(value, (str, bool, list)) or math.isfinite(value)


@given(st.text(max_size=80))
def test_arbitrary_text_only_ever_raises_formula_error(source: str) -> None:
    try:
        formula = compile_formula(source, FIELDS)
    except FormulaError:
        return
    scope = Scope({}, {}, {})
    evaluate(formula, scope)
    assert scope.steps <= formula.node_count


# -- outside string literals a formula is ASCII -------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "character", "column"),
    [
        ("١٢ + 1", "١", 1),  # Arabic-Indic twelve, which float() reads as 12
        ("1 + ۳", "۳", 5),  # Persian three
        ("１２", "１", 1),  # fullwidth digits
        ("1٢", "٢", 2),  # a number that starts in ASCII
        ("2.5e٣", "٣", 5),  # an exponent in another script
        ("1\u00a0+ 1", "\u00a0", 2),  # no-break space
        ("ｂase_rate", "ｂ", 1),  # fullwidth letter
        ("customer.ñame", "ñ", 10),
    ],
)
def test_digits_names_and_spaces_outside_strings_are_ascii(source: str, character: str, column: int) -> None:
    with pytest.raises(FormulaError) as caught:
        compile_formula(source, FIELDS)
    assert caught.value.reason == f"unexpected character {character!r}"
    assert caught.value.column == column


def test_string_literals_keep_any_script() -> None:
    assert run('concat("١٢ ", "Café ", 12)') == "١٢ Café 12"


_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')


@given(st.text(alphabet='0123456789١٢۳１２٠.eE+-*() \u00a0\u2003abc_"', max_size=24))
@example("١٢ + 1")
def test_an_accepted_formula_is_ascii_outside_its_strings(source: str) -> None:
    try:
        compile_formula(source, {"a", "b", "c", "abc"})
    except FormulaError:
        return
    assert _STRING_LITERAL.sub("", source).isascii()


# -- text values are capped, so evaluation memory is bounded -------------------------------------------------

LONG = "x" * (MAX_TEXT_LENGTH + 1)


def test_concat_up_to_the_cap_is_text_and_past_it_is_null() -> None:
    half = "y" * (MAX_TEXT_LENGTH // 2)
    assert run("concat(customer.h, customer.h)", customer={"h": half}) == half * 2
    assert run("concat(customer.h, customer.h, 1)", customer={"h": half}) is None
    assert run('concat(customer.h, customer.h) == ""', customer={"h": half + "z"}) is None  # an intermediate


def test_text_read_from_a_name_past_the_cap_is_null() -> None:
    assert run("customer.s", customer={"s": LONG}) is None
    assert run('coalesce(customer.s, "short")', customer={"s": LONG}) == "short"
    assert run("tier", fields={"tier": LONG}) is None
    assert run("customer.s", customer={"s": LONG[1:]}) == LONG[1:]


def test_a_string_literal_past_the_cap_is_refused_when_written() -> None:
    with pytest.raises(FormulaError, match=f"text is {MAX_TEXT_LENGTH + 1} characters long"):
        compile_formula(f'"{LONG}"', FIELDS)


def test_concat_of_lists_stops_at_the_cap_and_refuses_nulls_and_objects() -> None:
    assert run("concat(customer.l)", customer={"l": ["a", 1.0, True, ["b", 2.5]]}) == "a, 1, true, b, 2.5"
    assert run("concat(customer.l)", customer={"l": [""] * 1_000_000}) is None  # 999,999 separators
    assert run("concat(customer.l)", customer={"l": [[]] * 400}) == ", " * 399
    assert run("concat(customer.l)", customer={"l": ["a", None]}) is None
    assert run("concat(customer.l)", customer={"l": ["a", {"k": "v" * 10_000}]}) is None


def test_chained_concat_fields_stay_within_the_cap() -> None:
    # The issue's case: each field multiplies the one before it; every text stays capped.
    keys = {"a", "b", "c"}
    six = ", ".join
    a = ComputedField("a", compile_formula(f"concat({six(['customer.x'] * 6)})", keys), "text")
    b = ComputedField("b", compile_formula(f"concat({six(['a'] * 6)})", keys), "text")
    c = ComputedField("c", compile_formula(f"concat({six(['b'] * 6)})", keys), "text")
    fields = order_computed_fields([c, b, a])
    assert fields.evaluate({}, {"x": "12345"}, {})[0] == {"a": "12345" * 6, "b": "12345" * 36, "c": None}
    assert fields.evaluate({}, {"x": "z" * 200}, {})[0] == {"a": None, "b": None, "c": None}


_TEXT_ATOMS = st.sampled_from(["customer.s", "customer.t", "customer.l", "tier", '"ab"', "1", "true", "null"])


def _concats(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    call = st.lists(children, min_size=1, max_size=5).map(lambda args: f"concat({', '.join(args)})")
    coalesce = st.lists(children, min_size=1, max_size=3).map(lambda args: f"coalesce({', '.join(args)})")
    choice = st.tuples(children, children).map(lambda ab: f"(true ? {ab[0]} : {ab[1]})")
    return call | coalesce | choice


@given(
    st.recursive(_TEXT_ATOMS, _concats, max_leaves=40),
    st.text(max_size=300),
    st.integers(0, 3 * MAX_TEXT_LENGTH),
    st.lists(st.text(max_size=50), max_size=100),
)
@example("customer.t", "", 3 * MAX_TEXT_LENGTH, [])
@example("concat(customer.s, customer.s, tier, tier)", "s" * 300, 0, [])
@example("concat(customer.l)", "", 0, ["item" * 10] * 30)
def test_no_text_value_in_an_evaluation_passes_the_cap(source: str, s: str, t_length: int, items: list[str]) -> None:
    try:
        formula = compile_formula(source, FIELDS)
    except FormulaError:
        return  # too long or too many tokens: refused, never evaluated
    scope = Scope({"tier": s * 4}, {"s": s, "t": "t" * t_length, "l": items}, {})
    value = evaluate(formula, scope)
    assert not isinstance(value, str) or len(value) <= MAX_TEXT_LENGTH
