"""The formula language of computed fields: tokenizer, parser, checker, evaluator (domain layer).

    base_rate * (1 - customer.loyalty_score * 0.01)
    tier == "gold" ? concat("Hello ", customer.first_name) : "Hello"

Grammar, lowest precedence first (binary operators associate left; the
ternary associates right; comparisons do not chain):

    expr        := or_expr [ "?" expr ":" expr ]
    or_expr     := and_expr { "or" and_expr }
    and_expr    := not_expr { "and" not_expr }
    not_expr    := "not" not_expr | comparison
    comparison  := additive [ ("==" | "!=" | "<" | "<=" | ">" | ">=") additive ]
    additive    := term { ("+" | "-") term }
    term        := unary { ("*" | "/") unary }
    unary       := "-" unary | primary
    primary     := NUMBER | STRING | "true" | "false" | "null" | name | call | "(" expr ")"
    name        := IDENT [ "." IDENT ]          (bare: a custom field; customer.x; offer.x)
    call        := IDENT "(" [ expr { "," expr } ] ")"

A formula is parsed and checked once, when its category is written, into a
tree of nodes; evaluation walks the tree once (no loops, no recursion in the
language), so its cost is bounded by the node count, which is at most the
token count. A category's formulas share one token budget (MAX_TOKENS), and
no text value in an evaluation is longer than MAX_TEXT_LENGTH, so the work and
memory one offer's computed fields can cost are bounded whatever the request
holds. Nothing is ever handed to Python's eval or exec, and names resolve only
in the three documented namespaces.

Null rules: a missing value is null; arithmetic, comparison, min, max, abs,
round and concat on null give null; division by zero gives null; in a
condition (the ternary's test, and/or/not operands) null counts as false;
`coalesce` returns its first non-null argument. `+` adds numbers only. Text
longer than MAX_TEXT_LENGTH is null, whether read from a name or built by
concat.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MAX_FORMULA_LENGTH = 2_000
# Tokens of all of a category's formulas together (so of one formula too). Evaluation costs
# at most ~0.5 us a token here (nested calls, rounding near ties), so the computed fields of
# 50 offers cost at most ~4 ms of the event loop (docs/rules.md has the figures).
MAX_TOKENS = 150
# Computed fields per category, and characters in any text value of an evaluation: together
# they keep the largest Decide answer under a client's default 4 MiB (docs/rules.md).
MAX_COMPUTED_FIELDS = 12
MAX_TEXT_LENGTH = 1_000
MAX_DEPTH = 48
MAX_ROUND_DIGITS = 12
OFFER_NAMES = ("id", "name", "priority", "categoryId", "tags")
NAMESPACES = ("customer", "offer")

Value = float | str | bool | list[Any] | None


class FormulaError(ValueError):
    """A formula that cannot be accepted; `column` is 1-based (0 when it concerns the whole formula)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(f"{message} at column {column}" if column else message)
        self.reason = message
        self.column = column


# -- tokens -------------------------------------------------------------------

