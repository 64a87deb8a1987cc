"""Shared proto <-> domain conversions: timestamps, structs, enums (transport layer)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from ...domain.errors import ViolationCollector

# Struct values are JSON; deeper nesting than this is refused, not recursed into.
MAX_STRUCT_DEPTH = 16
E = TypeVar("E")


def enum_from_proto(value: int, table: Mapping[Any, E], v: ViolationCollector, path: str, what: str) -> E | None:
    """The domain value of a proto enum number: 0 (`_UNSPECIFIED`) is None, an unknown number a violation."""
    if value == 0:
        return None
    found = table.get(value)
    if found is None:
        v.add(path, f"unknown {what} value {value}")
    return found


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp, v: ViolationCollector, path: str) -> datetime | None:
    """An aware UTC datetime (microsecond precision) or None with a violation for an invalid one."""
    if not 0 <= ts.nanos <= 999_999_999:
        v.add(path, f"nanos must be between 0 and 999999999, got {ts.nanos}")
        return None
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        v.add(path, "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
        return None


def set_timestamp(ts: timestamp_pb2.Timestamp, moment: datetime) -> None:
    ts.FromDatetime(moment)


def struct_to_dict(struct: struct_pb2.Struct, v: ViolationCollector, path: str) -> dict[str, Any]:
    """A Struct as a plain dict; non-finite numbers and excessive depth are violations.

    Top-level keys whose values have such problems are left out, so the
    rest can still be checked.
    """
    return {
        key: json_format.MessageToDict(value)
        for key, value in struct.fields.items()
        if _value_ok(value, v, f"{path}.{key}", 2)
    }


def value_to_python(value: struct_pb2.Value, v: ViolationCollector, path: str) -> Any:
    """A Value as plain JSON data; None, with a violation, when it holds a non-finite number or nests too deep."""
    return json_format.MessageToDict(value) if _value_ok(value, v, path, 1) else None


def _value_ok(value: struct_pb2.Value, v: ViolationCollector, path: str, depth: int) -> bool:
    """Whether `value` (at nesting level `depth`) converts to JSON; adds a violation for each problem."""
    kind = value.WhichOneof("kind")
    if kind == "number_value" and not math.isfinite(value.number_value):
        v.add(path, "must be a finite number")
        return False
    if kind == "struct_value":
        return _struct_ok(value.struct_value, v, path, depth)
    if kind == "list_value":
        return _struct_ok(value.list_value, v, path, depth)
    return True


def _struct_ok(message: struct_pb2.Struct | struct_pb2.ListValue, v: ViolationCollector, path: str, depth: int) -> bool:
    if depth > MAX_STRUCT_DEPTH:
        v.add(path, f"nests deeper than {MAX_STRUCT_DEPTH} levels")
        return False
    items = message.fields.items() if isinstance(message, struct_pb2.Struct) else enumerate(message.values)
    ok = True
    for key, value in items:
        child = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]"
        ok = _value_ok(value, v, child, depth + 1) and ok
    return ok


def count_struct_values(struct: struct_pb2.Struct, stop_after: int) -> int:
    """Entries and list items at any depth, counted only until the count passes `stop_after`."""
    count = 0
    pending: list[struct_pb2.Struct | struct_pb2.ListValue] = [struct]
    while pending:
        container = pending.pop()
        values = container.fields.values() if isinstance(container, struct_pb2.Struct) else container.values
        count += len(values)
        if count > stop_after:
            return count
        for value in values:
            kind = value.WhichOneof("kind")
            if kind == "struct_value":
                pending.append(value.struct_value)
            elif kind == "list_value":
                pending.append(value.list_value)
    return count


def dict_to_struct(values: dict[str, Any], struct: struct_pb2.Struct) -> None:
    struct.Clear()
    if values:
        struct.update(values)


def update_mask(request: Any) -> list[str] | None:
    """The paths of an Update request's `update_mask` (None when it has none, or an empty one)."""
    return list(request.update_mask.paths) or None if request.HasField("update_mask") else None
