"""The business hierarchy: categories, sub-categories and custom-field schemas (domain layer)."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .errors import FieldViolation, InvalidArgument, ViolationCollector
from .field_masks import UpdateRule
from .formulas import (
    MAX_COMPUTED_FIELDS,
    MAX_TOKENS,
    ComputedField,
    ComputedFields,
    FormulaError,
    compile_formula,
    order_computed_fields,
)
from .names import MAX_NAME_LENGTH, check_name

CATEGORY_PREFIX = "cat_"
SUB_CATEGORY_PREFIX = "sub_"
CALLER_ID_PATTERNS = {
    CATEGORY_PREFIX: re.compile(r"^cat_[a-z0-9_]{1,64}$"),
    SUB_CATEGORY_PREFIX: re.compile(r"^sub_[a-z0-9_]{1,64}$"),
}
FIELD_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_DESCRIPTION_LENGTH = 2_000
MAX_FIELDS = 100
MAX_OPTIONS = 100
MAX_OPTION_LENGTH = 128
MAX_TEXT_VALUE_LENGTH = 10_000


class CategoryStatus(enum.Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class FieldType(enum.Enum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    SELECT = "select"
    DATE = "date"
    COMPUTED = "computed"


class OutputType(enum.Enum):
    NUMBER = "number"
    TEXT = "text"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    """One custom field of a category's schema."""

    key: str
    label: str = ""
    type: FieldType | None = None
    required: bool = False
    default: Any = None  # a JSON value; None means no default
    options: tuple[str, ...] = ()
    formula: str = ""
    output_type: OutputType | None = None