# Outside string literals a formula is ASCII: re.ASCII keeps \s from matching other spaces,
# and digits are spelled [0-9] because \d would take "١٢" (which float() reads as 12).
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|[-+*/<>()?:,.])
    """,
    re.VERBOSE | re.ASCII,
)
_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, string, ident, keyword, op, end
    text: str
    column: int


def tokenize(source: str) -> list[Token]:
    """The tokens of `source`, ending with an "end" token; raises FormulaError."""
    if len(source) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula is {len(source)} characters long; the limit is {MAX_FORMULA_LENGTH}")
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            if source[position] == '"':
                raise FormulaError("unterminated string", position + 1)
            raise FormulaError(f"unexpected character {source[position]!r}", position + 1)
        kind = match.lastgroup
        assert kind is not None
        text = match.group()
        if kind != "space":
            if kind == "ident" and text in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, text, position + 1))
            if len(tokens) > MAX_TOKENS:
                raise FormulaError(f"formula has more than {MAX_TOKENS} tokens", position + 1)
        position = match.end()
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


def _unquote(token: Token) -> str:
    out: list[str] = []
    body = token.text[1:-1]
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            escaped = _ESCAPES.get(body[i + 1])
            if escaped is None:
                raise FormulaError(f"unknown escape \\{body[i + 1]} in string", token.column + i + 1)
            out.append(escaped)
            i += 2
        else:
            out.append(char)
            i += 1
    text = "".join(out)
    if len(text) > MAX_TEXT_LENGTH:
        raise FormulaError(f"text is {len(text)} characters long; the limit is {MAX_TEXT_LENGTH}", token.column)
    return text


# -- syntax tree ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value
    column: int


@dataclass(frozen=True, slots=True)
class Name:
    namespace: str  # "" for a custom field of the offer
    key: str
    column: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    column: int


@dataclass(frozen=True, slots=True)
class Conditional:
    test: Node
    then: Node
    otherwise: Node
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Node, ...]
    column: int


Node = Literal | Name | Unary | Binary | Conditional | Call

# function -> (minimum arguments, maximum arguments or None for any)
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "min": (1, None),
    "max": (1, None),
    "round": (1, 2),
    "abs": (1, 1),
    "coalesce": (1, None),
    "concat": (1, None),
}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def accept(self, text: str) -> Token | None:
        token = self.current
        if token.kind in ("op", "keyword") and token.text == text:
            self.position += 1
            return token
        return None

    def expect(self, text: str, what: str) -> Token:
        token = self.accept(text)
        if token is None:
            raise FormulaError(f"expected {what}, found {_describe(self.current)}", self.current.column)
        return token

    def nested(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(f"formula nests deeper than {MAX_DEPTH} levels", column)

    def parse(self) -> Node:
        node = self.expr()
        if self.current.kind != "end":
            raise FormulaError(f"unexpected {_describe(self.current)}", self.current.column)
        return node

    def expr(self) -> Node:
        self.nested(self.current.column)
        node = self.or_expr()
        question = self.accept("?")
        if question is not None:
            then = self.expr()
            self.expect(":", "':' of the conditional")
            otherwise = self.expr()
            node = Conditional(node, then, otherwise, question.column)
        self.depth -= 1
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while (token := self.accept("or")) is not None:
            node = Binary("or", node, self.and_expr(), token.column)
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while (token := self.accept("and")) is not None:
            node = Binary("and", node, self.not_expr(), token.column)
        return node

    def not_expr(self) -> Node:
        token = self.accept("not")
        if token is not None:
            self.nested(token.column)
            node: Node = Unary("not", self.not_expr(), token.column)
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        node = self.additive()
        token = self.current
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            node = Binary(token.text, node, self.additive(), token.column)
            after = self.current
            if after.kind == "op" and after.text in _COMPARISONS:
                raise FormulaError("comparisons do not chain; combine them with 'and'", after.column)
        return node

    def additive(self) -> Node:
        node = self.term()
        while self.current.kind == "op" and self.current.text in ("+", "-"):
            token = self.advance()
            node = Binary(token.text, node, self.term(), token.column)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.current.kind == "op" and self.current.text in ("*", "/"):
            token = self.advance()
            node = Binary(token.text, node, self.unary(), token.column)
        return node

    def unary(self) -> Node:
        token = self.accept("-")
        if token is not None:
            self.nested(token.column)
            node: Node = Unary("-", self.unary(), token.column)
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        token = self.current
        if token.kind == "number":
            self.advance()
            value = float(token.text)
            if not math.isfinite(value):
                raise FormulaError(f"number {token.text} is out of range", token.column)
            return Literal(value, token.column)
        if token.kind == "string":
            self.advance()
            return Literal(_unquote(token), token.column)
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            self.advance()
            return Literal({"true": True, "false": False, "null": None}[token.text], token.column)
        if token.kind == "op" and token.text == "(":
            self.advance()
            node = self.expr()
            self.expect(")", "')'")
            return node
        if token.kind == "ident":
            self.advance()
            if self.accept("(") is not None:
                return self.call(token)
            if self.accept(".") is not None:
                key = self.current
                if key.kind not in ("ident", "keyword"):
                    raise FormulaError(f"expected a name after '{token.text}.'", key.column)
                self.advance()
                return Name(token.text, key.text, token.column)
            return Name("", token.text, token.column)
        raise FormulaError(f"unexpected {_describe(token)}", token.column)

    def call(self, name: Token) -> Node:
        args: list[Node] = []
        if self.accept(")") is None:
            args.append(self.expr())
            while self.accept(",") is not None:
                args.append(self.expr())
            self.expect(")", "')' or ',' in the argument list")
        return Call(name.text, tuple(args), name.column)


def _describe(token: Token) -> str:
    return "end of formula" if token.kind == "end" else f"'{token.text}'"


# -- checking -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Formula:
    """A parsed and checked formula: its tree compiled to closures, sizes and the custom fields it reads."""

    source: str
    root: Node
    token_count: int
    node_count: int
    depth: int
    field_refs: frozenset[str]
    run: Callable[[Scope], Value]


def compile_formula(source: str, field_keys: frozenset[str] | set[str]) -> Formula:
    """Parse `source` and check every name and call against the category's field keys; raises FormulaError."""
    if not source.strip():
        raise FormulaError("formula is empty")
    tokens = tokenize(source)
    root = _Parser(tokens).parse()
    refs: set[str] = set()
    count = 0
    depth = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, level = stack.pop()
        count += 1
        depth = max(depth, level)
        if isinstance(node, Name):
            _check_name(node, field_keys)
            if not node.namespace:
                refs.add(node.key)
        elif isinstance(node, Call):
            _check_call(node)
            stack.extend((arg, level + 1) for arg in node.args)
        elif isinstance(node, Unary):
            stack.append((node.operand, level + 1))
        elif isinstance(node, Binary):
            stack.extend(((node.left, level + 1), (node.right, level + 1)))
        elif isinstance(node, Conditional):
            stack.extend(((node.test, level + 1), (node.then, level + 1), (node.otherwise, level + 1)))
    return Formula(source, root, len(tokens) - 1, count, depth, frozenset(refs), _compile(root))


