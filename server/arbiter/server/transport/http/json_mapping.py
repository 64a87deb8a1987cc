"""The seed's JSON <-> protobuf messages, driven by the message descriptors (transport layer).

The REST door speaks the seed's JSON: camelCase keys, enum values as
lowercase words (`"priority": "high"` for PRIORITY_HIGH), 64-bit integers
and money as JSON numbers, whole numbers without `.0`, instants as RFC 3339
in UTC with `Z`. Decoding is strict and reports every problem with its path
(`qualification.propensityThreshold`, `outcomes[3].type`): a wrong type, an
unknown key, a bad enum word (the answer lists the allowed ones), a number
out of range. Proto3 JSON's own spellings (snake_case keys, the proto enum
names) are accepted too, so a body written for grpcurl also works.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ...domain.errors import FieldViolation, ViolationCollector

# The stubs type descriptors as a union of the pure-Python and the upb classes, and make every
# sub-descriptor optional; these aliases keep the walks below readable.
MessageType = Any
FieldType = Any
EnumType = Any

# JSON values nest at most this deep in free-form objects (customFields, attributes).
MAX_JSON_DEPTH = 16
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)
# Integers beyond this are not exactly representable as a double: written as they are.
_EXACT_DOUBLE = 2**53
TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name
VALUE = struct_pb2.Value.DESCRIPTOR.full_name
LIST_VALUE = struct_pb2.ListValue.DESCRIPTOR.full_name
FREE_FORM = (STRUCT, VALUE, LIST_VALUE)


# ---------------------------------------------------------------------------------------------
# enums


def enum_prefix(enum: EnumType) -> str:
    """The prefix every value of an enum shares ("PRIORITY_" of PRIORITY_UNSPECIFIED)."""
    zero = enum.values_by_number[0].name
    return zero[: -len("UNSPECIFIED")] if zero.endswith("UNSPECIFIED") else ""


def enum_words(enum: EnumType) -> list[str]:
    """The lowercase words a JSON body may use, in declaration order (never the `_UNSPECIFIED` one)."""
    prefix = enum_prefix(enum)
    return [v.name[len(prefix) :].lower() for v in enum.values if v.number != 0]


def enum_word(enum: EnumType, number: int) -> str | None:
    """The word of a value number; None for 0 and for numbers the enum does not declare."""
    value = enum.values_by_number.get(number)
    if value is None or number == 0:
        return None
    return value.name[len(enum_prefix(enum)) :].lower()


def enum_number(enum: EnumType, word: str) -> int | None:
    """The number a word (or the proto name) stands for; None when it is none of them."""
    prefix = enum_prefix(enum)
    value = enum.values_by_name.get(prefix + word.upper()) if word == word.lower() else None
    if value is None:
        value = enum.values_by_name.get(word)
    return None if value is None or value.number == 0 else value.number


def bad_enum_word(enum: EnumType, word: object) -> str:
    return f"must be one of {', '.join(enum_words(enum))}; got {_show(word)}"


# ---------------------------------------------------------------------------------------------
# JSON -> message


def message_from_json(
    body: Mapping[str, Any], message: Message, path: str = "", *, ignore: Iterable[str] = ()
) -> list[FieldViolation]:
    """Fill `message` from a JSON object; returns every problem found (the message holds what decoded).

    `path` prefixes the violations' fields; top-level keys in `ignore` (output-only ones such as
    `id`, `createdAt`) are skipped. JSON null means "not given".
    """
    v = ViolationCollector()
    _fill(body, message, path, v, frozenset(ignore))
    return list(v.violations)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else _json_kind(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def fields_by_key(descriptor: MessageType) -> dict[str, FieldType]:
    """A message's fields by their JSON name and by their proto name."""
    found: dict[str, FieldType] = {}
    for field in descriptor.fields:
        found[field.json_name] = field
        found[field.name] = field
    return found


def _fill(body: Any, message: Message, path: str, v: ViolationCollector, ignore: frozenset[str]) -> None:
    if not isinstance(body, Mapping):
        v.add(path or "body", f"must be a JSON object, got {_show(body)}")
        return
    fields = fields_by_key(message.DESCRIPTOR)
    oneofs_seen: dict[str, str] = {}
    for key, value in body.items():
        child = _join(path, key)
        if key in ignore:
            continue
        field = fields.get(key)
        if field is None:
            v.add(child, f"unknown field {key!r}")
            continue
        if value is None:
            continue
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):  # "_x" wraps a proto3 optional
            other = oneofs_seen.setdefault(oneof.name, key)
            if other != key:
                v.add(child, f"only one of the {oneof.name} fields may be set; {other!r} is set already")
                continue
        _set_field(message, field, value, child, v)


def _set_field(message: Message, field: FieldType, value: Any, path: str, v: ViolationCollector) -> None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        _fill_map(message, field, value, path, v)
    elif field.is_repeated:
        if not isinstance(value, list):
            v.add(path, f"must be a list, got {_show(value)}")
            return
        container = getattr(message, field.name)
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if item is None:
                v.add(item_path, "must not be null")
            elif field.message_type is not None:
                _fill_message(container.add(), item, item_path, v)
            else:
                scalar = _scalar(field, item, item_path, v)
                if scalar is not None:
                    container.append(scalar)
    elif field.message_type is not None:
        _fill_message(getattr(message, field.name), value, path, v)
    else:
        scalar = _scalar(field, value, path, v)
        if scalar is not None:
            setattr(message, field.name, scalar)