@dataclass(frozen=True, slots=True)
class Category:
    id: str = ""
    name: str = ""
    description: str = ""
    status: CategoryStatus | None = None
    display_order: int = 0
    custom_fields: tuple[FieldDefinition, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubCategory:
    id: str = ""
    category_id: str = ""
    name: str = ""
    description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


CATEGORY_UPDATES = UpdateRule(Category, required=("status",))
# A sub-category cannot move to another category: its category_id is not a path updates may name.
SUB_CATEGORY_UPDATES = UpdateRule(SubCategory, exclude=("category_id",))


def check_caller_id(prefix: str, value: str, path: str) -> None:
    pattern = CALLER_ID_PATTERNS[prefix]
    if not pattern.match(value):
        raise InvalidArgument.single(path, f"must match {pattern.pattern[1:-1]}, got {value!r}")


def _text(v: ViolationCollector, path: str, value: str, limit: int) -> None:
    if len(value) > limit:
        v.add(path, f"must be at most {limit} characters, got {len(value)}")


def validate_category(category: Category) -> ComputedFields:
    """Check a whole category; returns its computed fields compiled, or raises InvalidArgument with every problem."""
    v = ViolationCollector()
    check_name(v, "name", category.name)
    _text(v, "description", category.description, MAX_DESCRIPTION_LENGTH)
    if category.status is None:
        v.add("status", "must be active or archived")
    if len(category.custom_fields) > MAX_FIELDS:
        v.add("customFields", f"must hold at most {MAX_FIELDS} fields, got {len(category.custom_fields)}")
    key_set = {f.key for f in category.custom_fields}
    computed_count = sum(f.type is FieldType.COMPUTED for f in category.custom_fields)
    if computed_count > MAX_COMPUTED_FIELDS:
        v.add("customFields", f"must hold at most {MAX_COMPUTED_FIELDS} computed fields, got {computed_count}")
    computed: list[ComputedField] = []
    tokens = 0
    seen: set[str] = set()
    for i, field in enumerate(category.custom_fields):
        fv = v.nested(f"customFields[{i}].")
        if not FIELD_KEY_PATTERN.match(field.key):
            fv.add("key", f"must match [a-z][a-z0-9_]{{0,63}}, got {field.key!r}")
        elif field.key in seen:
            fv.add("key", f"duplicates field {field.key!r}")
        seen.add(field.key)
        _text(fv, "label", field.label, MAX_NAME_LENGTH)
        compiled = _validate_field(fv, field, key_set)
        if compiled is not None:
            computed.append(compiled)
            own = compiled.formula.token_count
            tokens += own
            if tokens > MAX_TOKENS and tokens - own <= MAX_TOKENS:  # report where the budget runs out, once
                fv.add(
                    "formula",
                    f"has {own} tokens, which brings the category's formulas to {tokens}; all the formulas "
                    f"of a category may have at most {MAX_TOKENS} tokens together",
                )
    v.raise_if_any()
    try:
        return order_computed_fields(computed)
    except FormulaError as exc:
        raise InvalidArgument([FieldViolation("customFields", exc.reason)]) from None


def _validate_field(v: ViolationCollector, field: FieldDefinition, keys: set[str]) -> ComputedField | None:
    if field.type is None:
        v.add("type", "is required: text, number, boolean, select, date or computed")
        return None
    if field.type is FieldType.SELECT:
        if not field.options:
            v.add("options", "a select field needs at least one option")
        if len(field.options) > MAX_OPTIONS:
            v.add("options", f"must hold at most {MAX_OPTIONS} options")
        if len(set(field.options)) != len(field.options):
            v.add("options", "must not repeat an option")
        for j, option in enumerate(field.options):
            if not option.strip() or len(option) > MAX_OPTION_LENGTH:
                v.add(f"options[{j}]", f"must be 1 to {MAX_OPTION_LENGTH} characters")
    elif field.options:
        v.add("options", "only select fields have options")
    if field.type is FieldType.COMPUTED:
        if field.required:
            v.add("required", "a computed field is computed, never supplied, so it cannot be required")
        if field.default is not None:
            v.add("defaultValue", "a computed field has no default: its formula gives its value")
        if field.output_type is None:
            v.add("outputType", "is required for a computed field: number, text or boolean")
        if not field.formula.strip():
            v.add("formula", "is required for a computed field")
            return None
        try:
            formula = compile_formula(field.formula, keys)
        except FormulaError as exc:
            v.add("formula", str(exc))
            return None
        if field.output_type is None:
            return None
        return ComputedField(field.key, formula, field.output_type.value)
    if field.formula:
        v.add("formula", "only computed fields have a formula")
    if field.output_type is not None:
        v.add("outputType", "only computed fields have an output type")
    if field.default is not None:
        problem = value_problem(field, field.default)
        if problem:
            v.add("defaultValue", problem)
    return None


def sub_category_violations(sub: SubCategory) -> list[FieldViolation]:
    """Every violation of a sub-category's own fields."""
    v = ViolationCollector()
    check_name(v, "name", sub.name)
    _text(v, "description", sub.description, MAX_DESCRIPTION_LENGTH)
    return v.violations


def compile_category(category: Category) -> ComputedFields:
    """A stored category's computed fields, compiled.

    A category stored before a rule tightened still loads: each computed field whose
    formula still compiles is kept, in evaluation order, while the kept ones fit the
    limits; the others are null (see ComputedFields.within_limits).
    """
    try:
        return validate_category(category)
    except InvalidArgument:
        pass
    keys = {f.key for f in category.custom_fields}
    kept: list[ComputedField] = []
    nulls: list[str] = []
    for field in category.custom_fields:
        if field.type is not FieldType.COMPUTED:
            continue
        try:
            formula = compile_formula(field.formula, keys)
        except FormulaError:
            formula = None
        if formula is None or field.output_type is None:
            nulls.append(field.key)
        else:
            kept.append(ComputedField(field.key, formula, field.output_type.value))
    try:
        ordered = order_computed_fields(kept)
    except FormulaError:  # a cycle was refused at write time; should one be stored, evaluate none
        return ComputedFields((), tuple(f.key for f in category.custom_fields if f.type is FieldType.COMPUTED))
    return ComputedFields(ordered.fields, tuple(nulls)).within_limits()


def _json(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list" if isinstance(value, list) else "object"


def value_problem(field: FieldDefinition, value: Any) -> str | None:
    """Why `value` does not fit `field` (None when it does)."""
    kind = _kind(value)
    shown = _json(value) if kind in ("text", "number", "boolean") else kind
    if field.type is FieldType.NUMBER:
        if kind != "number" or not math.isfinite(float(value)):
            return f"expected number, got {shown}"
    elif field.type is FieldType.TEXT:
        if kind != "text":
            return f"expected text, got {shown}"
        if len(value) > MAX_TEXT_VALUE_LENGTH:
            return f"must be at most {MAX_TEXT_VALUE_LENGTH} characters"
    elif field.type is FieldType.BOOLEAN:
        if kind != "boolean":
            return f"expected boolean, got {shown}"
    elif field.type is FieldType.SELECT:
        if kind != "text" or value not in field.options:
            return f"expected one of {', '.join(field.options)}, got {shown}"
    elif field.type is FieldType.DATE:
        if kind != "text":
            return f'expected a date "YYYY-MM-DD", got {shown}'
        try:
            date.fromisoformat(value)
        except ValueError:
            return f'expected a date "YYYY-MM-DD", got {shown}'
        if len(value) != 10:
            return f'expected a date "YYYY-MM-DD", got {shown}'
    return None


def conform_custom_fields(category: Category, values: dict[str, Any], v: ViolationCollector) -> dict[str, Any]:
    """Check an offer's custom fields against the schema and fill in defaults; violations go to `v`.

    Unknown keys, values set for computed fields, missing required fields and
    values of the wrong type are all reported, with paths customFields.<key>.
    """
    fields = {f.key: f for f in category.custom_fields}
    out: dict[str, Any] = {}
    for key, value in values.items():
        field = fields.get(key)
        path = f"customFields.{key}"
        if field is None:
            known = ", ".join(sorted(f.key for f in category.custom_fields if f.type is not FieldType.COMPUTED))
            v.add(path, f"unknown field: category {category.id} defines {known or 'no custom fields'}")
        elif field.type is FieldType.COMPUTED:
            v.add(path, "is computed by the category's formula; offers cannot set it")
        elif (problem := value_problem(field, value)) is not None:
            v.add(path, problem)
        else:
            out[key] = value
    for field in category.custom_fields:
        if field.type is FieldType.COMPUTED or field.key in values:
            continue
        if field.default is not None:
            out[field.key] = field.default
        elif field.required:
            v.add(f"customFields.{field.key}", "is required by the category")
    return out


def count_nonconforming(category: Category, offers_fields: list[dict[str, Any]]) -> int:
    """How many of these offers' custom fields would fail the category's schema."""
    count = 0
    for values in offers_fields:
        v = ViolationCollector()
        conform_custom_fields(category, values, v)
        count += bool(v.violations)
    return count