def _check_name(node: Name, field_keys: frozenset[str] | set[str]) -> None:
    if node.namespace == "":
        if node.key not in field_keys:
            raise FormulaError(f"unknown name '{node.key}' (not a custom field of this category)", node.column)
    elif node.namespace == "offer":
        if node.key not in OFFER_NAMES:
            raise FormulaError(f"unknown name 'offer.{node.key}' (offer.* has {', '.join(OFFER_NAMES)})", node.column)
    elif node.namespace != "customer":
        raise FormulaError(
            f"unknown namespace '{node.namespace}' (use a custom field, customer.* or offer.*)", node.column
        )


def _check_call(node: Call) -> None:
    arity = FUNCTIONS.get(node.function)
    if arity is None:
        raise FormulaError(f"unknown function '{node.function}'", node.column)
    low, high = arity
    if len(node.args) < low or (high is not None and len(node.args) > high):
        expected = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
        noun = "argument" if high == 1 or (high is None and low == 1) else "arguments"
        raise FormulaError(f"function '{node.function}' takes {expected} {noun}, got {len(node.args)}", node.column)


# -- evaluation -----------------------------------------------------------------


@dataclass(slots=True)
class Scope:
    """What names resolve to during one evaluation; `steps` counts the nodes visited."""

    fields: Mapping[str, Any]
    customer: Mapping[str, Any]
    offer: Mapping[str, Any]
    steps: int = 0


def evaluate(formula: Formula, scope: Scope) -> Value:
    """The formula's value in `scope` (null on any evaluation problem); never raises for data."""
    return formula.run(scope)


def _number(value: Any) -> float | None:
    # Inside a formula every number is a float (names normalise what they
    # read); booleans are not numbers, although Python treats them as ints.
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return float(value)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _normalise(value: Any) -> Value:
    """A value from outside (request attributes, custom fields) in the formula's value space."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str:
        return value if len(value) <= MAX_TEXT_LENGTH else None
    if value is None or kind is bool or kind is list:
        return value
    if isinstance(value, (int, float)):
        return _finite(float(value))
    return None  # objects have no meaning in a formula


def _finite_or_none(value: float) -> float | None:
    return value if value - value == 0.0 else None  # inf - inf and nan - nan are nan


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else _finite_or_none(a / b)


_OPERATORS: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: _finite_or_none(a + b),
    "-": lambda a, b: _finite_or_none(a - b),
    "*": lambda a, b: _finite_or_none(a * b),
    "/": _divide,
}


def _compare(op: str, left: Value, right: Value) -> Value:
    if left is None or right is None:
        return None
    a_num, b_num = _number(left), _number(right)
    if a_num is not None and b_num is not None:
        a: Any = a_num
        b: Any = b_num
    elif type(left) is type(right) and isinstance(left, (str, bool)):
        a, b = left, right
    else:
        return op == "!=" if op in ("==", "!=") else None
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if isinstance(a, bool):
        return None  # booleans have no order
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _truthy(value: Value) -> bool:
    """A condition's value: null and false are false; so are values that are not booleans."""
    return value is True