def _fill_message(target: Message, value: Any, path: str, v: ViolationCollector) -> None:
    name = target.DESCRIPTOR.full_name
    if name == TIMESTAMP:
        if not isinstance(value, str):
            v.add(path, f"must be an RFC 3339 timestamp such as 2026-03-15T00:00:00Z, got {_show(value)}")
            return
        try:
            target.FromJsonString(value)  # type: ignore[attr-defined]
        except ValueError:
            v.add(path, f"must be an RFC 3339 timestamp such as 2026-03-15T00:00:00Z, got {_show(value)}")
        return
    if name in FREE_FORM:
        expected = {STRUCT: dict, LIST_VALUE: list}.get(name)
        if expected is not None and not isinstance(value, expected):
            v.add(path, f"must be a JSON {'object' if expected is dict else 'list'}, got {_show(value)}")
            return
        if _free_form_ok(value, path, v, 1):
            _set_free_form(target, value)
        return
    target.SetInParent()
    _fill(value, target, path, v, frozenset())


def _free_form_ok(value: Any, path: str, v: ViolationCollector, depth: int) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        v.add(path, "must be a finite number")
        return False
    if isinstance(value, (dict, list)):
        if depth > MAX_JSON_DEPTH:
            v.add(path, f"nests deeper than {MAX_JSON_DEPTH} levels")
            return False
        items = value.items() if isinstance(value, dict) else enumerate(value)
        ok = True
        for key, item in items:
            child = f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]"
            ok = _free_form_ok(item, child, v, depth + 1) and ok
        return ok
    return True


def _set_free_form(target: Message, value: Any) -> None:
    if isinstance(target, struct_pb2.Struct):
        target.update(value)
    elif isinstance(target, struct_pb2.ListValue):
        target.extend(value)
    else:
        assert isinstance(target, struct_pb2.Value)
        holder = struct_pb2.Struct()
        holder.update({"v": value})
        target.CopyFrom(holder.fields["v"])


def _fill_map(message: Message, field: FieldType, value: Any, path: str, v: ViolationCollector) -> None:
    if not isinstance(value, Mapping):
        v.add(path, f"must be a JSON object, got {_show(value)}")
        return
    value_field = field.message_type.fields_by_name["value"]
    container = getattr(message, field.name)
    for key, item in value.items():
        item_path = f"{path}.{key}"
        if value_field.message_type is not None:
            _fill_message(container[key], item, item_path, v)
            continue
        scalar = _scalar(value_field, item, item_path, v)
        if scalar is not None:
            container[key] = scalar


def _scalar(field: FieldType, value: Any, path: str, v: ViolationCollector) -> Any:
    """The Python value for a scalar field, or None (with a violation) when the JSON value does not fit."""
    kind = field.cpp_type
    if kind == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            v.add(path, "binary fields are not accepted over JSON")
            return None
        if not isinstance(value, str):
            v.add(path, f"must be a string, got {_show(value)}")
            return None
        return value
    if kind == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            v.add(path, f"must be true or false, got {_show(value)}")
            return None
        return value
    if kind == FieldDescriptor.CPPTYPE_ENUM:
        number = enum_number(field.enum_type, value) if isinstance(value, str) else None
        if number is None:
            v.add(path, bad_enum_word(field.enum_type, value))
        return number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        v.add(path, f"must be a number, got {_show(value)}")
        return None
    if kind in _FLOATS:
        if not math.isfinite(value):
            v.add(path, "must be a finite number")
            return None
        return float(value)
    low, high = _INT_RANGES[kind]
    if isinstance(value, float):
        if not value.is_integer():
            v.add(path, f"must be a whole number, got {value:g}")
            return None
        value = int(value)
    if not low <= value <= high:
        v.add(path, f"must be between {low} and {high}, got {value}")
        return None
    return value


# ---------------------------------------------------------------------------------------------
# message -> JSON


def message_to_json(message: Message) -> dict[str, Any]:
    """The seed's JSON of a message.

    Fields without presence are always written (an empty string, false, 0, []),
    fields with presence (sub-messages, proto3 `optional`) only when set, enum
    value 0 never.
    """
    out: dict[str, Any] = {}
    field: FieldType
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            value_field = field.message_type.fields_by_name["value"]
            out[field.json_name] = {k: _value_to_json(value_field, item) for k, item in value.items()}
        elif field.is_repeated:
            out[field.json_name] = [_value_to_json(field, item) for item in value]
        elif field.has_presence:
            if message.HasField(field.name):
                out[field.json_name] = _value_to_json(field, value)
        elif field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            word = enum_word(field.enum_type, value)
            if word is not None:
                out[field.json_name] = word
        else:
            out[field.json_name] = _value_to_json(field, value)
    return out


def _value_to_json(field: FieldType, value: Any) -> Any:
    if field.message_type is not None:
        name = field.message_type.full_name
        if name == TIMESTAMP:
            return value.ToJsonString()
        if name in FREE_FORM:
            return free_form_to_json(value)
        return message_to_json(value)
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return enum_word(field.enum_type, value)
    if field.cpp_type in _FLOATS:
        return number_to_json(value)
    return value


def number_to_json(value: float) -> float | int | None:
    """A double as JSON: whole values without `.0` (95, not 95.0); non-finite ones as null."""
    if not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < _EXACT_DOUBLE:
        return int(value)
    return value


def free_form_to_json(message: Message) -> Any:
    """A Struct, Value or ListValue as plain JSON (whole numbers without `.0`)."""
    if isinstance(message, struct_pb2.Struct):
        return {k: free_form_to_json(item) for k, item in message.fields.items()}
    if isinstance(message, struct_pb2.ListValue):
        return [free_form_to_json(item) for item in message.values]
    assert isinstance(message, struct_pb2.Value)
    kind = message.WhichOneof("kind")
    if kind == "number_value":
        return number_to_json(message.number_value)
    if kind == "string_value":
        return message.string_value
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return free_form_to_json(message.struct_value)
    if kind == "list_value":
        return free_form_to_json(message.list_value)
    return None