def format_value(value: Any) -> str | None:
    """How concat writes a text, number or boolean (whole numbers without a decimal point,
    booleans lowercase); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and math.isfinite(value):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    return None


def concat(values: list[Value]) -> str | None:
    """The values written one after another, lists as their elements joined by ", ".

    Null when a value (or a list's element) is null or an object, or when the text
    would pass MAX_TEXT_LENGTH: writing stops there, so a long list or a long text
    costs no more than the limit does.
    """
    parts: list[str] = []
    room = MAX_TEXT_LENGTH

    def write(value: Any) -> bool:
        nonlocal room
        if isinstance(value, list):
            return all((i == 0 or write(", ")) and write(item) for i, item in enumerate(value))
        text = format_value(value)
        if text is None or len(text) > room:
            return False
        room -= len(text)
        parts.append(text)
        return True

    return "".join(parts) if all(write(value) for value in values) else None


def round_half_away(value: float, digits: int = 0) -> float | None:
    """Round half away from zero, on the decimal the number is written as (2.675 -> 2.68)."""
    scaled = abs(value) * 10.0**digits
    if math.isfinite(scaled) and abs(scaled - math.floor(scaled) - 0.5) > 1e-6:
        return round(value, digits)  # not near a tie: the binary rounding is the decimal one
    try:
        quantum = Decimal(1).scaleb(-digits)
        rounded = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return _finite(float(rounded))


def _call(name: str, args: tuple[Callable[[Scope], Value], ...], scope: Scope) -> Value:
    if name == "coalesce":
        for arg in args:
            value = arg(scope)
            if value is not None:
                return value
        return None
    values = [arg(scope) for arg in args]
    if any(v is None for v in values):
        return None
    if name == "concat":
        return concat(values)
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        return None
    nums = [n for n in numbers if n is not None]
    if name == "min":
        return min(nums)
    if name == "max":
        return max(nums)
    if name == "abs":
        return abs(nums[0])
    # round(x) or round(x, digits)
    digits = 0
    if len(nums) == 2:
        if not nums[1].is_integer() or not 0 <= nums[1] <= MAX_ROUND_DIGITS:
            return None
        digits = int(nums[1])
    return round_half_away(nums[0], digits)


def _compile(node: Node) -> Callable[[Scope], Value]:
    """Turn a checked tree into nested closures, once, so evaluation does no dispatch on node types.

    Each closure counts itself in scope.steps: one step per node visited.
    """
    if isinstance(node, Literal):
        constant = node.value

        def literal(scope: Scope) -> Value:
            scope.steps += 1
            return constant

        return literal
    if isinstance(node, Name):
        key, namespace = node.key, node.namespace
        if not namespace:

            def field_name(scope: Scope) -> Value:
                scope.steps += 1
                return _normalise(scope.fields.get(key))

            return field_name
        if namespace == "customer":

            def customer_name(scope: Scope) -> Value:
                scope.steps += 1
                return _normalise(scope.customer.get(key))

            return customer_name

        def offer_name(scope: Scope) -> Value:
            scope.steps += 1
            return _normalise(scope.offer.get(key))

        return offer_name
    if isinstance(node, Binary):
        op, left, right = node.op, _compile(node.left), _compile(node.right)
        if op == "and":

            def both(scope: Scope) -> Value:
                scope.steps += 1
                return _truthy(left(scope)) and _truthy(right(scope))

            return both
        if op == "or":

            def either(scope: Scope) -> Value:
                scope.steps += 1
                return _truthy(left(scope)) or _truthy(right(scope))

            return either
        if op in _COMPARISONS:

            def comparison(scope: Scope) -> Value:
                scope.steps += 1
                return _compare(op, left(scope), right(scope))

            return comparison
        operate = _OPERATORS[op]

        def arithmetic(scope: Scope) -> Value:
            scope.steps += 1
            a, b = left(scope), right(scope)
            if type(a) is not float or type(b) is not float:
                a, b = _number(a), _number(b)
                if a is None or b is None:
                    return None
            return operate(a, b)

        return arithmetic
    if isinstance(node, Unary):
        operand = _compile(node.operand)
        if node.op == "not":

            def negation(scope: Scope) -> Value:
                scope.steps += 1
                return not _truthy(operand(scope))

            return negation

        def minus(scope: Scope) -> Value:
            scope.steps += 1
            number = _number(operand(scope))
            return None if number is None else -number

        return minus
    if isinstance(node, Conditional):
        test, then, otherwise = _compile(node.test), _compile(node.then), _compile(node.otherwise)

        def conditional(scope: Scope) -> Value:
            scope.steps += 1
            return then(scope) if _truthy(test(scope)) else otherwise(scope)

        return conditional
    function, args = node.function, tuple(_compile(arg) for arg in node.args)

    def call(scope: Scope) -> Value:
        scope.steps += 1
        return _call(function, args, scope)

    return call


# -- computed fields of a category ---------------------------------------------------

OutputCheck = Callable[[Value], bool]
OUTPUT_CHECKS: dict[str, OutputCheck] = {
    "number": lambda v: _number(v) is not None,
    "text": lambda v: isinstance(v, str) and len(v) <= MAX_TEXT_LENGTH,
    "boolean": lambda v: isinstance(v, bool),
}


@dataclass(frozen=True, slots=True)
class ComputedField:
    key: str
    formula: Formula
    output_type: str  # number, text or boolean


@dataclass(frozen=True, slots=True)
class ComputedFields:
    """A category's computed fields in an order where each comes after the fields it reads.

    `nulls` are computed fields that are never evaluated (always null): those of a
    category stored before a limit tightened that no longer fit (see `within_limits`).
    """

    fields: tuple[ComputedField, ...]
    nulls: tuple[str, ...] = ()

    @property
    def token_count(self) -> int:
        return sum(field.formula.token_count for field in self.fields)

    def within_limits(self) -> ComputedFields:
        """The longest run of fields, in evaluation order, within MAX_COMPUTED_FIELDS and MAX_TOKENS;
        the rest become nulls. A prefix of this order holds every field its members read."""
        kept = 0
        tokens = 0
        for field in self.fields[:MAX_COMPUTED_FIELDS]:
            tokens += field.formula.token_count
            if tokens > MAX_TOKENS:
                break
            kept += 1
        if kept == len(self.fields):
            return self
        dropped = tuple(field.key for field in self.fields[kept:])
        return ComputedFields(self.fields[:kept], self.nulls + dropped)

    def evaluate(
        self, custom_fields: Mapping[str, Any], customer: Mapping[str, Any], offer: Mapping[str, Any]
    ) -> tuple[dict[str, Value], int]:
        """Every computed field's value (null when the result is not of its output type) and the steps taken."""
        values = dict(custom_fields)
        scope = Scope(values, customer, offer)
        out: dict[str, Value] = dict.fromkeys(self.nulls)
        for field in self.fields:
            value = evaluate(field.formula, scope)
            if value is not None and not OUTPUT_CHECKS[field.output_type](value):
                value = None
            values[field.key] = value
            out[field.key] = value
        return out, scope.steps


def order_computed_fields(fields: list[ComputedField]) -> ComputedFields:
    """Order computed fields so each follows those it reads; raises FormulaError naming a cycle."""
    by_key = {f.key: f for f in fields}
    ordered: list[ComputedField] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(key: str, path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = [*path[path.index(key) :], key]
            raise FormulaError(f"computed fields form a cycle: {' -> '.join(cycle)}")
        state[key] = 1
        for ref in sorted(by_key[key].formula.field_refs):
            if ref in by_key:
                visit(ref, [*path, key])
        state[key] = 2
        ordered.append(by_key[key])

    for field in fields:
        visit(field.key, [])
    return ComputedFields(tuple(ordered))
